"""Two agents over loopback: connect, events, direct messages and pub/sub both ways."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest

import x0x
from conftest import STEP, arun, connect_pair, make_agent, next_of, overlay_pair

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@arun
async def test_create_identity_and_address(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        assert HEX64.match(a.agent_id) and HEX64.match(a.machine_id)
        assert a.agent_id != a.machine_id
        host, port = a.addr.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert a.dial_addr == f"{a.machine_id}@{a.addr}"
        assert await a.connected_peers() == []
        assert a.events_dropped == 0
        first_id = a.agent_id
    # Keys persist in the data directory: the same agent comes back.
    async with make_agent(tmp_path, "a") as again:
        assert again.agent_id == first_id


@arun
async def test_nat_type_and_external_address(tmp_path: Path) -> None:
    # Two peers at different IPs see the agent at its own address: first the
    # NAT type, then the external address (one peer alone reports neither).
    async with make_agent(tmp_path, "n") as n, make_agent(tmp_path, "o1") as o1, make_agent(
        tmp_path, "o2", bind_addr="127.0.0.2:0"
    ) as o2:
        events = n.events()
        await n.connect(o1.dial_addr, timeout=STEP)
        await n.connect(o2.dial_addr, timeout=STEP)
        nat_kinds = (x0x.NatTypeDetected, x0x.ExternalAddressDiscovered)
        ev = await next_of(events, object, lambda e: isinstance(e, nat_kinds))
        assert isinstance(ev, x0x.NatTypeDetected), ev
        assert ev.nat_type == "none" and ev.addr == n.addr
        assert ev.kind is x0x.EventKind.NAT_TYPE_DETECTED
        ext = await next_of(events, object, lambda e: isinstance(e, nat_kinds))
        assert isinstance(ext, x0x.ExternalAddressDiscovered), ext
        assert ext.addr == n.addr
        assert ext.kind is x0x.EventKind.EXTERNAL_ADDRESS_DISCOVERED


@arun
async def test_connect_events_and_direct_both_ways(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a, make_agent(tmp_path, "b") as b:
        ea, eb = a.events(), b.events()
        await connect_pair(a, b)
        # Both sides report the connection, with the other's agent.
        ca = await next_of(ea, x0x.PeerConnected)
        cb = await next_of(eb, x0x.PeerConnected)
        assert ca.peer == b.machine_id and cb.peer == a.machine_id
        assert await a.connected_peers() == [b.machine_id]
        assert await b.connected_peers() == [a.machine_id]
        assert await b.peer_agents(a.machine_id) == [a.agent_id]

        await b.send_direct(a.agent_id, b"from b", timeout=STEP)
        m = await next_of(ea, x0x.DirectMessage)
        assert (m.from_agent, m.to_agent, m.peer, m.payload) == (b.agent_id, a.agent_id, b.machine_id, b"from b")
        assert m.kind is x0x.EventKind.DIRECT_MESSAGE

        big = bytes(range(256)) * 1024  # 256 KiB, bytearray accepted too
        await a.send_direct(bytes.fromhex(b.agent_id), bytearray(big), timeout=STEP)
        m = await next_of(eb, x0x.DirectMessage)
        assert m.from_agent == a.agent_id and m.payload == big

        # b leaves: a sees the disconnection.
        await b.close()
        d = await next_of(ea, x0x.PeerDisconnected)
        assert d.peer == b.machine_id
        ea.close()
        eb.close()


@arun
async def test_pubsub_both_ways(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        sa = await a.subscribe("room")
        sb = await b.subscribe("room")
        other = await b.subscribe("elsewhere")
        await asyncio.sleep(0.5)  # let the overlay learn the subscriptions

        async def until_received(pub: x0x.Agent, sub: x0x.Subscription, payload: bytes) -> x0x.TopicMessage:
            # Publish repeatedly until the mesh delivers one from pub (the
            # topic tree forms asynchronously after subscribing).
            for _ in range(60):
                await pub.publish("room", payload)
                deadline = asyncio.get_running_loop().time() + 0.3
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    try:
                        msg = await asyncio.wait_for(sub.get(), left)
                    except asyncio.TimeoutError:
                        break
                    if msg.from_agent == pub.agent_id:
                        return msg
            raise AssertionError("message never delivered")

        m = await until_received(a, sb, b"a->b")
        assert (m.topic, m.from_agent, m.payload) == ("room", a.agent_id, b"a->b")
        assert m.seq >= 1 and m.timestamp > 1_600_000_000_000
        assert m.hops >= 1  # a remote message crossed at least one link
        assert m.peer is None  # libx0x does not say which neighbour delivered it
        m = await until_received(b, sa, b"b->a")
        assert (m.topic, m.from_agent, m.payload) == ("room", b.agent_id, b"b->a")
        # The other topic's subscription got nothing.
        assert other.qsize() == 0

        # Sequence numbers grow per publisher; message IDs are distinct hex.
        ids = {await a.publish("room", b"x%d" % i) for i in range(3)}
        assert len(ids) == 3 and all(HEX64.match(i) for i in ids)
        seen: list[x0x.TopicMessage] = []
        while len(seen) < 3:
            msg = await asyncio.wait_for(sb.get(), STEP)
            if msg.payload.startswith(b"x") and msg.from_agent == a.agent_id:
                seen.append(msg)
        assert [s.payload for s in seen] == [b"x0", b"x1", b"x2"]
        assert seen[0].seq < seen[1].seq < seen[2].seq

        await other.unsubscribe()
        await other.unsubscribe()  # idempotent
        assert other.closed
        with pytest.raises(StopAsyncIteration):
            await other.get()
        async with sa, sb:
            pass
        assert sa.closed and sb.closed


@arun
async def test_two_subscriptions_same_topic_and_async_for(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        s1 = await a.subscribe("t")
        s2 = await a.subscribe("t")
        # A local publish reaches local subscribers.
        for _ in range(40):
            await a.publish("t", b"one")
            try:
                await asyncio.wait_for(s1.get(), 0.5)
                break
            except asyncio.TimeoutError:
                continue
        else:
            raise AssertionError("a node's own publication never reached its subscription")
        got = await asyncio.wait_for(s2.get(), STEP)
        assert got.payload == b"one"
        # Ending one subscription keeps the topic subscribed for the other.
        await s1.unsubscribe()
        await a.publish("t", b"two")

        async def read_until_two() -> bytes:
            async for msg in s2:
                if msg.payload == b"two":
                    return msg.payload
            return b""

        assert await asyncio.wait_for(read_until_two(), STEP) == b"two"
        await s2.unsubscribe()


@arun
async def test_stream_bounded_queue_counts_drops(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a", event_queue_capacity=4096) as a:
        small = a.events(capacity=10)
        big = a.events(capacity=5000)
        await a.debug_inject_events(300, 16)
        got = 0
        while got < 300:
            ev = await asyncio.wait_for(big.get(), STEP)
            assert isinstance(ev, x0x.DirectMessage) and ev.payload == b"\xab" * 16
            assert ev.from_agent == ev.to_agent == a.agent_id
            got += 1
        assert small.qsize() == 10 and small.dropped == 290 and big.dropped == 0
        batch = small.get_batch_nowait(100)
        assert len(batch) == 10 and small.qsize() == 0
        with pytest.raises(asyncio.QueueEmpty):
            small.get_nowait()
        small.close()
        big.close()
        with pytest.raises(StopAsyncIteration):
            await small.get()


@arun
async def test_library_queue_full_is_counted(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a", event_queue_capacity=4) as a, make_agent(tmp_path, "b") as b:
        await connect_pair(a, b)
        # Stop reading a's events (remove the reader) so the library's queue
        # of 4 fills; the direct messages beyond it are dropped and counted.
        a._remove_reader()
        for i in range(12):
            await b.send_direct(a.agent_id, b"m%d" % i, timeout=STEP)
        for _ in range(200):
            if a.events_dropped >= 8:
                break
            await asyncio.sleep(0.05)
        assert a.events_dropped >= 8


@arun
async def test_close_ends_streams_and_is_idempotent(tmp_path: Path) -> None:
    a = await x0x.Agent.create(data_dir=tmp_path / "a")
    events = a.events()
    sub = await a.subscribe("t")

    async def drain(s: x0x.Stream[Any]) -> int:
        n = 0
        async for _ in s:
            n += 1
        return n

    readers = [asyncio.ensure_future(drain(events)), asyncio.ensure_future(drain(sub))]
    await asyncio.sleep(0.05)
    await asyncio.gather(a.close(), a.close(), a.close())
    await asyncio.wait_for(asyncio.gather(*readers), STEP)
    await a.close()
    assert a.closed and events.closed and sub.closed
    await sub.unsubscribe()  # fine after close
    with pytest.raises(x0x.Closed):
        await a.publish("t", b"x")
    with pytest.raises(x0x.Closed):
        await a.send_direct(a.agent_id, b"x")
    with pytest.raises(x0x.Closed):
        await a.subscribe("t")
    with pytest.raises(x0x.Closed):
        await a.join_network()
    with pytest.raises(x0x.Closed):
        await a.connect("127.0.0.1:9")
    with pytest.raises(x0x.Closed):
        a.events()
    with pytest.raises(x0x.Closed):
        _ = a.events_dropped
    with pytest.raises(x0x.Closed):
        await a.connected_peers()
    with pytest.raises(x0x.Closed):
        await a.export_identity("pw")
    # The identity stays readable.
    assert HEX64.match(a.agent_id)


@arun
async def test_join_network_via_bootstrap(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        async with make_agent(tmp_path, "b", bootstrap=[a.dial_addr]) as b:
            eb = b.events()
            await b.join_network(timeout=STEP)
            c = await next_of(eb, x0x.PeerConnected)
            assert c.peer == a.machine_id
            await b.wait_for_agent(a.agent_id, timeout=STEP)
            eb.close()


def test_cancelled_create_destroys_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Cancel create() while the C call runs (a passphrase makes it take
    # ~0.5 s): the agent the library makes anyway must be destroyed.
    from x0x import agent as agent_mod

    handles: list[int] = []
    real = agent_mod._destroy_orphan

    def spy(fut: "asyncio.Future[Any]") -> None:
        if not fut.cancelled() and fut.exception() is None:
            handles.append(fut.result()[0])
        real(fut)

    monkeypatch.setattr(agent_mod, "_destroy_orphan", spy)

    async def main() -> None:
        task = asyncio.ensure_future(x0x.Agent.create(data_dir=tmp_path / "a", passphrase="pw"))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if handles:
                break
            await asyncio.sleep(0.05)

    asyncio.run(main())
    assert len(handles) == 1
    for t in threading.enumerate():
        if t.name == "x0x-orphan-destroy":
            t.join(20)
    # Already destroyed: a second destroy is an invalid handle.
    assert x0x._lib.lib.x0x_agent_destroy(handles[0]) == x0x.InvalidHandle.CODE
