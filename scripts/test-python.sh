#!/usr/bin/env bash
# Tests the Python package (bindings/python, PyPI agent-x0x, import x0x):
#   1. builds libx0x (scripts/build-capi.sh) and the wheel
#      (bindings/python/scripts/build-wheel.sh -> build/python/*.whl);
#   2. creates a virtual environment in build/python/venv (reused on later
#      runs) with pytest and mypy, and installs the wheel into it;
#   3. runs mypy --strict on the installed package and the benchmark, and
#      mypy (default strictness) on the tests;
#   4. runs the tests (bindings/python/tests) against the installed wheel,
#      not the source tree (X0X_LIB is unset);
#   5. tests the distribution as users build it (scripts/test-packaging.sh:
#      `python -m build` at the root, the platform wheel installed and used
#      outside the repository, the sdist without Go or a C compiler and with
#      them, `pip wheel .` with a prebuilt library; about 1 min). Set
#      X0X_PACKAGING_QUICK=1 to leave out its second go build.
# Set X0X_PY_BENCH=1 to also run bindings/python/bench/events.py.
# Only 127.0.0.1 is used. Needs python3 (>= 3.10) with venv, and objdump;
# as root on Debian, python3-venv and binutils are installed when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}

need=()
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v objdump >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi

./scripts/build-capi.sh
wheel=$(bindings/python/scripts/build-wheel.sh | tail -n 1)
echo "wheel: $wheel"

venv=build/python/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(0)' 2>/dev/null; then
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pytest, mypy' 2>/dev/null; then
  "$venv/bin/python" -m pip install -q 'pytest>=7' 'mypy>=1.5'
fi
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$wheel"

unset X0X_LIB
echo "== mypy --strict (installed package)"
(cd bindings/python && "$root/$venv/bin/python" -m mypy --strict --no-incremental -p x0x &&
  "$root/$venv/bin/python" -m mypy --strict --no-incremental bench/events.py &&
  "$root/$venv/bin/python" -m mypy --no-incremental tests)
echo "== pytest (installed wheel)"
cd bindings/python/tests
# A blocking C call cannot be interrupted from Python: bound the whole run,
# and dump every thread's stack if one test takes longer than 120 s.
timeout 900 "$root/$venv/bin/python" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=120 "$@"
if [ "${X0X_PY_BENCH:-0}" = 1 ]; then
  "$root/$venv/bin/python" ../bench/events.py
fi
echo "== packaging (scripts/test-packaging.sh)"
cd "$root"
./scripts/test-packaging.sh
