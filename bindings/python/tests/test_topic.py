"""Topic handles: join/publish/subscribe between two agents, lag markers, neighbour events, validators, misuse."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

import x0x
from conftest import STEP, arun, make_agent, overlay_pair

HEX64 = re.compile(r"^[0-9a-f]{64}$")


async def publish_until(topic: x0x.Topic, payload: bytes, got: list[x0x.TopicMessage], also: bytes | None = None) -> None:
    """Publishes payload on topic every 0.2 s until a message with it is in got (trees form asynchronously)."""
    for _ in range(75):
        if also is not None:
            await topic.publish(also)
        await topic.publish(payload)
        await asyncio.sleep(0.2)
        if any(m.payload == payload for m in got):
            return
    raise AssertionError(f"{payload!r} never delivered")


def collect(sub: x0x.Subscription) -> tuple[list[x0x.TopicMessage], list[int], asyncio.Task[None]]:
    """Reads sub in the background: the messages, the LaggedError counts, the reading task."""
    msgs: list[x0x.TopicMessage] = []
    lags: list[int] = []

    async def read() -> None:
        while True:
            try:
                async for m in sub:
                    msgs.append(m)
                return
            except x0x.LaggedError as e:
                lags.append(e.missed)

    return msgs, lags, asyncio.ensure_future(read())


@arun
async def test_join_publish_subscribe_between_two_agents(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        async with await a.join("handles") as ta, await a.join("handles") as ta2, await b.join("handles") as tb:
            assert (ta.name, ta.agent, ta.publish_only, ta.left) == ("handles", a, False, False)
            sa = ta.subscribe()
            sa2 = ta2.subscribe(capacity=100)
            sb = tb.subscribe()
            assert isinstance(sa, x0x.Subscription) and sa.topic == "handles" and sa2.capacity == 100
            at_a, _, ra = collect(sa)
            at_a2, _, ra2 = collect(sa2)
            at_b, _, rb = collect(sb)
            await publish_until(tb, b"b->a", at_a)
            for _ in range(50):
                if any(m.payload == b"b->a" for m in at_a2):
                    break
                await asyncio.sleep(0.1)
            m = next(m for m in at_a if m.payload == b"b->a")
            assert (m.topic, m.from_agent) == ("handles", b.agent_id)
            assert m.seq > 0 and m.hops >= 1 and m.timestamp > 1_600_000_000_000
            assert any(m.payload == b"b->a" for m in at_a2), "the second handle got it too"
            mid = await ta.publish(bytearray(b"a->b"))
            assert HEX64.match(mid)
            await publish_until(ta, b"a->b", at_b)
            assert any(m.payload == b"a->b" and m.from_agent == a.agent_id for m in at_a), "own messages too"

            # A publish-only handle reaches the subscribers.
            async with await b.join("handles", publish_only=True) as po:
                assert po.publish_only
                with pytest.raises(x0x.InvalidArgument):
                    po.subscribe()
                await publish_until(po, b"publish-only", at_a)

            # Leaving one handle ends its subscriptions; the other goes on.
            await ta.leave()
            await ta.leave()  # idempotent
            await asyncio.wait_for(ra, STEP)
            assert sa.closed and ta.left
            await publish_until(tb, b"after leave", at_a2)
            assert not any(m.payload == b"after leave" for m in at_a)
            sa2.close()
            sb.close()
            await asyncio.wait_for(asyncio.gather(ra2, rb), STEP)


@arun
async def test_lag_marker_after_a_slow_reader(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        topic = await a.join("lag")
        # The subscription's own queue of 5 overflows: 5 messages, then one
        # LaggedError for the 25 lost, then the subscription goes on.
        sub = topic.subscribe(capacity=5)
        for i in range(30):
            await topic.publish(b"m%d" % i)
        for _ in range(200):
            if sub.dropped == 25:
                break
            await asyncio.sleep(0.02)
        assert sub.dropped == 25
        got = [(await asyncio.wait_for(sub.get(), STEP)).payload for _ in range(5)]
        assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        with pytest.raises(x0x.LaggedError) as ei:
            await asyncio.wait_for(sub.get(), STEP)
        assert ei.value.missed == 25
        await topic.publish(b"m30")
        assert (await asyncio.wait_for(sub.get(), STEP)).payload == b"m30"
        sub.close()

    # The library's own queue of 4 overflows while nothing drains it: its
    # lag marker reaches the reader, and the counts add up.
    async with make_agent(tmp_path, "c", event_queue_capacity=4) as c:
        ct = await c.join("lag")
        cs = ct.subscribe()
        c._remove_reader()
        for i in range(40):
            await ct.publish(b"n%d" % i)
        for _ in range(200):
            if c.events_dropped >= 36:
                break
            await asyncio.sleep(0.02)
        assert c.events_dropped == 36
        c._watch_events()
        msgs, lags, reader = collect(cs)
        for _ in range(200):
            if lags:
                break
            await asyncio.sleep(0.02)
        await ct.publish(b"last")
        for _ in range(200):
            if any(m.payload == b"last" for m in msgs):
                break
            await asyncio.sleep(0.02)
        assert lags == [36], lags
        assert [m.payload for m in msgs] == [b"n0", b"n1", b"n2", b"n3", b"last"]
        cs.close()
        await asyncio.wait_for(reader, STEP)


@arun
async def test_neighbour_events_and_list(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        ta = await a.join("nb")
        async with ta.events() as events:
            assert isinstance(events, x0x.TopicEvents) and events.topic == "nb"
            tb = await b.join("nb")
            up = await asyncio.wait_for(events.get(), STEP)
            assert (up.kind, up.topic, up.peer, up.up) == (x0x.EventKind.TOPIC_NEIGHBOUR_UP, "nb", b.machine_id, True)
            assert ta.neighbours() == [b.machine_id]
            await tb.leave()
            down = await asyncio.wait_for(events.get(), STEP)
            assert (down.kind, down.peer, down.up) == (x0x.EventKind.TOPIC_NEIGHBOUR_DOWN, b.machine_id, False)
        assert events.closed
        await ta.leave()


@arun
async def test_validators(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        seen: list[x0x.TopicMessage] = []

        def no_bad(m: x0x.TopicMessage) -> bool:
            seen.append(m)
            return not m.payload.startswith(b"bad")

        ta = await a.join("valid", validator=no_bad)
        got, _, reader = collect(ta.subscribe())
        tb = await b.join("valid")
        await publish_until(tb, b"good", got, also=b"bad one")
        await asyncio.sleep(0.3)
        assert not any(m.payload.startswith(b"bad") for m in got), "a refused message was delivered"
        assert any(m.payload == b"bad one" and m.from_agent == b.agent_id and m.topic == "valid" for m in seen)
        with pytest.raises(x0x.Rejected) as ei:
            await ta.publish(b"bad local")
        assert ei.value.status == "X0X_ERR_REJECTED" and ei.value.code == 19
        await ta.publish(b"good local")
        await ta.leave()
        await asyncio.wait_for(reader, STEP)

    async with make_agent(tmp_path, "c") as c:

        async def slow_yes(m: x0x.TopicMessage) -> bool:
            await asyncio.sleep(0.01)
            return m.payload == b"yes"

        def broken(m: x0x.TopicMessage) -> bool:
            raise RuntimeError("validator bug")

        async def never(m: x0x.TopicMessage) -> bool:
            await asyncio.sleep(3600)
            return True

        t1 = await c.join("async", validator=slow_yes)
        await t1.publish(b"yes")
        with pytest.raises(x0x.Rejected):
            await t1.publish(b"no")
        t2 = await c.join("broken", validator=broken)
        with pytest.raises(x0x.Rejected):
            await t2.publish(b"x")
        t3 = await c.join("silent", validator=never, validation_timeout=0.1)
        start = time.monotonic()
        with pytest.raises(x0x.Rejected):
            await t3.publish(b"x")
        assert time.monotonic() - start >= 0.09
        # Once its handle is left, a validator no longer applies.
        await t1.leave()
        t4 = await c.join("async")
        await t4.publish(b"no")


@arun
async def test_misuse_raises_typed_errors(tmp_path: Path) -> None:
    a = await x0x.Agent.create(data_dir=tmp_path / "a", bind_addr="127.0.0.1:0")
    with pytest.raises(ValueError):
        await a.join("")
    with pytest.raises(ValueError):
        await a.join("t" * 257)
    with pytest.raises(TypeError):
        await a.join(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await a.join("t", validator=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await a.join("t", publish_only="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await a.join("t", validation_timeout=11)
    with pytest.raises(ValueError):
        await a.join("t", validation_timeout=0)
    with pytest.raises(TypeError):
        x0x.Topic(object(), a, 1, "t", False, None)
    t = await a.join("t")
    with pytest.raises(ValueError):
        t.subscribe(capacity=0)
    with pytest.raises(TypeError):
        await t.publish(42)  # type: ignore[arg-type]
    with pytest.raises(x0x.TooLarge, match="limit is 1048576"):
        await t.publish(bytes(1024 * 1024 + 1))
    sub = t.subscribe()
    events = t.events()
    await t.leave()
    assert sub.closed and events.closed
    with pytest.raises(StopAsyncIteration):
        await sub.get()
    sub.close()  # fine after leave
    with pytest.raises(x0x.InvalidHandle):
        await t.publish(b"x")
    with pytest.raises(x0x.InvalidHandle):
        t.subscribe()
    with pytest.raises(x0x.InvalidHandle):
        t.events()
    with pytest.raises(x0x.InvalidHandle):
        t.neighbours()

    # The library refuses stale, foreign and wrong-kind handles with a status.
    lib = x0x._lib.lib
    assert lib.x0x_topic_publish(0x05FFFFFFFFFFFFFF, b"x", 1, None) == x0x.InvalidHandle.CODE
    assert lib.x0x_subscription_close(0) == x0x.InvalidHandle.CODE
    assert lib.x0x_topic_leave(a._handle) == x0x.InvalidHandle.CODE  # an agent handle
    assert lib.x0x_topic_validation_result(t._handle, 1, 0) == x0x.InvalidHandle.CODE  # left

    other = await a.join("u")
    osub = other.subscribe()
    waiting = asyncio.ensure_future(osub.get())
    await asyncio.sleep(0.05)
    await a.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, STEP)
    with pytest.raises(x0x.Closed):
        await a.join("t")
    with pytest.raises(x0x.Closed):
        await other.publish(b"x")
    with pytest.raises(x0x.Closed):
        other.subscribe()
    with pytest.raises(x0x.Closed):
        other.neighbours()
    await other.leave()  # nothing to do after close
    assert other.left


@arun
async def test_deprecated_subscribe_runs_on_a_topic_handle(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        events = a.events()
        s1 = await a.subscribe("c")
        s2 = await a.subscribe("c")
        assert isinstance(s1, x0x.Subscription) and s1.topic == "c"
        await a.publish("c", b"old")
        assert (await asyncio.wait_for(s1.get(), STEP)).payload == b"old"
        assert (await asyncio.wait_for(s2.get(), STEP)).payload == b"old"
        # agent.events() still gets the messages of deprecated subscriptions.
        ev = await asyncio.wait_for(events.get(), STEP)
        assert isinstance(ev, x0x.TopicMessage) and ev.payload == b"old"
        # Ending one leaves its own topic handle only.
        handle = s1._parent._handle if s1._parent else 0
        s1.close()
        assert handle and x0x._lib.lib.x0x_topic_leave(handle) == x0x.InvalidHandle.CODE
        await a.publish("c", b"again")
        assert (await asyncio.wait_for(s2.get(), STEP)).payload == b"again"
        await s2.unsubscribe()
        events.close()
