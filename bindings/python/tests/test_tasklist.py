"""Task lists: every operation, typed snapshots, change streams, two agents, errors.

Skipped while the loaded libx0x lacks the x0x_tasklist_* functions.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import x0x
from conftest import STEP, arun, make_agent, next_of, overlay_pair

pytestmark = pytest.mark.skipif(
    not x0x.library_supports("x0x_tasklist_create"), reason="needs x0x_tasklist_* in libx0x"
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


async def wait_for(pred_coro, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(STEP / 0.1)):
        if await pred_coro():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@arun
async def test_single_agent_operations(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        tl = await x0x.TaskList.create(a, "groceries")
        assert HEX64.match(tl.id)
        changes = tl.changes()
        t1 = await tl.add_task("milk", "2 litres")
        t2 = await tl.add_task("bread")
        assert HEX64.match(t1) and t1 != t2
        ch = await next_of(changes, x0x.TaskChanged)
        assert (ch.list_id, ch.task_id, ch.op, ch.from_agent, ch.local) == (tl.id, t1, x0x.TaskOp.ADDED, a.agent_id, True)

        snap = await tl.snapshot()
        assert (snap.id, snap.name) == (tl.id, "groceries")
        assert [t.title for t in snap.tasks] == ["milk", "bread"]
        milk = snap.tasks[0]
        assert milk.description == "2 litres" and milk.state is x0x.TaskState.EMPTY
        assert milk.claimant is None and milk.claims == () and milk.assignee is None
        assert milk.created_by == a.agent_id and milk.created_at_ms > 1_600_000_000_000

        with pytest.raises(x0x.TaskNotClaimed):
            await tl.complete_task(t1)
        await tl.claim_task(t1)
        await tl.claim_task(t1)  # claiming again is fine
        (milk,) = [t for t in await tl.list_tasks() if t.id == t1]
        assert milk.state is x0x.TaskState.CLAIMED and milk.claimant == a.agent_id
        await tl.complete_task(t1)
        with pytest.raises(x0x.TaskDone):
            await tl.claim_task(t1)
        await tl.reopen_task(t1)
        (milk,) = [t for t in await tl.list_tasks() if t.id == t1]
        assert milk.state is x0x.TaskState.EMPTY

        await tl.update_task(t2, title="rye bread", description="sliced", assignee=a.agent_id, priority=7)
        (bread,) = [t for t in await tl.list_tasks() if t.id == t2]
        assert (bread.title, bread.description, bread.assignee, bread.priority) == ("rye bread", "sliced", a.agent_id, 7)
        await tl.update_task(t2, assignee="")
        assert [t.assignee for t in await tl.list_tasks() if t.id == t2] == [None]

        await tl.move_task(t2, None)
        assert [t.id for t in await tl.list_tasks()] == [t2, t1]
        await tl.move_task(t2, t1)
        assert [t.id for t in await tl.list_tasks()] == [t1, t2]
        await tl.remove_task(t1)
        assert [t.id for t in await tl.list_tasks()] == [t2]

        missing = "00" * 32
        with pytest.raises(x0x.NotFound):
            await tl.claim_task(missing)
        with pytest.raises(ValueError, match="at least one"):
            await tl.update_task(t2)
        with pytest.raises(ValueError, match="priority"):
            await tl.update_task(t2, priority=256)
        with pytest.raises(ValueError, match="assignee"):
            await tl.update_task(t2, assignee="bob")
        with pytest.raises(ValueError, match="task_id"):
            await tl.claim_task("xyz")
        with pytest.raises(TypeError, match="title"):
            await tl.add_task(5)  # type: ignore[arg-type]

        ops = []
        while changes.qsize():
            ops.append(changes.get_nowait().op)
        assert x0x.TaskOp.REMOVED in ops and x0x.TaskOp.MOVED in ops

        list_id = tl.id
        await tl.leave()
        await tl.leave()  # idempotent
        assert tl.left and changes.closed
        with pytest.raises(x0x.Closed):
            await tl.add_task("late")
        # The persisted state comes back on join.
        again = await x0x.TaskList.join(a, list_id)
        assert [t.title for t in await again.list_tasks()] == ["rye bread"]
    with pytest.raises(x0x.Closed):
        await again.add_task("after close")
    assert again.left


@arun
async def test_two_agents_share_a_list(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        la = await x0x.TaskList.create(a, "shared")
        t1 = await la.add_task("write report")
        lb = await x0x.TaskList.join(b, la.id)
        assert lb.id == la.id
        remote = lb.changes()

        async def b_has_task() -> bool:
            return any(t.id == t1 for t in await lb.list_tasks())

        await wait_for(b_has_task, "b to catch up")
        # Only the creator writes until it grants b.
        snap = await lb.snapshot()
        assert (snap.creator, snap.writers, snap.open) == (a.agent_id, (), False)
        with pytest.raises(x0x.NotWriter):
            await lb.claim_task(t1)
        with pytest.raises(x0x.NotWriter):
            await lb.add_writer(b.agent_id)
        with pytest.raises(x0x.NotWriter):
            await lb.set_open(True)
        with pytest.raises(TypeError):
            await la.set_open(1)  # type: ignore[arg-type]
        await la.add_writer(b.agent_id)
        ch = await next_of(remote, x0x.TaskChanged, lambda c: c.op is x0x.TaskOp.ACCESS_CHANGED)
        assert ch.from_agent == a.agent_id and ch.local is False

        async def b_is_writer() -> bool:
            return b.agent_id in (await lb.snapshot()).writers

        await wait_for(b_is_writer, "b to see its grant")
        await lb.claim_task(t1)

        async def a_sees_claim() -> bool:
            return [t.claimant for t in await la.list_tasks() if t.id == t1] == [b.agent_id]

        await wait_for(a_sees_claim, "a to see b's claim")
        with pytest.raises(x0x.TaskClaimedByOther):
            await la.complete_task(t1)
        await lb.complete_task(t1)

        async def a_sees_done() -> bool:
            return [t.state for t in await la.list_tasks() if t.id == t1] == [x0x.TaskState.DONE]

        await wait_for(a_sees_done, "a to see the completion")
        t2 = await la.add_task("from a")
        ch = await next_of(remote, x0x.TaskChanged, lambda c: c.task_id == t2)
        assert ch.op is x0x.TaskOp.ADDED and ch.from_agent == a.agent_id and ch.local is False
        remote.close()


def test_parse_snapshot_rejects_garbage() -> None:
    from x0x.tasklist import parse_snapshot

    with pytest.raises(x0x.OtherError):
        parse_snapshot("{")
    with pytest.raises(x0x.OtherError):
        parse_snapshot('{"id": "x", "name": "n", "tasks": [{"id": "t"}]}')
    snap = parse_snapshot('{"id":"aa","name":"n","tasks":[]}')
    assert snap.tasks == ()
