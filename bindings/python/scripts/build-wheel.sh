#!/usr/bin/env bash
# Builds the agent-x0x wheel into build/python/ (repo root), with
# build/lib/libx0x.so.0 inside as x0x/_native/libx0x.so.0. The library is
# built with scripts/build-capi.sh when missing (set X0X_REBUILD=1 to force).
# Prints the wheel's path on its last line. Needs python3 (>= 3.10).
# (The distribution's own build, `pip wheel .` or `python -m build` at the
# repository root, goes through the same build_wheel.py: see
# x0x_build_backend.py.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
if [ ! -f build/lib/libx0x.so.0 ] || [ "${X0X_REBUILD:-0}" = 1 ]; then
  ./scripts/build-capi.sh
fi
"$PYTHON" bindings/python/scripts/build_wheel.py build/lib/libx0x.so.0 build/python
