"""The wheel: its tag matches what the library needs, its RECORD is right, and it is what is installed."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import x0x

ROOT = Path(__file__).resolve().parents[3]


def the_wheel() -> Path:
    wheels = sorted((ROOT / "build" / "python").glob("agent_x0x-*.whl"))
    if not wheels:
        pytest.skip("no wheel in build/python (run bindings/python/scripts/build-wheel.sh)")
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_name_and_tag() -> None:
    whl = the_wheel()
    m = re.match(r"^agent_x0x-(?P<ver>[^-]+)-py3-none-manylinux_(?P<maj>\d+)_(?P<min>\d+)_(?P<arch>x86_64|aarch64)\.whl$", whl.name)
    assert m, whl.name
    assert m["ver"] == x0x.__version__
    with zipfile.ZipFile(whl) as zf:
        wheel_meta = zf.read(f"agent_x0x-{x0x.__version__}.dist-info/WHEEL").decode()
        lib = zf.read("x0x/_native/libx0x.so.0")
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
            "x0x/_native/libx0x.so.0",
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
        mode = zf.getinfo("x0x/_native/libx0x.so.0").external_attr >> 16
        assert mode & 0o111


def test_installed_package_is_the_wheel() -> None:
    whl = the_wheel()
    pkg = Path(x0x.__file__).resolve().parent
    if "site-packages" not in str(pkg):
        pytest.skip("not running against an installed wheel")
    with zipfile.ZipFile(whl) as zf:
        assert (pkg / "_native" / "libx0x.so.0").read_bytes() == zf.read("x0x/_native/libx0x.so.0")
        assert (pkg / "agent.py").read_bytes() == zf.read("x0x/agent.py")
    assert (pkg / "py.typed").exists()
