#!/usr/bin/env bash
# Event-delivery and publish-call figures of the C ABI consumers, one JSON
# object per line like the rest of `make bench`:
#   c_*      tests/c/bench_events.c (poll + x0x_events_drain from C)
#   node_*   bindings/node/bench/events.js (the Node addon and JS layer)
#   python_* bindings/python/bench/events.py (ctypes + asyncio)
# Events are x0x_debug_inject_events pushing synthetic events through the
# real event path while the language drains them; the Go-side baseline is
# capi's BenchmarkInjectedEvents and the Go publish call core/x0x's
# BenchmarkPublishCall (both printed by the Go part of `make bench`).
# Expects libx0x and the Node addon to be built (make node-addon).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d /tmp/x0x-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -std=c11 -Wall -Wextra -Werror -Iinclude tests/c/bench_events.c build/lib/libx0x.so.0 \
  -Wl,-rpath,"$root/build/lib" -lpthread -o "$work/bench_events"
"$work/bench_events"
node bindings/node/bench/events.js
PYTHONPATH="$root/bindings/python/src" X0X_LIB="$root/build/lib/libx0x.so.0" python3 bindings/python/bench/events.py
