"""Private groups: invitations, messages both ways, group task lists, removal, decline, restored
groups, bad input.

Every agent binds 127.0.0.1. Skipped while the loaded libx0x lacks the
x0x_group_* functions (ABI 0.7).
"""

from __future__ import annotations

import asyncio
import ctypes
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

import x0x
from conftest import STEP, arun, make_agent, next_of, overlay_pair

pytestmark = pytest.mark.skipif(not x0x.library_supports("x0x_group_create"), reason="needs x0x_group_* in libx0x")

HEX64 = re.compile(r"^[0-9a-f]{64}$")
T = TypeVar("T")


def collect(stream: x0x.Stream[T]) -> tuple[list[T], asyncio.Task[None]]:
    """Reads stream in the background (reading on after a LaggedError): the items and the reading task."""
    items: list[T] = []

    async def read() -> None:
        while True:
            try:
                async for it in stream:
                    items.append(it)
                return
            except x0x.LaggedError:
                continue

    return items, asyncio.ensure_future(read())


async def wait_for(pred: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(int(STEP / 0.1)):
        if await pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def publish_until(group: x0x.Group, data: bytes, got: list[x0x.GroupMessage]) -> None:
    """Publishes data every 0.2 s until a message with it is in got (the group's topic forms asynchronously)."""
    for _ in range(int(STEP / 0.2)):
        await group.publish(data)
        await asyncio.sleep(0.2)
        if any(m.data == data for m in got):
            return
    raise AssertionError(f"{data!r} never delivered")


async def invite_and_accept(
    inviter: x0x.Group, invitee: x0x.Agent, events: x0x.EventStream
) -> tuple[x0x.Group, x0x.GroupInvitation]:
    await inviter.invite(invitee.agent_id, timeout=STEP)
    inv = await next_of(events, x0x.GroupInvitation, lambda i: i.group == inviter.id)
    return await invitee.accept_invitation(inv.group), inv


@asynccontextmanager
async def overlay_trio(tmp: Path) -> AsyncIterator[tuple[x0x.Agent, x0x.Agent, x0x.Agent]]:
    """Agents a, b and c where b and c bootstrap from a (both directly connected to it)."""
    async with overlay_pair(tmp) as (a, b):
        async with make_agent(tmp, "c", bootstrap=[a.dial_addr]) as c:
            await c.join_network(timeout=STEP)
            await c.wait_for_agent(a.agent_id, timeout=STEP)
            await a.wait_for_agent(c.agent_id, timeout=STEP)
            yield a, b, c


@arun
async def test_invite_accept_messages_tasks_and_removal(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        kp = await b.publish_key_package()
        assert isinstance(kp, bytes) and len(kp) > 100
        eb = b.events()

        ga = await a.create_group()
        assert HEX64.match(ga.id) and ga.agent is a and not ga.closed
        info = await ga.info()
        assert (info.id, info.members, info.closed) == (ga.id, (a.agent_id,), False)
        assert a.agent_id in info.online
        a_changes, _ = collect(ga.events())

        gb, inv = await invite_and_accept(ga, b, eb)
        assert isinstance(inv, x0x.Invitation) and inv.kind is x0x.EventKind.GROUP_INVITATION
        assert (inv.group, inv.from_agent) == (ga.id, a.agent_id)
        assert set(inv.members) == {a.agent_id, b.agent_id} and inv.epoch >= 1
        assert gb.id == ga.id and isinstance(gb, x0x.Group)
        assert await b.invitations() == []
        with pytest.raises(x0x.NotFound):
            await b.accept_invitation(ga.id)  # answered already
        with pytest.raises(x0x.AlreadyMember):
            await ga.invite(b.agent_id, timeout=STEP)

        async def same_view() -> bool:
            ia, ib = await ga.info(), await gb.info()
            return ia.members == ib.members == tuple(sorted((a.agent_id, b.agent_id))) and ia.epoch == ib.epoch

        await wait_for(same_view, "both members to agree on the group")

        # Messages both ways; a group does not echo a member's own messages.
        at_a, _ = collect(ga.messages())
        at_b, _ = collect(gb.messages())
        b_events, _ = collect(gb.events())
        await publish_until(ga, b"a->b", at_b)
        await publish_until(gb, b"b->a", at_a)
        m = next(m for m in at_b if m.data == b"a->b")
        assert isinstance(m, x0x.GroupMessage) and m.kind is x0x.EventKind.GROUP_MESSAGE
        assert (m.group, m.from_agent) == (ga.id, a.agent_id) and m.epoch == (await ga.info()).epoch
        assert all(m.from_agent == b.agent_id for m in at_a)
        assert all(m.from_agent == a.agent_id for m in at_b)
        await ga.publish(b"")  # empty messages are fine

        async def empty_arrived() -> bool:
            return any(m.data == b"" for m in at_b)

        await wait_for(empty_arrived, "the empty message")
        joined = [e for e in a_changes if e.kind == "member-joined"]
        assert joined and joined[0].agent == b.agent_id and joined[0].group == ga.id
        assert isinstance(joined[0].kind, x0x.GroupChange)

        # A slow reader: a stream of capacity 2 reports what it lost with LaggedError.
        slow = gb.messages(capacity=2)
        for i in range(6):
            await ga.publish(b"burst %d" % i)

        async def burst_arrived() -> bool:
            return any(m.data == b"burst 5" for m in at_b)

        await wait_for(burst_arrived, "the burst")
        got = [slow.get_nowait(), slow.get_nowait()]
        with pytest.raises(x0x.LaggedError) as ei:
            slow.get_nowait()
        assert ei.value.missed == 4 and slow.dropped == 4
        assert [g.data for g in got] == [b"burst 0", b"burst 1"]
        slow.close()
        assert slow.closed

        # Update: a new epoch, seen by the other member.
        before = (await ga.info()).epoch
        await gb.update()

        async def a_sees_new_epoch() -> bool:
            return any(e.kind == x0x.GroupChange.EPOCH_CHANGED and e.epoch > before for e in a_changes)

        await wait_for(a_sees_new_epoch, "a to see b's update")
        ec = next(e for e in a_changes if e.kind == x0x.GroupChange.EPOCH_CHANGED and e.epoch > before)
        assert ec.agent is None

        # A task list of the group: both members add, claim and complete.
        la = await ga.create_task_list("secret plans")
        assert isinstance(la, x0x.TaskList) and HEX64.match(la.id)
        t1 = await la.add_task("from a")
        lb = await gb.join_task_list(la.id)
        assert lb.id == la.id

        async def b_sees_t1() -> bool:
            return any(t.id == t1 for t in await lb.list_tasks())

        await wait_for(b_sees_t1, "b to catch up with the group's list")
        t2 = await lb.add_task("from b")
        await lb.claim_task(t1)
        await lb.complete_task(t1)

        async def a_sees_b() -> bool:
            ts = {t.id: t for t in await la.list_tasks()}
            return t2 in ts and ts[t1].state is x0x.TaskState.DONE and ts[t1].claimant == b.agent_id

        await wait_for(a_sees_b, "a to see b's task and completion")
        await la.claim_task(t2)
        await la.complete_task(t2)

        async def all_done_at_b() -> bool:
            ts = await lb.list_tasks()
            return len(ts) == 2 and all(t.state is x0x.TaskState.DONE for t in ts)

        await wait_for(all_done_at_b, "b to see every task done")

        # Removal: b gets "removed", its group and the group's list close.
        await ga.remove(b.agent_id)

        async def b_removed() -> bool:  # and the collector read the event (it runs after the dispatcher)
            return gb.removed and any(e.kind == "removed" for e in b_events)

        await wait_for(b_removed, "b to be removed")
        removed = [e for e in b_events if e.kind == "removed"]
        assert len(removed) == 1 and removed[0].agent is None and removed[0].group == ga.id
        assert gb.closed and lb.left
        info_b = await gb.info()  # still answers after the removal
        assert info_b.closed
        with pytest.raises(x0x.Closed):
            await gb.publish(b"after removal")
        with pytest.raises(x0x.Closed):
            gb.messages()
        with pytest.raises(x0x.Closed):
            await lb.add_task("after removal")

        async def a_sees_left() -> bool:
            return (await ga.info()).members == (a.agent_id,) and any(
                e.kind == "member-left" and e.agent == b.agent_id for e in a_changes
            )

        await wait_for(a_sees_left, "a to see b gone")
        assert any(t.title == "from a" for t in await la.list_tasks())
        await gb.close()
        await gb.close()  # idempotent
        with pytest.raises(x0x.Closed):
            await gb.info()
        await ga.close()
        assert la.left
        eb.close()


@arun
async def test_refused_decline_key_package_and_leave(tmp_path: Path) -> None:
    async with overlay_trio(tmp_path) as (a, b, c):
        ga = await a.create_group()
        changes, _ = collect(ga.events())
        # c has not published a key package: it refuses invitations.
        with pytest.raises(x0x.Refused) as ei:
            await ga.invite(c.agent_id, timeout=STEP)
        assert ei.value.code == 22 and ei.value.status == "X0X_ERR_REFUSED"

        # A key package handed over by other means; c declines the invitation.
        ec = c.events()
        kp = await c.publish_key_package()
        await ga.invite_key_package(kp, timeout=STEP)
        inv = await next_of(ec, x0x.GroupInvitation)
        assert (inv.group, inv.from_agent) == (ga.id, a.agent_id)
        pending = await c.invitations()
        assert [(p.group, p.from_agent, p.epoch) for p in pending] == [(inv.group, inv.from_agent, inv.epoch)]
        assert sorted(pending[0].members) == sorted(inv.members)
        await c.decline_invitation(inv.group)
        assert await c.invitations() == []
        with pytest.raises(x0x.NotFound):
            await c.decline_invitation(inv.group)

        async def c_taken_out() -> bool:
            return c.agent_id not in (await ga.info()).members

        await wait_for(c_taken_out, "a to remove c after the decline")

        # b joins, then leaves by itself.
        eb = b.events()
        await b.publish_key_package()
        gb, _ = await invite_and_accept(ga, b, eb)
        b_events, _ = collect(gb.events())
        with pytest.raises(x0x.NotMember):
            await gb.remove(gb.agent.agent_id)  # itself: leave instead
        await gb.leave()

        async def b_gone() -> bool:
            return gb.removed and (await ga.info()).members == (a.agent_id,)

        await wait_for(b_gone, "b's leave to complete")
        assert [e.kind for e in b_events if e.kind == "removed"] == [x0x.GroupChange.REMOVED]
        assert any(e.kind == "member-left" and e.agent == b.agent_id for e in changes)
        with pytest.raises(x0x.NotMember):
            await ga.leave()  # the only member: close instead
        await ga.close()
        await gb.close()


@arun
async def test_groups_restored_from_the_data_directory(tmp_path: Path) -> None:
    """An agent created again from its data directory has its groups open: groups(), group(), messages."""
    async with make_agent(tmp_path, "a") as a:

        @asynccontextmanager
        async def start_b() -> AsyncIterator[x0x.Agent]:
            async with make_agent(tmp_path, "b", bootstrap=[a.dial_addr]) as b:
                await b.join_network(timeout=STEP)
                await a.wait_for_agent(b.agent_id, timeout=STEP)
                yield b

        async with start_b() as b:
            await b.publish_key_package()
            ga = await a.create_group()
            assert await a.groups() == [ga]
            assert await a.group(ga.id) is ga
            await invite_and_accept(ga, b, b.events())
            b_id = b.agent_id

            async def joined() -> bool:
                return b_id in (await ga.info()).members

            await wait_for(joined, "b to join")

        async with start_b() as b:
            assert b.agent_id == b_id
            restored = await b.groups()
            assert [g.id for g in restored] == [ga.id]
            gb = restored[0]
            assert isinstance(gb, x0x.Group) and gb.agent is b and not gb.closed
            assert await b.groups() == [gb]  # the same Group again
            assert await b.group(ga.id) is gb
            assert await b.group(bytes.fromhex(ga.id)) is gb
            with pytest.raises(x0x.NotFound):
                await b.group("00" * 32)
            with pytest.raises(ValueError, match="group_id"):
                await b.group("xyz")
            assert (await gb.info()).members == tuple(sorted((a.agent_id, b_id)))

            # Messages both ways.
            at_b, _ = collect(gb.messages())
            at_a, _ = collect(ga.messages())
            await publish_until(ga, b"after the restart", at_b)
            await publish_until(gb, b"back again", at_a)
            assert next(m for m in at_b if m.data == b"after the restart").from_agent == a.agent_id

            # Closed, it is not open until b starts again; x0x_group_open may still
            # give the handle of a group being closed, which names no Group then.
            handle = gb._handle
            await gb.close()
            assert await b.groups() == []
            with pytest.raises(x0x.NotFound):
                await b.group(ga.id)
            from x0x.group import _reopened

            assert _reopened(b, "test", handle, ga.id) is None

        async with make_agent(tmp_path, "b") as b:
            assert [g.id for g in await b.groups()] == [ga.id]
    with pytest.raises(x0x.Closed):
        await b.groups()
    with pytest.raises(x0x.Closed):
        await b.group(ga.id)


@arun
async def test_bad_input_raises_typed_errors(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        for bad_id in ("xyz", "00" * 31, b"short"):
            with pytest.raises(ValueError, match="group_id"):
                await a.accept_invitation(bad_id)
        with pytest.raises(TypeError, match="group_id"):
            await a.accept_invitation(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="group_id"):
            await a.decline_invitation(None)  # type: ignore[arg-type]
        with pytest.raises(x0x.NotFound):
            await a.accept_invitation("00" * 32)
        with pytest.raises(x0x.NotFound):
            await a.decline_invitation(bytes(32))
        assert await a.invitations() == []

        g = await a.create_group()
        with pytest.raises(TypeError, match="create_group"):
            x0x.Group(object(), a, 1, "00" * 32)
        with pytest.raises(ValueError, match="agent_id"):
            await g.invite("not hex")
        with pytest.raises(TypeError, match="agent_id"):
            await g.invite(123)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            await g.invite(a.agent_id, timeout=-1)
        with pytest.raises(TypeError, match="data"):
            await g.publish(42)  # type: ignore[arg-type]
        await g.publish("text")  # a str is sent as UTF-8
        with pytest.raises(x0x.TooLarge, match="data"):
            await g.publish(b"x" * (960 * 1024 + 1))
        await g.publish(b"x" * (960 * 1024))  # the limit itself is fine
        with pytest.raises(ValueError, match="key_package"):
            await g.invite_key_package(b"")
        with pytest.raises(TypeError, match="key_package"):
            await g.invite_key_package("kp")  # type: ignore[arg-type]
        with pytest.raises(x0x.Corrupt):
            await g.invite_key_package(b"\x01" * 64)  # not a key package
        with pytest.raises(x0x.NotMember):
            await g.remove(a.agent_id)
        with pytest.raises(x0x.NotMember):
            await g.remove("11" * 32)
        with pytest.raises(x0x.NotMember):
            await g.leave()  # the only member
        with pytest.raises(x0x.NoRoute):
            await g.invite("22" * 32, timeout=2)
        with pytest.raises(ValueError, match="capacity"):
            g.messages(capacity=0)
        with pytest.raises(TypeError, match="capacity"):
            g.events(capacity="9")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name"):
            await g.create_task_list(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="list_id"):
            await g.join_task_list("zz")
        await g.update()
        assert (await g.info()).epoch >= 1
        # Its coroutines may run on another loop, in another thread.
        info = await asyncio.to_thread(asyncio.run, g.info())
        assert info.id == g.id and info.members == (a.agent_id,)

        # A cancelled create_group closes the group it made.
        task = asyncio.ensure_future(a.create_group())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert list(a._groups.values()) == [g]

        # A group list is not open outside the group.
        tl = await g.create_task_list("mine")
        plain = await x0x.TaskList.create(a, "plain")
        with pytest.raises(x0x.InvalidArgument):
            await g.join_task_list(plain.id)

        msgs = g.messages()
        await g.close()
        await g.close()  # idempotent
        assert g.closed and msgs.closed and tl.left
        assert "closed" in repr(g)
        for call in (
            lambda: g.publish(b"x"),
            lambda: g.info(),
            lambda: g.invite(a.agent_id),
            lambda: g.update(),
            lambda: g.leave(),
            lambda: g.create_task_list("late"),
        ):
            with pytest.raises(x0x.Closed):
                await call()
        with pytest.raises(x0x.Closed):
            g.messages()
        with pytest.raises(x0x.Closed):
            await tl.add_task("late")

        g2 = await a.create_group()
    # After the agent closed.
    assert g2.closed
    with pytest.raises(x0x.Closed):
        await g2.publish(b"x")
    with pytest.raises(x0x.Closed):
        await a.create_group()
    with pytest.raises(x0x.Closed):
        await a.publish_key_package()
    with pytest.raises(x0x.Closed):
        g2.events()
    await g2.close()  # nothing to do


def test_c_calls_with_bad_handles_do_not_crash() -> None:
    lib = x0x._lib.lib
    out = ctypes.c_uint64(0)
    ptr = ctypes.c_void_p()
    n = ctypes.c_size_t(0)
    for rc in (
        lib.x0x_group_publish(0, b"x", 1),
        lib.x0x_group_publish(987654321, None, 0),
        lib.x0x_group_info(12345, ctypes.byref(ptr)),
        lib.x0x_group_close(0),
        lib.x0x_group_update(424242),
        lib.x0x_group_create(0, ctypes.byref(out)),
        lib.x0x_keypackage_publish(0, ctypes.byref(ptr), ctypes.byref(n)),
        lib.x0x_invitations(77, ctypes.byref(ptr)),
        lib.x0x_groups(77, ctypes.byref(ptr)),
        lib.x0x_group_open(0, bytes(32), ctypes.byref(out)),
    ):
        assert rc == x0x.InvalidHandle.CODE
    assert ptr.value is None and out.value == 0


def test_parsers_reject_garbage() -> None:
    from x0x.group import parse_group_ids, parse_info, parse_invitations

    for bad in ("{", "[1]", '[{"group": 5, "from": "aa"}]', '[{"group": "aa", "from": "bb", "epoch": "1"}]', "{}"):
        with pytest.raises(x0x.OtherError):
            parse_invitations(bad)
    assert parse_invitations("[]") == [] and parse_invitations("null") == []
    for bad in ("{", "{}", "[1]", '"aa"'):
        with pytest.raises(x0x.OtherError):
            parse_group_ids(bad)
    assert parse_group_ids('["aa","bb"]') == ["aa", "bb"] and parse_group_ids("[]") == []
    inv = parse_invitations('[{"group":"aa","from":"bb","members":["bb","cc"],"epoch":3}]')
    assert inv == [x0x.GroupInvitation("aa", "bb", ["bb", "cc"], 3)]
    for bad in ("[]", "{", '{"id": 1}', '{"id": "aa", "members": [1]}', '{"id": "aa", "epoch": null}'):
        with pytest.raises(x0x.OtherError):
            parse_info(bad)
    info = parse_info('{"id":"aa","epoch":2,"members":["bb"],"online":[],"closed":true}')
    assert info == x0x.GroupInfo("aa", 2, ("bb",), (), True)


def test_error_classes() -> None:
    for cls, code, status in (
        (x0x.NotMember, 20, "X0X_ERR_NOT_MEMBER"),
        (x0x.AlreadyMember, 21, "X0X_ERR_ALREADY_MEMBER"),
        (x0x.Refused, 22, "X0X_ERR_REFUSED"),
    ):
        err = x0x.errors.error_for_status(code, "m")
        assert type(err) is cls and isinstance(err, x0x.X0xError)
        assert (err.code, err.status) == (code, status)
        assert x0x.status_name(code) == status
