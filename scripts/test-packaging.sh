#!/usr/bin/env bash
# Tests the Python distribution agent-x0x as a user gets it (issue 14), from
# the top-level pyproject.toml and its in-tree build backend
# (bindings/python/scripts/x0x_build_backend.py):
#   1. `python -m build` at the root (the sdist, then the wheel built from
#      the unpacked sdist: libx0x compiled there with go build) into a
#      temporary folder; the wheel must be py3-none-manylinux_X_Y_<arch>
#      (never none-any) with x0x/_native/libx0x.so.0, the sdist must hold
#      the Go module's build inputs (go.mod, go.sum, include/, capi/, core/)
#      and the x0x package, and nothing of bindings/node, tests, testdata or
#      *_test.go; both pass `twine check --strict`;
#   2. the wheel installed into a fresh venv, used from a folder outside the
#      repository (X0X_LIB unset): import x0x, create an agent on 127.0.0.1;
#   3. the sdist installed into a fresh venv with no go on PATH, then with
#      go but no C compiler: pip must fail and say which is missing;
#   4. `pip wheel .` at the root with a prebuilt library (X0X_LIB_PATH, as
#      scripts/build-matrix.sh does) carries exactly that library, and
#      X0X_WHEEL_PLAT for the wrong architecture is refused;
#   5. unless X0X_PACKAGING_QUICK=1: the sdist installed with go and a C
#      compiler (a second go build, ~15 s with a warm Go build cache), and
#      the same agent check.
# The build tools (build, twine) live in build/python/packaging-venv
# (installed from PyPI on the first run). Needs python3 (>= 3.10) with venv,
# Go >= 1.26 and gcc. Only 127.0.0.1 is used. Run by scripts/test-python.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
started=$SECONDS
fail() { echo "test-packaging.sh: FAIL: $*" >&2; exit 1; }
go_path=$(command -v go) || fail "go is required"
version=$(cat VERSION)

tools=build/python/packaging-venv
if [ ! -x "$tools/bin/pyproject-build" ] || [ ! -x "$tools/bin/twine" ]; then
  rm -rf "$tools"
  "$PYTHON" -m venv "$tools"
  "$tools/bin/python" -m pip install -q 'build>=1.2' 'twine>=6' 'tomli>=1.1; python_version < "3.11"'
fi
# pip may not reach an index for the build backend's requirements: there are
# none on Python >= 3.11 (tomli on 3.10).
no_index=()
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' && no_index=(--no-index)

work=$(mktemp -d /tmp/x0x-packaging.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/outside"

echo "== python -m build (sdist, then the wheel from the sdist)"
t0=$SECONDS
(cd "$work/outside" && "$root/$tools/bin/pyproject-build" --outdir "$work/dist" "$root") >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "python -m build failed"; }
grep 'agent-x0x:' "$work/build.log" | sed 's/^/  /'
echo "  took $((SECONDS - t0)) s"

"$tools/bin/python" - "$work/dist" "$version" <<'PY'
import re, sys, tarfile, zipfile
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path
dist, version = Path(sys.argv[1]), sys.argv[2]
def fail(msg): sys.exit(f"test-packaging.sh: FAIL: {msg}")
wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
if len(wheels) != 1 or len(sdists) != 1:
    fail(f"want one wheel and one sdist, got {[p.name for p in dist.iterdir()]}")
whl, sdist = wheels[0], sdists[0]
m = re.fullmatch(rf"agent_x0x-{re.escape(version)}-py3-none-(manylinux_\d+_\d+_(x86_64|aarch64))\.whl", whl.name)
if not m or "none-any" in whl.name:
    fail(f"{whl.name} is not a py3-none-manylinux_X_Y_<arch> wheel of version {version}")
with zipfile.ZipFile(whl) as zf:
    names = set(zf.namelist())
    for want in ("x0x/_native/libx0x.so.0", "x0x/__init__.py", "x0x/_lib.py", "x0x/py.typed",
                 f"agent_x0x-{version}.dist-info/METADATA", f"agent_x0x-{version}.dist-info/RECORD"):
        if want not in names:
            fail(f"{whl.name} lacks {want}")
    info = zf.read(f"agent_x0x-{version}.dist-info/WHEEL").decode()
    if f"Tag: py3-none-{m.group(1)}" not in info or "Root-Is-Purelib: false" not in info:
        fail(f"{whl.name}: WHEEL says\n{info}")
    if zf.read("x0x/_native/libx0x.so.0")[:4] != b"\x7fELF":
        fail("x0x/_native/libx0x.so.0 is not an ELF library")
if sdist.name != f"agent_x0x-{version}.tar.gz":
    fail(f"sdist is named {sdist.name}")
with tarfile.open(sdist) as tf:
    members = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    pkg_info = tf.extractfile(f"agent_x0x-{version}/PKG-INFO").read().decode()
for want in ("pyproject.toml", "PKG-INFO", "VERSION", "go.mod", "go.sum", "include/x0x.h", "capi/exports.go",
             "capi/libx0x.map", "capi/helpers.c", "core/x0x/version.go", "bindings/python/README.md",
             "bindings/python/src/x0x/__init__.py", "bindings/python/src/x0x/py.typed",
             "bindings/python/scripts/x0x_build_backend.py", "bindings/python/scripts/build_wheel.py"):
    if want not in members:
        fail(f"{sdist.name} lacks {want}")
bad = [n for n in members if n.startswith(("bindings/node", "tests/", "cmd/", "scripts/", "build/", ".github"))
       or "/testdata/" in n or n.endswith("_test.go") or "__pycache__" in n or "/_native/" in n]
if bad:
    fail(f"{sdist.name} carries files a build does not need: {bad[:10]}")
