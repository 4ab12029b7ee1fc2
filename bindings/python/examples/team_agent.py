"""The Python agent of the cross-language team demo (``make demo``; the
protocol is described in cmd/x0x-demo/team.go).

Usage: python team_agent.py <shared dir> <bootstrap peerid@host:port>
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import x0x

LANG = "python"
RIVAL = "node"
TOPIC = "x0x-demo/chat"
TASKS = ["draft the launch note", "review the API (node)", "write the tutorial (python)", "tag the release (go)"]
CONTESTED = TASKS[0]
MINE = TASKS[2]

T = TypeVar("T")


def say(msg: str) -> None:
    print(f"[{LANG}] {msg}", flush=True)


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


async def until(what: str, deadline: float, f: Callable[[], Awaitable[T | None]]) -> T:
    while True:
        v = await f()
        if v is not None:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def main(shared: Path, bootstrap: str) -> None:
    deadline = time.monotonic() + 90
    async with await x0x.Agent.create(data_dir=shared / f"{LANG}-agent", bootstrap=[bootstrap]) as agent:
        await agent.join_network()
        say(f"agent {agent.agent_id[:8]} joined through the bootstrap node")
        heard: set[str] = set()
        chat = await agent.join(TOPIC)
        sub = chat.subscribe()

        async def listen() -> None:
            while True:
                try:
                    async for m in sub:
                        text = m.payload.decode()
                        if text.startswith("hello from "):
                            lang = text[len("hello from "):]
                            if lang != LANG and lang not in heard:
                                heard.add(lang)
                                say(f'heard "{text}" on {TOPIC} from agent {m.origin[:8]}')
                    return  # the subscription ended
                except x0x.LaggedError:
                    continue  # a slow reader: read on

        async def hello() -> None:
            while True:
                await chat.publish(f"hello from {LANG}".encode())
                await asyncio.sleep(0.5)

        tasks = [asyncio.create_task(listen()), asyncio.create_task(hello())]
        try:
            async def file(name: str) -> str | None:
                return read(shared / name)

            list_id = (await until("the list ID", deadline, lambda: file("list-id"))).strip()
            tl = await x0x.TaskList.join(agent, list_id)

            async def all_tasks() -> x0x.TaskListSnapshot | None:
                s = await tl.snapshot()
                return s if all(any(t.title == want for t in s.tasks) for want in TASKS) else None

            snap = await until("every task", deadline, all_tasks)
            say(f'joined task list "{snap.name}" ({list_id[:16]}): {len(snap.tasks)} tasks')
            ids = {t.title: t.id for t in snap.tasks}

            write_atomic(shared / f"ready-{LANG}", "ready")
            at = int((await until("claim-at", deadline, lambda: file("claim-at"))).strip())
            await asyncio.sleep(max(0.0, at / 1000 - time.time()))
            try:
                await tl.claim_task(ids[CONTESTED])
                say(f'claimed "{CONTESTED}" ({RIVAL} is claiming it at the same moment)')
            except x0x.TaskClaimedByOther as e:
                say(f'claim of "{CONTESTED}" refused: {RIVAL}\'s claim arrived first ({e.status})')
            await tl.claim_task(ids[MINE])
            await tl.complete_task(ids[MINE])
            say(f'claimed and completed "{MINE}"')

            # Claims made at `at` reach every replica well within 1.5 s;
            # then the claim set is settled and its winner completes.
            settled = at / 1000 + 1.5
            reported = False

            async def finished() -> x0x.TaskListSnapshot | None:
                nonlocal reported
                s = await tl.snapshot()
                c = next(t for t in s.tasks if t.title == CONTESTED)
                if not reported and time.time() > settled and c.claimant:
                    reported = True
                    who = "me" if c.claimant == agent.agent_id else f"agent {c.claimant[:8]}"
                    if len(c.claims) > 1:
                        say(f'both claims on "{CONTESTED}" are kept; every replica picks the same winner: {who}')
                    else:
                        say(f'"{CONTESTED}" is held by {who}')
                    if c.state == x0x.TaskState.CLAIMED and c.claimant == agent.agent_id:
                        await tl.complete_task(c.id)
                        say(f'completed "{CONTESTED}"')
                done = all(t.state == x0x.TaskState.DONE for t in s.tasks) and len(heard) == 2
                return s if done else None

            snap = await until("every task done", deadline, finished)
            write_atomic(shared / f"done-{LANG}", "done")
            say(f"every task is done ({len(snap.tasks)}/{len(snap.tasks)}) and both other agents were heard")

            async def everyone_done() -> bool | None:
                return True if all((shared / f"done-{lang}").exists() for lang in ("go", "node", "python")) else None

            await until("the others to finish", deadline, everyone_done)
            await tl.leave()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await chat.leave()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: team_agent.py <shared dir> <bootstrap>")
    try:
        asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
    except Exception as e:  # the demo reports any failure and exits non-zero
        print(f"[{LANG}] FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
