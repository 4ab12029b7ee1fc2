"""The PEP 517 build backend of agent-x0x (the Python package x0x), in the tree.

Used by the top-level pyproject.toml (the distribution's sdist and wheels)
and by bindings/python/pyproject.toml, so that `pip install .`, `pip wheel .`
and `python -m build` in either folder give a platform wheel that carries
libx0x, never a py3-none-any wheel without it.

Wheel (build_wheel): libx0x is
  - the prebuilt library named by the environment variable X0X_LIB_PATH (or
    --config-settings x0x-lib=PATH), e.g. one cross-built by
    scripts/build-matrix.sh; otherwise
  - built here from the Go module of the tree (the repository, or the
    unpacked sdist) with `go build -buildmode=c-shared`, with the flags of
    scripts/build-capi.sh: needs Go >= the go.mod's version (1.26) and a C
    compiler (cgo); without them it stops and says what is missing.
The wheel is written by build_wheel.py (beside this file) and tagged
py3-none-<platform> from the library (manylinux_X_Y_<arch> from the glibc
it needs, macosx_..., win_...); X0X_WHEEL_PLAT (or --config-settings
x0x-plat=TAG) names the platform tag instead, checked against the library.

Sdist (build_sdist): agent_x0x-<version>.tar.gz with what a wheel build
needs and nothing else: pyproject.toml, PKG-INFO, VERSION, go.mod, go.sum,
include/, capi/ and core/ without tests and testdata, bindings/python/src
(the x0x package), bindings/python/README.md and this backend.

Editable (build_editable, `pip install -e`): a .pth file that puts
bindings/python/src on sys.path and sets X0X_LIB (unless set) to the
tree's build/lib/libx0x.so.0, which is built first when missing (`make
capi` rebuilds it after changes).

No build dependency but tomli on Python 3.10 (tomllib elsewhere).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_wheel as bw  # noqa: E402  (beside this file)

__all__ = [
    "get_requires_for_build_wheel", "get_requires_for_build_sdist", "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel", "prepare_metadata_for_build_editable",
    "build_wheel", "build_sdist", "build_editable",
]

F = TypeVar("F", bound=Callable[..., Any])


class BuildError(Exception):
    """A reason not to build (the message says what is missing and what to do)."""


def _hook(fn: F) -> F:
    """Turns BuildError into a clear message and exit status 1 (no traceback)."""
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BuildError, bw.WheelError) as e:
            sys.stderr.write(f"\nagent-x0x: cannot build: {e}\n\n")
            sys.stderr.flush()
            raise SystemExit(1) from None
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run  # type: ignore[return-value]


# ---------------------------------------------------------------- the tree

def _go_root() -> Path:
    """The Go module root: the tree being built (repository or sdist), or two levels up from bindings/python."""
    tree = Path.cwd().resolve()
    for cand in (tree, tree.parent.parent):
        if (cand / "go.mod").is_file() and (cand / "capi").is_dir() and (cand / "bindings" / "python" / "src" / "x0x").is_dir():
            return cand
    raise BuildError(f"{tree} is neither the x0x repository (or its sdist) nor its bindings/python folder: "
                     "no go.mod with capi/ and bindings/python/src/x0x")


def _meta() -> dict[str, Any]:
    """[project] of the pyproject.toml being built."""
    return bw.project_meta(Path.cwd().resolve() / "pyproject.toml")


def _dist(meta: dict[str, Any]) -> str:
    return re.sub(r"[-_.]+", "_", meta["name"]).lower()


def _setting(config_settings: dict[str, Any] | None, key: str, env: str) -> str | None:
    value = (config_settings or {}).get(key) or os.environ.get(env)
    return str(value) if value else None


# ---------------------------------------------------------------- libx0x

def _need_go(root: Path) -> tuple[str, str]:
    """The go command and its version; BuildError if Go is missing or older than go.mod wants."""
    gomod = (root / "go.mod").read_text(encoding="utf-8")
    m = re.search(r"^go (\d+)\.(\d+)", gomod, re.M)
    want = (int(m.group(1)), int(m.group(2))) if m else (1, 26)
    want_s = f"{want[0]}.{want[1]}"
    how = (f"Install Go {want_s} or newer (https://go.dev/dl/) and a C compiler, or give a prebuilt library with "
           "X0X_LIB_PATH=/path/to/libx0x.so.0, or install a prebuilt wheel of agent-x0x for this platform")
    go = os.environ.get("GO", "go")
    path = shutil.which(go)
    if path is None:
        raise BuildError(f"Go >= {want_s} is needed to build libx0x (the native library of x0x, written in Go) "
                         f"from source, and `{go}` was not found on PATH. {how}.")
    # The installed toolchain's own version: outside the module, without switching toolchains.
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([path, "env", "GOVERSION"], cwd=tmp, capture_output=True, text=True,
                           env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""})
    have = r.stdout.strip()
    v = re.match(r"go(\d+)\.(\d+)", have)
    if r.returncode != 0 or not v:
        raise BuildError(f"cannot tell the version of {path} (`go env GOVERSION`: {r.stderr.strip() or have!r}). {how}.")
    if (int(v.group(1)), int(v.group(2))) < want:
        raise BuildError(f"Go >= {want_s} is needed to build libx0x from source; {path} is {have}. {how}.")
    return path, have


def _need_cc(go: str, root: Path) -> str:
    r = subprocess.run([go, "env", "CC"], cwd=root, capture_output=True, text=True)
    cc = r.stdout.strip() or "gcc"
    words = shlex.split(cc)
    if not words or shutil.which(words[0]) is None:
        raise BuildError(
            f"a C compiler is needed to build libx0x from source (it uses cgo), and `{cc}` (go env CC) was not found "
            "on PATH. Install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: "
            "xcode-select --install), or set CC, or give a prebuilt library with X0X_LIB_PATH=/path/to/libx0x.so.0.")
    return cc


def _glibc_or_fail() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = None
    if not glibc:
        raise BuildError("this Linux system's C library is not glibc (musl?): libx0x is a Go c-shared library, and "
                         "musl's dlopen cannot load Go c-shared libraries (golang/go#13492, golang/go#54805), so "
                         "agent-x0x does not support musl (e.g. Alpine). Use a glibc-based system or image.")


def _abi_major(root: Path) -> str:
    m = re.search(r"^#define X0X_ABI_VERSION_MAJOR (\d+)$", (root / "include" / "x0x.h").read_text(encoding="utf-8"), re.M)
    if not m:
        raise BuildError("cannot read X0X_ABI_VERSION_MAJOR from include/x0x.h")
    return m.group(1)


def build_libx0x(root: Path, out_dir: Path) -> Path:
    """Builds libx0x with go build -buildmode=c-shared (the flags of scripts/build-capi.sh) into out_dir."""
    _glibc_or_fail()
    go, version = _need_go(root)
    _need_cc(go, root)
    major = _abi_major(root)
    if sys.platform == "darwin":
        name = f"libx0x.{major}.dylib"
        ldflags = f"-extldflags '-Wl,-install_name,@rpath/{name}'"
    elif sys.platform == "win32":
        name, ldflags = "x0x.dll", ""
    else:
        name = f"libx0x.so.{major}"
        ldflags = f"-extldflags '-Wl,-soname,{name} -Wl,--version-script={root / 'capi' / 'libx0x.map'}'"
    out = out_dir / name
    cmd = [go, "build", "-buildmode=c-shared", "-trimpath"]
    if ldflags:
        cmd += ["-ldflags", ldflags]
    cmd += ["-o", str(out), "./capi"]
    sys.stderr.write(f"agent-x0x: building libx0x with {version}: {' '.join(shlex.quote(c) for c in cmd)}\n")
    sys.stderr.flush()
    started = time.monotonic()
    r = subprocess.run(cmd, cwd=root, env={**os.environ, "CGO_ENABLED": "1"}, stdout=sys.stderr)
    if r.returncode != 0 or not out.is_file():
        raise BuildError(f"`go build` of libx0x failed (exit status {r.returncode}; its output is above). If Go could not "
                         "download the modules in go.sum, check the network or GOPROXY, or give a prebuilt library "
                         "with X0X_LIB_PATH.")
    for header in out_dir.glob("*.h"):
        header.unlink()
    sys.stderr.write(f"agent-x0x: built {name} in {time.monotonic() - started:.0f} s\n")
    return out


def _library(config_settings: dict[str, Any] | None, root: Path, tmp: Path) -> Path:
    given = _setting(config_settings, "x0x-lib", "X0X_LIB_PATH")
    if given:
        lib = Path(given).expanduser().resolve()
        if not lib.is_file():
            rel = "" if Path(given).expanduser().is_absolute() else (
                f" (a relative path is taken from the folder being built, {Path.cwd()}: give an absolute one)")
            raise BuildError(f"X0X_LIB_PATH (or x0x-lib) names {lib}, which is not a file{rel}")
        sys.stderr.write(f"agent-x0x: using the prebuilt {lib}\n")
        return lib
    return build_libx0x(root, tmp)


# ---------------------------------------------------------------- PEP 517 hooks

def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def _write_metadata(metadata_directory: str, plat: str | None = None) -> str:
    meta = _meta()
    distinfo = f"{_dist(meta)}-{meta['version']}.dist-info"
    d = Path(metadata_directory) / distinfo
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(bw.metadata_text(meta, plat), encoding="utf-8")
    return distinfo


@_hook
def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    # The OS classifier of the wheel build_wheel will make: the given platform tag's, else this system's.
    plat = _setting(config_settings, "x0x-plat", "X0X_WHEEL_PLAT") or {"win32": "win", "darwin": "macosx"}.get(
        sys.platform, "manylinux")
    return _write_metadata(metadata_directory, plat)


@_hook
def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    return _write_metadata(metadata_directory)


@_hook
def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    root = _go_root()
    plat = _setting(config_settings, "x0x-plat", "X0X_WHEEL_PLAT")
    with tempfile.TemporaryDirectory(prefix="agent-x0x-") as tmp:
        lib = _library(config_settings, root, Path(tmp))
        wheel = bw.build(lib, Path(wheel_directory), plat=plat, pyproject=Path.cwd().resolve() / "pyproject.toml",
                         src=root / "bindings" / "python" / "src" / "x0x")
    sys.stderr.write(f"agent-x0x: wrote {wheel.name}\n")
    return wheel.name


@_hook
def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    root = _go_root()
    meta = _meta()
    lib = _setting(config_settings, "x0x-lib", "X0X_LIB_PATH")
    if lib is None:
        built = root / "build" / "lib" / f"libx0x.so.{_abi_major(root)}"
        if sys.platform.startswith("linux") and not built.is_file():
            built.parent.mkdir(parents=True, exist_ok=True)
            build_libx0x(root, built.parent)
            (built.parent / "libx0x.so").unlink(missing_ok=True)
            (built.parent / "libx0x.so").symlink_to(built.name)
        lib = str(built)
    src = root / "bindings" / "python" / "src"
    pth = f"{src}\nimport os; os.environ.setdefault('X0X_LIB', {str(Path(lib).resolve())!r})\n"
    files = {f"__editable__.{_dist(meta)}-{meta['version']}.pth": (pth.encode(), 0o644)}
    wheel = bw.write_wheel(Path(wheel_directory), meta, "py3-none-any", files, purelib=True)
    sys.stderr.write(f"agent-x0x: editable install of {src} with X0X_LIB={lib} (rebuild it with `make capi`)\n")
    return wheel.name


# ---------------------------------------------------------------- sdist

#: Top-level files of the sdist (besides pyproject.toml and PKG-INFO); LICENSE* files are added when present.
SDIST_FILES = ["VERSION", "go.mod", "go.sum", "bindings/python/README.md",
               "bindings/python/scripts/build_wheel.py", "bindings/python/scripts/x0x_build_backend.py"]
#: Folders of the Go module that libx0x is built from (without tests and test data).
SDIST_GO_DIRS = ["include", "capi", "core"]


def sdist_files(root: Path) -> list[str]:
    """Paths (relative to root, POSIX) that go into the sdist, sorted."""
    out = ["pyproject.toml"] + SDIST_FILES + sorted(p.name for p in root.glob("LICENSE*") if p.is_file())
    for d in SDIST_GO_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / d):
            dirnames[:] = sorted(n for n in dirnames if n not in ("testdata", "__pycache__") and not n.startswith("."))
            for f in filenames:
                if f.endswith("_test.go") or f.startswith(".") or f.endswith((".so", ".a", ".o")):
                    continue
                out.append((Path(dirpath) / f).relative_to(root).as_posix())
    pkg = root / "bindings" / "python" / "src" / "x0x"
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".typed") and "__pycache__" not in p.parts and "_native" not in p.parts:
            out.append(p.relative_to(root).as_posix())
    missing = [f for f in out if not (root / f).is_file()]
    if missing:
        raise BuildError(f"the sdist needs files this tree lacks: {missing}")
    return sorted(set(out))


@_hook
def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    root = _go_root()
    meta = bw.project_meta(root / "pyproject.toml")  # the sdist has the top-level layout
    bw.check_version(root / "bindings" / "python" / "src" / "x0x", meta["version"])
    base = f"{_dist(meta)}-{meta['version']}"
    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
    out = Path(sdist_directory) / f"{base}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)

    def add(tf: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
        info = tarfile.TarInfo(f"{base}/{name}")
        info.size, info.mode, info.mtime = len(data), mode, epoch
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tf.addfile(info, io.BytesIO(data))

    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
                add(tf, "PKG-INFO", bw.metadata_text(meta).encode(), 0o644)
                for rel in sdist_files(root):
                    add(tf, rel, (root / rel).read_bytes(), 0o644)
    tmp.replace(out)
    sys.stderr.write(f"agent-x0x: wrote {out.name}\n")
    return out.name
