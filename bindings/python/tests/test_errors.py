"""Bad input: typed Python errors before any C call, and library statuses as typed X0xErrors."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

import x0x
from conftest import STEP, arun, connect_pair, make_agent


def test_error_hierarchy() -> None:
    e = x0x.errors.error_for_status(8, "x0x_join_network: too slow", "X0X_ERR_TIMEOUT")
    assert isinstance(e, x0x.X0xTimeout) and isinstance(e, TimeoutError) and isinstance(e, x0x.X0xError)
    assert (e.code, e.status, e.message) == (8, "X0X_ERR_TIMEOUT", "x0x_join_network: too slow")
    assert "X0X_ERR_TIMEOUT" in str(e)
    assert isinstance(x0x.errors.error_for_status(1, "m"), ValueError)
    assert isinstance(x0x.errors.error_for_status(9, "m"), x0x.TooLarge)
    unknown = x0x.errors.error_for_status(1234, "m")
    assert type(unknown) is x0x.X0xError and unknown.code == 1234 and unknown.status == "X0X_ERR_UNKNOWN"
    # Every status of the header maps to its class and the library agrees on its name.
    for cls in (
        x0x.InvalidArgument, x0x.InvalidHandle, x0x.Closed, x0x.X0xIOError, x0x.CryptoError,
        x0x.WrongPassphrase, x0x.NotFound, x0x.X0xTimeout, x0x.TooLarge, x0x.InternalPanic,
        x0x.NoRoute, x0x.Corrupt, x0x.AuthError, x0x.NoPeers, x0x.TaskDone, x0x.TaskNotClaimed,
        x0x.TaskClaimedByOther, x0x.NotWriter, x0x.Rejected, x0x.NotMember, x0x.AlreadyMember,
        x0x.Refused, x0x.OtherError,
    ):
        err = x0x.errors.error_for_status(cls.CODE, "m")
        assert type(err) is cls
        if cls.CODE in (15, 16, 17) and not x0x.library_supports("x0x_tasklist_create"):
            continue  # a library without task lists does not name their statuses yet
        if cls.CODE == 18 and not x0x.library_supports("x0x_tasklist_add_writer"):
            continue  # nor one without task-list writers (ABI 0.4)
        if cls.CODE == 19 and not x0x.library_supports("x0x_topic_join"):
            continue  # nor one without topic handles (ABI 0.6)
        if cls.CODE in (20, 21, 22) and not x0x.library_supports("x0x_group_create"):
            continue  # nor one without private groups (ABI 0.7)
        assert x0x.status_name(cls.CODE) == cls.STATUS
    assert x0x.status_name(4242) == "X0X_ERR_UNKNOWN"


BAD_CREATE: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"data_dir": 5}, TypeError, "data_dir"),
    ({"data_dir": ""}, ValueError, "data_dir"),
    ({"bind_addr": b"127.0.0.1:0"}, TypeError, "bind_addr"),
    ({"bind_addr": "127.0.0.1:0\0x"}, ValueError, "NUL"),
    ({"bootstrap": "127.0.0.1:9"}, TypeError, "bootstrap"),
    ({"bootstrap": [7]}, TypeError, "bootstrap[0]"),
    ({"event_queue_capacity": 0}, ValueError, "event_queue_capacity"),
    ({"event_queue_capacity": 65537}, ValueError, "event_queue_capacity"),
    ({"event_queue_capacity": "10"}, TypeError, "event_queue_capacity"),
    ({"passphrase": 12}, TypeError, "passphrase"),
    ({"passphrase": "x" * 1025}, ValueError, "passphrase"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
    ({"identity": "abc"}, TypeError, "identity"),
    ({"bind_addr": "x" * 5000}, ValueError, "4096"),
]


@pytest.mark.parametrize("kwargs,exc,needle", BAD_CREATE)
@arun
async def test_create_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], exc: type[Exception], needle: str) -> None:
    kwargs.setdefault("data_dir", tmp_path / "a")
    with pytest.raises(exc, match=needle.replace("[", r"\[").replace("]", r"\]")):
        await x0x.Agent.create(**kwargs)


@arun
async def test_library_rejects_bad_config(tmp_path: Path) -> None:
    with pytest.raises(x0x.InvalidArgument) as ei:
        await x0x.Agent.create(data_dir=tmp_path / "a", bootstrap=["no-port"])
    assert ei.value.code == 1 and ei.value.status == "X0X_ERR_INVALID_ARG"
    assert ei.value.message.startswith("x0x_config_set")
    with pytest.raises(x0x.InvalidArgument):
        await x0x.Agent.create(data_dir=tmp_path / "a", network="moon")
    # A UDP port already taken on 127.0.0.1 cannot be bound.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(x0x.X0xIOError):
            await x0x.Agent.create(data_dir=tmp_path / "a", bind_addr=f"127.0.0.1:{port}")


@arun
async def test_wrong_passphrase(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a", passphrase="right"):
        pass
    with pytest.raises(x0x.WrongPassphrase):
        await x0x.Agent.create(data_dir=tmp_path / "a", passphrase="wrong")
    with pytest.raises(x0x.WrongPassphrase):
        await x0x.Agent.create(data_dir=tmp_path / "a")


@arun
async def test_method_argument_checks(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        with pytest.raises(TypeError, match="data"):
            await a.publish("t", 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="topic must not be empty"):
            await a.publish("", b"x")
        with pytest.raises(ValueError, match="256"):
            await a.subscribe("t" * 257)
        with pytest.raises(TypeError, match="topic"):
            await a.subscribe(b"t")  # type: ignore[arg-type]
        with pytest.raises(x0x.TooLarge, match="1048576"):
            await a.publish("t", bytes(1024 * 1024 + 1))
        with pytest.raises(ValueError, match="agent_id must be 64 hex"):
            await a.send_direct("zz", b"x")
        with pytest.raises(ValueError, match="32 bytes"):
            await a.send_direct(b"\0" * 31, b"x")
        with pytest.raises(TypeError, match="agent_id"):
            await a.send_direct(123, b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="16777216"):
            await a.send_direct(a.agent_id, bytes(16 * 1024 * 1024 + 1))
        with pytest.raises(ValueError, match="capacity"):
            a.events(capacity=0)
        with pytest.raises(ValueError, match="payload_len"):
            await a.debug_inject_events(1, 65537)
        with pytest.raises(TypeError):
            x0x.Agent(object(), 1, asyncio.get_running_loop(), (b"", b"", "", 0))


@arun
async def test_library_errors_from_network_calls(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a, make_agent(tmp_path, "b") as b:
        with pytest.raises(x0x.NoPeers):
            await a.join_network(timeout=2)
        with pytest.raises(x0x.InvalidArgument):
            await a.connect("not an address", timeout=2)
        # The header says X0X_ERR_AUTH for dialling the agent's own node;
        # libx0x 0.2 reports X0X_ERR_INVALID_ARG ("refusing to connect to self").
        with pytest.raises((x0x.AuthError, x0x.InvalidArgument)):
            await a.connect(a.dial_addr, timeout=5)
        wrong_pin = b.machine_id[::-1] + "@" + b.addr
        with pytest.raises(x0x.AuthError):
            await a.connect(wrong_pin, timeout=STEP)
        with pytest.raises(x0x.NoRoute):
            await a.send_direct(b.agent_id, b"x", timeout=2)
        with pytest.raises(x0x.X0xTimeout) as ei:
            await a.wait_for_agent(b.agent_id, timeout=0.2)
        assert isinstance(ei.value, TimeoutError)
        sub = await a.subscribe("u")
        await sub.unsubscribe()
        with pytest.raises(x0x.NotFound):  # the library no longer has the subscription
            x0x._lib.check(x0x._lib.lib.x0x_unsubscribe(a._handle, b"u"))
        # Publishing on the loopback pair still works after all this.
        await connect_pair(a, b)
        await a.publish("t", b"ok")
