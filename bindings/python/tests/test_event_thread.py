"""The event path on loops without ``add_reader`` (asyncio's default loop on Windows).

There the agent watches its events fd from a thread of its own
(``x0x.events._EventWatch``) that posts each drain to the loop. These tests
force that path on Linux with a SelectorEventLoop whose ``add_reader`` and
``remove_reader`` raise NotImplementedError, as ProactorEventLoop's do.
"""

from __future__ import annotations

import asyncio
import functools
import select
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import Context
from pathlib import Path
from typing import Any

import pytest

import x0x
from x0x.events import EVENT_THREAD_PREFIX, _EventWatch
from conftest import STEP, make_agent, next_of, overlay_pair


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without add_reader (like ProactorEventLoop) that counts the drains an _EventWatch posts."""

    def __init__(self) -> None:
        super().__init__()
        self._count_lock = threading.Lock()
        self.drains = 0  # calls posted by event threads
        self.outstanding: dict[_EventWatch, int] = {}  # posted and not yet run, per watch
        self.max_outstanding = 0

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError

    def remove_reader(self, fd: Any) -> bool:
        raise NotImplementedError

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.Handle:
        owner = getattr(callback, "__self__", None)
        if not isinstance(owner, _EventWatch):
            return super().call_soon_threadsafe(callback, *args, context=context)
        with self._count_lock:
            self.drains += 1
            n = self.outstanding.get(owner, 0) + 1
            self.outstanding[owner] = n
            self.max_outstanding = max(self.max_outstanding, n)

        def run(*a: Any) -> None:
            with self._count_lock:
                self.outstanding[owner] -= 1
            callback(*a)

        return super().call_soon_threadsafe(run, *args, context=context)


def run_on(loop: asyncio.AbstractEventLoop, coro: Awaitable[None]) -> None:
    """Runs coro to completion on loop (within 120 s), then shuts down its executor; leaves loop open."""
    loop.run_until_complete(asyncio.wait_for(coro, 120))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


def without_add_reader(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Runs an async test on a fresh NoReaderLoop (what arun does with asyncio.run)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        loop = NoReaderLoop()
        try:
            run_on(loop, fn(*args, **kwargs))
        finally:
            loop.close()

    return wrapper


def this_loop() -> NoReaderLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, NoReaderLoop)
    return loop


def event_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(EVENT_THREAD_PREFIX)]


def assert_thread_path(agent: x0x.Agent) -> None:
    assert agent._watch is not None and not agent._reader
    assert agent._watch.running
    assert f"{EVENT_THREAD_PREFIX}-{agent.agent_id[:16]}" in [t.name for t in event_threads()]


@without_add_reader
async def test_thread_fallback_direct_and_topic_messages(tmp_path: Path) -> None:
    loop = this_loop()
    assert not event_threads()
    async with overlay_pair(tmp_path) as (a, b):
        assert_thread_path(a)
        assert_thread_path(b)
        assert len(event_threads()) == 2
        ea, eb = a.events(), b.events()

        # Direct messages both ways.
        await b.send_direct(a.agent_id, b"from b", timeout=STEP)
        m = await next_of(ea, x0x.DirectMessage, lambda m: m.payload == b"from b")
        assert (m.from_agent, m.to_agent) == (b.agent_id, a.agent_id)
        await a.send_direct(b.agent_id, b"from a", timeout=STEP)
        m = await next_of(eb, x0x.DirectMessage, lambda m: m.payload == b"from a")
        assert m.from_agent == a.agent_id

        # A topic message each way (publish until the topic tree has formed).
        ta, tb = await a.join("room"), await b.join("room")
        sa, sb = ta.subscribe(), tb.subscribe()

        async def until_received(pub: x0x.Topic, sub: x0x.Subscription, payload: bytes) -> x0x.TopicMessage:
            for _ in range(60):
                await pub.publish(payload)
                try:
                    while True:
                        msg = await asyncio.wait_for(sub.get(), 0.3)
                        if msg.payload == payload:
                            return msg
                except asyncio.TimeoutError:
                    continue
            raise AssertionError("topic message never delivered")

        got = await until_received(ta, sb, b"a->b")
        assert (got.topic, got.from_agent) == ("room", a.agent_id)
        got = await until_received(tb, sa, b"b->a")
        assert (got.topic, got.from_agent) == ("room", b.agent_id)
        assert loop.max_outstanding == 1  # one posted drain at a time per agent
        ea.close()
        eb.close()
    # close() stopped and joined both event threads.
    assert a.closed and b.closed and a._watch is None and b._watch is None
    assert not event_threads(), event_threads()


@pytest.mark.parametrize("waiter", ["poll", "select"])
@without_add_reader
async def test_thread_fallback_delivers_every_injected_event(tmp_path: Path, waiter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if waiter == "select":  # the thread's wait as on Windows (no select.poll there)
        monkeypatch.delattr(select, "poll", raising=False)
    loop = this_loop()
    n = 20000
    async with make_agent(tmp_path, "a") as a:
        assert_thread_path(a)
        events = a.events(capacity=n + 100)
        start = loop.drains
        await a.debug_inject_events(n, 8)
        got = 0
        while got < n:
            ev = await asyncio.wait_for(events.get(), STEP)
            assert isinstance(ev, x0x.DirectMessage) and ev.payload == b"\xab" * 8
            got += 1
        # Coalesced: one posted drain (of up to 1024 records) at a time, none lost.
        assert loop.max_outstanding == 1
        assert loop.drains - start >= n // 1024
        assert events.dropped == 0 and a.events_dropped == 0
        # The queue is empty: nothing more arrives.
        await asyncio.sleep(0.2)
        assert events.qsize() == 0
        events.close()
    assert not event_threads(), event_threads()


def test_thread_fallback_survives_its_loop_closing(tmp_path: Path) -> None:
    # The agent outlives its loop: the thread must not post to the closed
    # loop (it ends when it sees events), and close() from another loop
    # still ends everything.
    loop = NoReaderLoop()
    box: list[x0x.Agent] = []

    async def create() -> None:
        box.append(await x0x.Agent.create(data_dir=tmp_path / "a", bind_addr="127.0.0.1:0"))

    try:
        run_on(loop, create())
    finally:
        loop.close()
    a = box[0]
    assert_thread_path(a)
    asyncio.run(a.debug_inject_events(3, 4))  # the fd becomes readable; the owner loop is closed
    deadline = time.monotonic() + STEP
    while event_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not event_threads(), "the event thread did not end when its loop was closed"
    asyncio.run(a.close())
    assert a.closed and a._watch is None


def test_close_ends_a_waiting_thread_when_the_loop_is_closed(tmp_path: Path) -> None:
    # The thread waits on the fd (no events); the loop closes; close() from another loop joins it.
    loop = NoReaderLoop()
    box: list[x0x.Agent] = []

    async def create() -> None:
        box.append(await x0x.Agent.create(data_dir=tmp_path / "a", bind_addr="127.0.0.1:0"))

    try:
        run_on(loop, create())
    finally:
        loop.close()
    a = box[0]
    assert_thread_path(a)
    t0 = time.monotonic()
    asyncio.run(a.close())
    assert not event_threads(), event_threads()
    assert time.monotonic() - t0 < 5


if sys.platform == "win32":  # pragma: no cover - the real thing, where available
    def test_default_windows_loop_uses_the_thread(tmp_path: Path) -> None:
        async def main() -> None:
            async with make_agent(tmp_path, "a") as a:
                assert isinstance(asyncio.get_running_loop(), asyncio.ProactorEventLoop)
                assert_thread_path(a)
                events = a.events()
                await a.debug_inject_events(10, 4)
                for _ in range(10):
                    assert isinstance(await asyncio.wait_for(events.get(), STEP), x0x.DirectMessage)

        asyncio.run(main())
        assert not event_threads()
