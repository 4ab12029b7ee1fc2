"""Calls from many threads at once, and close racing with them, never crash."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import x0x
from conftest import STEP, arun, connect_pair, make_agent


def join_all(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join()


@arun
async def test_many_threads_share_an_agent(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a, make_agent(tmp_path, "b") as b:
        await connect_pair(a, b)
        events = a.events(capacity=100_000)
        errors: list[BaseException] = []
        per_thread = 15
        n_threads = 8

        def worker(i: int) -> None:
            async def job() -> None:
                for k in range(per_thread):
                    await b.send_direct(a.agent_id, b"t%d-%d" % (i, k), timeout=STEP)
                    await b.publish("load", b"p")
                    assert await b.connected_peers() == [a.machine_id]
                    _ = b.events_dropped

            try:
                asyncio.run(job())
            except BaseException as exc:  # recorded and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(join_all, threads))
        assert errors == []
        want = {b"t%d-%d" % (i, k) for i in range(n_threads) for k in range(per_thread)}
        got: set[bytes] = set()
        while got != want:
            ev = await asyncio.wait_for(events.get(), STEP)
            if isinstance(ev, x0x.DirectMessage):
                got.add(ev.payload)
        events.close()


@arun
async def test_close_races_with_calls_from_threads(tmp_path: Path) -> None:
    a = await x0x.Agent.create(data_dir=tmp_path / "a")
    start = threading.Barrier(7)
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller() -> None:
        async def job() -> None:
            start.wait()
            for _ in range(30):
                try:
                    await a.publish("race", b"x")
                    await a.subscribe("race")
                    with lock:
                        outcomes.append("ok")
                except x0x.Closed:
                    with lock:
                        outcomes.append("closed")
                    return

        asyncio.run(job())

    def closer() -> None:
        async def job() -> None:
            start.wait()
            await a.close()

        asyncio.run(job())

    threads = [threading.Thread(target=caller) for _ in range(5)] + [threading.Thread(target=closer)]
    for t in threads:
        t.start()
    start.wait()
    await a.close()  # concurrently with the closer thread
    await asyncio.get_running_loop().run_in_executor(None, functools.partial(join_all, threads))
    assert a.closed
    # Every caller either finished or saw Closed; nothing else was raised.
    assert set(outcomes) <= {"ok", "closed"} and outcomes
