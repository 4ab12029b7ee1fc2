"""The wheel: its tag matches what the library needs, its RECORD is right, and it is what is installed."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import x0x
from x0x import _lib

ROOT = Path(__file__).resolve().parents[3]
#: The library's path in this platform's wheel.
NATIVE = f"x0x/_native/{_lib.LIBRARY_NAME}"


def the_wheel() -> Path:
    wheels = sorted((ROOT / "build" / "python").glob("agent_x0x-*.whl"))
    if not wheels:
        pytest.skip("no wheel in build/python (run bindings/python/scripts/build-wheel.sh)")
    assert len(wheels) == 1, wheels
    return wheels[0]


def build_wheel_module() -> Any:
    """bindings/python/scripts/build_wheel.py, imported."""
    sys.path.insert(0, str(ROOT / "bindings" / "python" / "scripts"))
    try:
        return importlib.import_module("build_wheel")
    finally:
        sys.path.pop(0)


def test_wheel_library_name_and_classifier_per_platform() -> None:
    bw = build_wheel_module()
    # build_wheel.py puts the library where x0x/_lib.py looks for it on each platform.
    for tag, system in (("manylinux_2_28_x86_64", "linux"), ("manylinux_2_28_aarch64", "linux"),
                        ("win_amd64", "win32"), ("macosx_11_0_arm64", "darwin"), ("macosx_10_15_x86_64", "darwin")):
        assert bw.lib_in_wheel(tag) == f"x0x/_native/{_lib.LIBRARY_NAMES[system]}", tag
    meta = bw.project_meta()
    want = {"win_amd64": "Operating System :: Microsoft :: Windows", "macosx_11_0_arm64": "Operating System :: MacOS",
            "manylinux_2_28_x86_64": "Operating System :: POSIX :: Linux"}
    for tag, osc in want.items():
        got = [c for c in bw.classifiers(meta, tag) if c.startswith("Operating System")]
        assert got == [osc], (tag, got)
        assert f"Classifier: {osc}\n" in bw.metadata_text(meta, tag)
    assert "Classifier: Operating System :: POSIX :: Linux" not in bw.metadata_text(meta, "win_amd64")


def test_windows_wheel_layout(tmp_path: Path) -> None:
    # A stand-in PE DLL (just the headers build_wheel.py reads) gives a win_amd64 wheel with x0x.dll.
    pe = bytearray(512)
    pe[:2] = b"MZ"
    pe[0x3C:0x40] = (0x80).to_bytes(4, "little")
    pe[0x80:0x86] = b"PE\0\0" + (0x8664).to_bytes(2, "little")
    dll = tmp_path / "x0x.dll"
    dll.write_bytes(bytes(pe))
    bw = build_wheel_module()
    whl = bw.build(dll, tmp_path / "out")
    assert whl.name.endswith("-py3-none-win_amd64.whl")
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        assert "x0x/_native/x0x.dll" in names and not any(n.endswith(".so.0") for n in names)
        meta = zf.read(f"agent_x0x-{x0x.__version__}.dist-info/METADATA").decode()
    assert "Classifier: Operating System :: Microsoft :: Windows" in meta
    assert "POSIX" not in meta.split("\n\n", 1)[0]


def test_wheel_name_and_tag() -> None:
    whl = the_wheel()
    if not sys.platform.startswith("linux"):
        pytest.skip("the manylinux tag checks are for Linux")
    m = re.match(r"^agent_x0x-(?P<ver>[^-]+)-py3-none-manylinux_(?P<maj>\d+)_(?P<min>\d+)_(?P<arch>x86_64|aarch64)\.whl$", whl.name)
    assert m, whl.name
    assert m["ver"] == x0x.__version__
    with zipfile.ZipFile(whl) as zf:
        wheel_meta = zf.read(f"agent_x0x-{x0x.__version__}.dist-info/WHEEL").decode()
        lib = zf.read(NATIVE)
    assert f"Tag: py3-none-manylinux_{m['maj']}_{m['min']}_{m['arch']}" in wheel_meta
    assert "Root-Is-Purelib: false" in wheel_meta
    # The tag's glibc is exactly the newest GLIBC_ symbol version the library needs.
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump not installed")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"x0x-wheel-lib-{os.getpid()}"
    tmp.write_bytes(lib)
    try:
        dyn = subprocess.run([objdump, "-T", str(tmp)], check=True, capture_output=True, text=True).stdout
    finally:
        tmp.unlink()
    need = max((int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", dyn))
    assert need == (int(m["maj"]), int(m["min"]))


def test_wheel_contents_and_record() -> None:
    whl = the_wheel()
    with zipfile.ZipFile(whl) as zf:
        names = set(zf.namelist())
        di = f"agent_x0x-{x0x.__version__}.dist-info"
        for want in (
            "x0x/__init__.py", "x0x/agent.py", "x0x/events.py", "x0x/tasklist.py", "x0x/errors.py",
            "x0x/identity.py", "x0x/group.py", "x0x/topic.py", "x0x/_lib.py", "x0x/_util.py", "x0x/py.typed",
            NATIVE,
            f"{di}/METADATA", f"{di}/WHEEL", f"{di}/RECORD",
        ):
            assert want in names, want
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        record = zf.read(f"{di}/RECORD").decode().splitlines()
        rows = {line.split(",")[0]: line.split(",")[1:] for line in record}
        assert set(rows) == names
        for name, (digest, size) in rows.items():
            if name.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(name)
            want_digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (want_digest, len(data)), name
        meta = zf.read(f"{di}/METADATA").decode()
        assert "Name: agent-x0x" in meta and "Requires-Python: >=3.10" in meta
        assert "Requires-Dist" not in meta  # no runtime dependencies
        mode = zf.getinfo(NATIVE).external_attr >> 16
        assert mode & 0o111


def test_installed_package_is_the_wheel() -> None:
    whl = the_wheel()
    pkg = Path(x0x.__file__).resolve().parent
    if "site-packages" not in str(pkg):
        pytest.skip("not running against an installed wheel")
    with zipfile.ZipFile(whl) as zf:
        assert (pkg / "_native" / _lib.LIBRARY_NAME).read_bytes() == zf.read(NATIVE)
        assert (pkg / "agent.py").read_bytes() == zf.read("x0x/agent.py")
    assert (pkg / "py.typed").exists()
