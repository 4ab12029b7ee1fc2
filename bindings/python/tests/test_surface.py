"""Defects a new user found at the surface of the binding (issue 14).

The task-list string limits and their status, one agent per data directory,
wait_for_agent of the agent itself, the default data directory, str
payloads, the names shared with the Node binding (and their deprecated
aliases), and what a left task list or closed group raises.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import warnings
from ctypes import create_string_buffer
from pathlib import Path

import pytest

import x0x
from x0x import _lib
from conftest import STEP, arun, connect_pair, make_agent, next_of, overlay_pair


@arun
async def test_task_list_string_limits(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        with pytest.raises(x0x.TooLarge, match="name"):
            await x0x.TaskList.create(a, "n" * 1025)
        with pytest.raises(x0x.TooLarge):
            await x0x.TaskList.create(a, "é" * 513)  # bytes of UTF-8, not characters
        tl = await x0x.TaskList.create(a, "n" * 1024)
        assert (await tl.snapshot()).name == "n" * 1024
        with pytest.raises(x0x.TooLarge, match="title"):
            await tl.add_task("t" * 1025)
        with pytest.raises(x0x.TooLarge, match="title"):
            await tl.add_task("t" * 5000)  # also over X0X_MAX_STRING
        with pytest.raises(x0x.TooLarge, match="description"):
            await tl.add_task("t", "d" * (16 * 1024 + 1))
        with pytest.raises(ValueError):  # TooLarge is a ValueError too
            await tl.add_task("t" * 1025)
        tid = await tl.add_task("t" * 1024, "d" * (16 * 1024))  # longer than X0X_MAX_STRING
        with pytest.raises(x0x.TooLarge):
            await tl.update_task(tid, title="T" * 1025)
        with pytest.raises(x0x.TooLarge):
            await tl.update_task(tid, description="D" * (16 * 1024 + 1))
        await tl.update_task(tid, title="T" * 1024, description="D" * (16 * 1024))
        (task,) = await tl.list_tasks()
        assert (task.title, task.description) == ("T" * 1024, "D" * (16 * 1024))

        # The library itself reports X0X_ERR_TOO_LARGE (not X0X_ERR_INVALID_ARG).
        out = create_string_buffer(_lib.ID_SIZE)
        assert _lib.lib.x0x_tasklist_add(tl._handle, b"t" * 1025, b"", out) == x0x.TooLarge.CODE
        assert _lib.lib.x0x_tasklist_add(tl._handle, b"t", b"d" * (16 * 1024), out) == 0

        g = await a.create_group()
        with pytest.raises(x0x.TooLarge, match="name"):
            await g.create_task_list("n" * 1025)
        await (await g.create_task_list("n" * 1024)).leave()
        await g.close()


@arun
async def test_second_agent_on_a_data_directory_in_use(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    async with await x0x.Agent.create(data_dir=d, bind_addr="127.0.0.1:0") as a:
        start = time.monotonic()
        with pytest.raises(x0x.X0xIOError, match="data directory in use") as exc:
            await x0x.Agent.create(data_dir=d, bind_addr="127.0.0.1:0")
        assert time.monotonic() - start < 5, "refused at once"
        assert exc.value.status == "X0X_ERR_IO" and str(d) in exc.value.message
        first = a.agent_id
    async with await x0x.Agent.create(data_dir=d, bind_addr="127.0.0.1:0") as again:  # free once closed
        assert again.agent_id == first


@arun
async def test_wait_for_own_agent_returns_at_once(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        start = time.monotonic()
        await a.wait_for_agent(a.agent_id, timeout=30)
        assert time.monotonic() - start < 1


def test_default_data_dir_is_x0x_home(tmp_path: Path) -> None:
    """No data_dir: $X0X_HOME (read when libx0x loads, so in a child process), else ~/.x0x."""
    home, x0x_home = tmp_path / "home", tmp_path / "x0x-home"
    home.mkdir()
    code = (
        "import asyncio, x0x\n"
        "async def main():\n"
        "    async with await x0x.Agent.create(bind_addr='127.0.0.1:0') as a:\n"
        "        print(a.agent_id)\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, HOME=str(home), X0X_HOME=str(x0x_home))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (x0x_home / "agent.lock").exists(), "the agent used $X0X_HOME"
    assert list(home.iterdir()) == [], "nothing in HOME (no ~/.x0x)"


@arun
async def test_empty_data_dir_is_refused() -> None:
    with pytest.raises(ValueError, match="data_dir must not be empty"):
        await x0x.Agent.create(data_dir="")


@arun
async def test_str_payloads_are_utf8(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a, make_agent(tmp_path, "b") as b:
        await connect_pair(a, b)
        async with b.events() as events:
            await a.send_direct(b.agent_id, "héllo ✓")
            m = await next_of(events, x0x.DirectMessage)
        assert m.payload == "héllo ✓".encode() and m.from_agent == a.agent_id and m.to_agent == b.agent_id
        assert len(await a.publish("t", "text")) == 64
        with pytest.raises(TypeError, match="data"):
            await a.send_direct(b.agent_id, 42)  # type: ignore[arg-type]


@arun
async def test_topic_message_names_and_str_publish(tmp_path: Path) -> None:
    async with overlay_pair(tmp_path) as (a, b):
        ta = await a.join("names")
        async with await b.join("names") as tb, tb.subscribe() as sub:
            deadline = time.monotonic() + STEP
            got: x0x.TopicMessage | None = None
            while got is None and time.monotonic() < deadline:
                await ta.publish("héllo ✓")  # a str is sent as UTF-8
                try:
                    got = await asyncio.wait_for(sub.get(), 0.2)
                except asyncio.TimeoutError:
                    pass
            assert got is not None, "no message arrived"
            assert got.from_agent == a.agent_id and got.payload == "héllo ✓".encode()
            assert got.peer is None and got.hops >= 1
            with pytest.warns(DeprecationWarning, match="from_agent"):
                assert got.origin == a.agent_id
        await ta.leave()


def test_deprecated_aliases_warn() -> None:
    d = x0x.DirectMessage("aa" * 32, "bb" * 32, "cc" * 32, b"x")
    with pytest.warns(DeprecationWarning, match="from_agent"):
        assert d.sender == "aa" * 32
    with pytest.warns(DeprecationWarning, match="to_agent"):
        assert d.recipient == "bb" * 32
    tc = x0x.TaskChanged("11" * 32, "22" * 32, x0x.TaskOp.ADDED, "aa" * 32, True)
    with pytest.warns(DeprecationWarning, match="from_agent"):
        assert tc.agent == tc.from_agent == "aa" * 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (d.from_agent, d.to_agent, tc.from_agent) == ("aa" * 32, "bb" * 32, "aa" * 32)


@arun
async def test_left_list_and_closed_group_raise_closed(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        tl = await x0x.TaskList.create(a, "left")
        twin = await x0x.TaskList.join(a, tl.id)
        await tl.leave()
        for lst in (tl, twin):
            with pytest.raises(x0x.Closed):
                await lst.add_task("x")
            with pytest.raises(x0x.Closed):
                await lst.list_tasks()
        g = await a.create_group()
        gl = await g.create_task_list("group list")
        await g.close()
        with pytest.raises(x0x.Closed):
            await g.publish("x")
        with pytest.raises(x0x.Closed):
            await gl.add_task("x")
