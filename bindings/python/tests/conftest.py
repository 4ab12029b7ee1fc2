"""Shared helpers of the x0x tests (run against the installed wheel).

Every test gets its own temporary data directories; agents bind 127.0.0.1:0
only. `arun` turns an async test into a sync one run by asyncio.run, so no
pytest plugin is needed. After each test, no thread other than the main one
may remain (the executor threads asyncio.run starts are joined by it).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

# No test may fall back on the user's ~/.x0x: an agent created without
# data_dir uses $X0X_HOME, which libx0x reads when it is loaded (at
# ``import x0x``), so it is set (to a directory removed at exit) first.
if not os.environ.get("X0X_HOME"):
    _home = tempfile.mkdtemp(prefix="x0x-py-test-home-")
    os.environ["X0X_HOME"] = _home
    atexit.register(shutil.rmtree, _home, True)

import x0x  # noqa: E402

T = TypeVar("T")

#: Generous per-step timeout (seconds) for loopback operations.
STEP = 20.0


def arun(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Runs an async test function with asyncio.run (debug mode on)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 120), debug=False)

    return wrapper


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fails a test that leaves Python threads running (the goleak of these tests)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, f"threads left running: {extra}"


@asynccontextmanager
async def make_agent(tmp: Path, name: str, **kw: Any) -> AsyncIterator[x0x.Agent]:
    """An agent with its own data directory tmp/name, bound to 127.0.0.1:0, closed on exit."""
    kw.setdefault("bind_addr", "127.0.0.1:0")
    agent = await x0x.Agent.create(data_dir=tmp / name, **kw)
    try:
        yield agent
    finally:
        await agent.close()


async def next_of(stream: AsyncIterator[Any], cls: type[T], pred: Callable[[T], bool] = lambda _: True) -> T:
    """The next item of stream that is a cls and satisfies pred (within STEP seconds)."""

    async def find() -> T:
        async for item in stream:
            if isinstance(item, cls) and pred(item):
                return item
        raise AssertionError(f"stream ended before a {cls.__name__} arrived")

    return await asyncio.wait_for(find(), STEP)


async def connect_pair(a: x0x.Agent, b: x0x.Agent) -> None:
    """b dials a (pinned to a's machine ID) and both see each other's agent."""
    peer = await b.connect(a.dial_addr, timeout=STEP)
    assert peer == a.machine_id
    await b.wait_for_agent(a.agent_id, timeout=STEP)
    await a.wait_for_agent(b.agent_id, timeout=STEP)


@asynccontextmanager
async def overlay_pair(tmp: Path) -> AsyncIterator[tuple[x0x.Agent, x0x.Agent]]:
    """Agents a and b where b bootstraps from a and joins the network (the gossip overlay forms)."""
    async with make_agent(tmp, "a") as a:
        async with make_agent(tmp, "b", bootstrap=[a.dial_addr]) as b:
            await b.join_network(timeout=STEP)
            await b.wait_for_agent(a.agent_id, timeout=STEP)
            await a.wait_for_agent(b.agent_id, timeout=STEP)
            yield a, b