if f"Version: {version}" not in pkg_info or "Name: agent-x0x" not in pkg_info:
    fail("PKG-INFO lacks the name or version")
# The two pyproject.toml files describe the same distribution.
root = Path.cwd()
top = tomllib.loads((root / "pyproject.toml").read_text())
sub = tomllib.loads((root / "bindings/python/pyproject.toml").read_text())
for t in (top, sub):
    t["project"].pop("readme")
if top["project"] != sub["project"] or top["build-system"]["requires"] != sub["build-system"]["requires"]:
    fail("pyproject.toml and bindings/python/pyproject.toml disagree on [project] or the build requirements")
print(f"ok: {whl.name} ({whl.stat().st_size // 1024} KiB, libx0x inside), {sdist.name} ({len(members)} files)")
PY
"$tools/bin/twine" check --strict "$work"/dist/*

# An agent from an installed x0x, in a folder outside the repository.
agent_check() {
  local venv=$1
  (cd "$work/outside" && env -u X0X_LIB -u PYTHONPATH "$venv/bin/python" - "$venv" <<'PY'
import asyncio, sys, tempfile
from pathlib import Path
import x0x
venv = Path(sys.argv[1]).resolve()
lib = Path(x0x._lib.LIBRARY_PATH).resolve()
assert venv in Path(x0x.__file__).resolve().parents, x0x.__file__
assert venv in lib.parents, lib
async def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        async with await x0x.Agent.create(data_dir=d, bind_addr="127.0.0.1:0") as agent:
            assert agent.addr.startswith("127.0.0.1:"), agent.addr
            print(f"ok: x0x {x0x.__version__} from {lib}: agent {agent.agent_id[:16]} on {agent.addr}")
asyncio.run(main())
PY
  )
}

echo "== the wheel in a fresh venv, used outside the repository"
"$PYTHON" -m venv "$work/venv-wheel"
"$work/venv-wheel/bin/pip" install -q --no-index --no-deps "$work"/dist/*.whl
agent_check "$work/venv-wheel"

echo "== the sdist where Go or the C compiler is missing"
"$PYTHON" -m venv "$work/venv-sdist"
sdist=$(ls "$work"/dist/*.tar.gz)
expect_refusal() { # name PATH pattern
  local out status=0
  out=$(cd "$work/outside" && env PATH="$2" "$work/venv-sdist/bin/pip" install "${no_index[@]}" --no-deps "$sdist" 2>&1) || status=$?
  [ "$status" != 0 ] || fail "$1: pip install of the sdist succeeded"
  grep -q "$3" <<<"$out" || { echo "$out"; fail "$1: pip's output does not say: $3"; }
  grep 'agent-x0x: cannot build' <<<"$out" | sed 's/^ */  /'
}
# shellcheck disable=SC2016 # the backquotes are in the message
expect_refusal "no go" "$work/venv-sdist/bin" 'Go >= 1\.26 is needed to build libx0x .* `go` was not found on PATH'
mkdir "$work/only-go" && ln -s "$go_path" "$work/only-go/go"
# shellcheck disable=SC2016 # the backquotes are in the message
expect_refusal "no C compiler" "$work/only-go:$work/venv-sdist/bin" 'a C compiler is needed to build libx0x from source (it uses cgo), and `gcc`'

echo "== pip wheel . with a prebuilt libx0x (X0X_LIB_PATH), and a wrong X0X_WHEEL_PLAT"
[ -f build/lib/libx0x.so.0 ] || ./scripts/build-capi.sh
(cd "$work/outside" && X0X_LIB_PATH="$root/build/lib/libx0x.so.0" \
  "$work/venv-sdist/bin/pip" wheel -q "${no_index[@]}" --no-deps -w "$work/pipwheel" "$root")
"$work/venv-sdist/bin/python" - "$work/pipwheel" "$root/build/lib/libx0x.so.0" <<'PY'
import sys, zipfile
from pathlib import Path
[whl] = Path(sys.argv[1]).glob("*.whl")
assert "none-any" not in whl.name, whl.name
with zipfile.ZipFile(whl) as zf:
    assert zf.read("x0x/_native/libx0x.so.0") == Path(sys.argv[2]).read_bytes(), "not the prebuilt library"
print(f"ok: {whl.name} carries the prebuilt {sys.argv[2]}")
PY
case $(uname -m) in x86_64) other=aarch64 ;; *) other=x86_64 ;; esac
if out=$(cd "$work/outside" && X0X_LIB_PATH="$root/build/lib/libx0x.so.0" X0X_WHEEL_PLAT="manylinux_2_99_$other" \
  "$work/venv-sdist/bin/pip" wheel "${no_index[@]}" --no-deps -w "$work/pipwheel2" "$root" 2>&1); then
  fail "X0X_WHEEL_PLAT=manylinux_2_99_$other was accepted for a $(uname -m) library"
fi
grep -q "platform tag manylinux_2_99_$other does not fit" <<<"$out" || { echo "$out"; fail "no clear error for a wrong X0X_WHEEL_PLAT"; }
echo "ok: X0X_WHEEL_PLAT=manylinux_2_99_$other refused"

if [ "${X0X_PACKAGING_QUICK:-0}" != 1 ]; then
  echo "== the sdist with Go and gcc (pip builds libx0x)"
  t0=$SECONDS
  (cd "$work/outside" && "$work/venv-sdist/bin/pip" install -q "${no_index[@]}" --no-deps "$sdist")
  echo "  took $((SECONDS - t0)) s"
  agent_check "$work/venv-sdist"
fi
echo "ok: packaging checks passed in $((SECONDS - started)) s"
