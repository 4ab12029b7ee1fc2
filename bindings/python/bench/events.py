"""Benchmarks of the Python binding; prints one JSON object per line.

  python_events_per_s_16B / python_events_per_s_1024B  events/s consumed by
      ``async for ev in agent.events()`` while x0x_debug_inject_events pushes
      synthetic direct messages through the real event path (pull API).
  python_publish_call_us  mean cost of one ``await agent.publish(...)``
      (64-byte payload, one agent with no peers), >= 2,000 calls.
  python_publish_ffi_us   the same C call made directly (no executor hop),
      to show what the asyncio hop costs.

Usage: python bench/events.py [--events N] [--publishes N]
Only 127.0.0.1 is used; the data directory is temporary.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import tempfile
import time

import x0x
from x0x import _lib


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


async def events_per_s(agent: x0x.Agent, n: int, size: int) -> float:
    stream = agent.events(capacity=65536)
    try:
        inject = asyncio.ensure_future(agent.debug_inject_events(n, size))
        got = 0
        start = time.perf_counter()
        async for ev in stream:
            if isinstance(ev, x0x.DirectMessage):
                got += 1
                if len(ev.payload) != size:
                    raise SystemExit(f"bad payload length {len(ev.payload)}")
                if got == n:
                    break
        elapsed = time.perf_counter() - start
        await inject
        if stream.dropped:
            raise SystemExit(f"stream dropped {stream.dropped} events")
        return n / elapsed
    finally:
        stream.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--publishes", type=int, default=5_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="x0x-pybench-") as d:
        async with await x0x.Agent.create(data_dir=d, bind_addr="127.0.0.1:0", event_queue_capacity=65536) as agent:
            await events_per_s(agent, 20_000, 16)  # warm-up
            for size in (16, 1024):
                n = args.events if size == 16 else max(args.events // 3, 10_000)
                emit(f"python_events_per_s_{size}B", await events_per_s(agent, n, size), "events/s")

            payload = b"\x42" * 64
            for _ in range(200):  # warm-up
                await agent.publish("bench", payload)
            start = time.perf_counter()
            for _ in range(args.publishes):
                await agent.publish("bench", payload)
            emit("python_publish_call_us", (time.perf_counter() - start) / args.publishes * 1e6, "us")

            out = ctypes.create_string_buffer(32)
            h = agent._handle
            fn = _lib.lib.x0x_publish
            start = time.perf_counter()
            for _ in range(args.publishes):
                if fn(h, b"bench", payload, 64, 0, out) != 0:
                    raise SystemExit(_lib.last_error())
            emit("python_publish_ffi_us", (time.perf_counter() - start) / args.publishes * 1e6, "us")


if __name__ == "__main__":
    asyncio.run(main())
