"""The Python agent of the cross-language team demo (``make demo``; the
protocol is described in cmd/x0x-demo/team.go).

Phase 1: a topic and a shared task list. Phase 2, "the private group": Go
creates an MLS group and invites Node and Python; the three say hello in
the group and work a task list that belongs to it, whose operations only
the members can read.

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
LANGS = ("go", "node", "python")
# Phase 2, the private group.
PRIVATE_TASKS = ["secret task (go)", "secret task (node)", "secret task (python)"]
PRIVATE_MINE = PRIVATE_TASKS[2]
#: Seconds for the whole run; phase 1 must end within PHASE1_SECONDS of it.
TOTAL_SECONDS = 150
PHASE1_SECONDS = 90

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


def describe(t: x0x.Task) -> str:
    mark = {x0x.TaskState.EMPTY: " ", x0x.TaskState.CLAIMED: "~", x0x.TaskState.DONE: "x"}[t.state]
    line = f"[{mark}] {t.title:<30}"
    if t.state != x0x.TaskState.EMPTY and t.claimant:
        line += f" by {t.claimant[:8]}"
    return line


async def main(shared: Path, bootstrap: str) -> None:
    start = time.monotonic()
    async with await x0x.Agent.create(data_dir=shared / f"{LANG}-agent", bootstrap=[bootstrap]) as agent:
        await agent.join_network()
        await team(agent, shared, start + PHASE1_SECONDS)
        await private_group(agent, shared, start + TOTAL_SECONDS)


async def team(agent: x0x.Agent, shared: Path, deadline: float) -> None:
    """Phase 1: hello on a topic and one shared task list with a contested claim."""
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
                            say(f'heard "{text}" on {TOPIC} from agent {m.from_agent[:8]}')
                return  # the subscription ended
            except x0x.LaggedError:
                continue  # a slow reader: read on

    async def hello() -> None:
        while True:
            await chat.publish(f"hello from {LANG}")  # a str is sent as UTF-8
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
            return True if all((shared / f"done-{lang}").exists() for lang in LANGS) else None

        await until("the others to finish", deadline, everyone_done)
        await tl.leave()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await chat.leave()


async def private_group(agent: x0x.Agent, shared: Path, deadline: float) -> None:
    """Phase 2: join Go's private group, say hello in it and work its task list."""
    # The events are opened first: Go's invitation may come as soon as we are invitable.
    async with agent.events() as events:
        await agent.publish_key_package()
        write_atomic(shared / f"member-{LANG}", f"{agent.agent_id} {agent.dial_addr}")
        say("phase 2: published a key package (invitable into private groups)")

        async def go_agent() -> str | None:
            words = (read(shared / "member-go") or "").split()
            return words[0] if len(words) == 2 else None

        go_id = await until("member-go", deadline, go_agent)

        async def invitation() -> x0x.GroupInvitation | None:
            while True:
                try:
                    ev = events.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if isinstance(ev, x0x.GroupInvitation) and ev.from_agent == go_id:
                    return ev
            # Also ask the library, should the event have been lost (a full event queue).
            return next((i for i in await agent.invitations() if i.from_agent == go_id), None)

        inv = await until("go's invitation", deadline, invitation)
    group = await agent.accept_invitation(inv.group)
    try:
        info = await group.info()
        say(f"accepted the invitation to group {group.id[:8]} from {go_id[:8]}: {len(info.members)} members")
        await work_in_group(group, shared, deadline)
    finally:
        await group.close()


async def work_in_group(group: x0x.Group, shared: Path, deadline: float) -> None:
    heard: set[str] = set()
    messages = group.messages()

    async def listen() -> None:
        while True:
            try:
                async for m in messages:
                    text = m.data.decode(errors="replace")
                    if text.startswith("hello group from "):
                        lang = text[len("hello group from "):]
                        if lang != LANG and lang not in heard:
                            heard.add(lang)
                            say(f'heard "{text}" in the group from agent {m.from_agent[:8]} (epoch {m.epoch})')
                return  # the stream ended (the group closed)
            except x0x.LaggedError:
                continue  # a slow reader: read on

    async def hello() -> None:
        while True:
            await group.publish(f"hello group from {LANG}")
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(listen()), asyncio.create_task(hello())]

    def check_hello() -> None:
        if tasks[1].done():  # publishing failed: report why
            tasks[1].result()

    try:
        async def list_id() -> str | None:
            text = (read(shared / "group-list-id") or "").strip()
            return text if len(text) == 64 else None

        lid = await until("group-list-id", deadline, list_id)
        tl = await group.join_task_list(lid)

        async def three_tasks() -> x0x.TaskListSnapshot | None:
            s = await tl.snapshot()
            return s if all(any(t.title == want for t in s.tasks) for want in PRIVATE_TASKS) else None

        snap = await until("the private tasks", deadline, three_tasks)
        say(f'joined the group\'s task list "{snap.name}" ({lid[:16]}): {len(snap.tasks)} tasks')
        mine = next(t.id for t in snap.tasks if t.title == PRIVATE_MINE)
        await tl.claim_task(mine)
        await tl.complete_task(mine)
        say(f'claimed and completed "{PRIVATE_MINE}"')

        async def finished() -> x0x.TaskListSnapshot | None:
            check_hello()
            s = await tl.snapshot()
            done = len(s.tasks) == len(PRIVATE_TASKS) and all(t.state == x0x.TaskState.DONE for t in s.tasks)
            return s if done and len(heard) == 2 else None

        snap = await until("the private list done and both others heard in the group", deadline, finished)
        write_atomic(shared / f"group-done-{LANG}", "done")
        info = await group.info()
        say(f"the private list is done (group epoch {info.epoch}, members {len(info.members)}); final list:")
        for task in snap.tasks:
            print(f"          {describe(task)}", flush=True)

        async def everyone_done() -> bool | None:
            check_hello()  # the others may still be waiting to hear us
            return True if all((shared / f"group-done-{lang}").exists() for lang in LANGS) else None

        await until("the others to finish phase 2", deadline, everyone_done)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: team_agent.py <shared dir> <bootstrap>")
    try:
        asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
    except Exception as e:  # the demo reports any failure and exits non-zero
        print(f"[{LANG}] FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
