"""Smoke test of a built wheel (scripts/build-matrix.sh), run in a venv where
only that wheel is installed: two agents on 127.0.0.1 exchange one direct
message each way through the installed ``x0x`` package.

Usage: python smoke.py <empty dir>
Prints "python smoke: ok ..." and exits 0, or raises (exit 1).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import x0x


async def receive(stream: x0x.EventStream, text: bytes) -> None:
    async for ev in stream:
        if getattr(ev, "payload", None) == text:
            return


async def main(root: Path) -> None:
    t0 = time.monotonic()
    a = await x0x.Agent.create(data_dir=root / "a", bind_addr="127.0.0.1:0")
    b = await x0x.Agent.create(data_dir=root / "b", bind_addr="127.0.0.1:0")
    try:
        await b.connect(a.dial_addr, timeout=30)
        await b.wait_for_agent(a.agent_id, timeout=30)
        await a.wait_for_agent(b.agent_id, timeout=30)
        for sender, receiver, text in ((b, a, b"python smoke: hello a"), (a, b, b"python smoke: hello b")):
            stream = receiver.events()
            try:
                await sender.send_direct(receiver.agent_id, text, timeout=30)
                await asyncio.wait_for(receive(stream, text), 30)
            finally:
                stream.close()
    finally:
        await a.close()
        await b.close()
    print(f"python smoke: ok (x0x {x0x.__version__} from {Path(x0x.__file__).parent}, "
          f"direct messages both ways, {time.monotonic() - t0:.1f} s)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    asyncio.run(main(Path(sys.argv[1])))
