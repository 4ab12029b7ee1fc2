"""Writes the agent-x0x wheel (a zip with RECORD sha256 hashes) without any build dependency.

Usage: python build_wheel.py LIBX0X_SO OUT_DIR
The platform tag is derived from the library itself: its ELF machine gives
the architecture and the highest GLIBC_x.y symbol version it needs gives
manylinux_x_y (PEP 600). The library must depend on nothing but glibc
(checked). Entries are sorted and time-stamped with SOURCE_DATE_EPOCH (or
1980-01-01) so the same inputs give the same wheel.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
SRC = PKG_ROOT / "src" / "x0x"
ALLOWED_NEEDED = {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1", "ld-linux-x86-64.so.2"}
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}


def project_meta() -> dict[str, str]:
    text = (PKG_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        proj = tomllib.loads(text)["project"]
        return {k: str(proj[k]) for k in ("name", "version", "description", "requires-python")}
    out = {}
    for key in ("name", "version", "description", "requires-python"):
        m = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', text, re.M)
        if not m:
            raise SystemExit(f"pyproject.toml: no {key}")
        out[key] = m.group(1)
    return out


def elf_arch(lib: Path) -> str:
    head = lib.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        raise SystemExit(f"{lib}: not a little-endian 64-bit ELF file")
    machine = int.from_bytes(head[18:20], "little")
    if machine not in ELF_MACHINES:
        raise SystemExit(f"{lib}: unsupported ELF machine {machine}")
    return ELF_MACHINES[machine]


def glibc_needs(lib: Path) -> tuple[tuple[int, int], set[str]]:
    """Highest GLIBC_x.y version needed and the DT_NEEDED libraries (via objdump)."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise SystemExit("objdump (binutils) is needed to compute the wheel's platform tag")
    dyn = subprocess.run([objdump, "-T", str(lib)], check=True, capture_output=True, text=True).stdout
    versions = {(int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", dyn)}
    if not versions:
        raise SystemExit(f"{lib}: no GLIBC symbol versions found")
    priv = subprocess.run([objdump, "-p", str(lib)], check=True, capture_output=True, text=True).stdout
    needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", priv, re.M))
    return max(versions), needed


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    lib = Path(sys.argv[1]).resolve()
    out_dir = Path(sys.argv[2]).resolve()
    meta = project_meta()
    arch = elf_arch(lib)
    (major, minor), needed = glibc_needs(lib)
    extra = needed - ALLOWED_NEEDED
    if extra:
        raise SystemExit(f"{lib} needs libraries a manylinux wheel cannot assume: {sorted(extra)}")
    tag = f"py3-none-manylinux_{major}_{minor}_{arch}"
    dist = meta["name"].replace("-", "_")
    version = meta["version"]
    init = (SRC / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if not m or m.group(1) != version:
        raise SystemExit(f"x0x.__version__ ({m.group(1) if m else None}) differs from pyproject.toml ({version})")
    distinfo = f"{dist}-{version}.dist-info"

    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(SRC.rglob("*")):
        rel = path.relative_to(SRC.parent).as_posix()
        if path.is_dir() or "__pycache__" in rel or "/_native/" in rel:
            continue
        if path.suffix in (".py", ".typed"):
            files[rel] = (path.read_bytes(), 0o644)
    files["x0x/_native/libx0x.so.0"] = (lib.read_bytes(), 0o755)
    readme = (PKG_ROOT / "README.md").read_text(encoding="utf-8")
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {meta['name']}\n"
        f"Version: {version}\n"
        f"Summary: {meta['description']}\n"
        f"Requires-Python: {meta['requires-python']}\n"
        "License: MIT OR Apache-2.0\n"
        "Classifier: Framework :: AsyncIO\n"
        "Classifier: Operating System :: POSIX :: Linux\n"
        "Classifier: Programming Language :: Python :: 3 :: Only\n"
        "Classifier: Typing :: Typed\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    )
    files[f"{distinfo}/METADATA"] = (metadata.encode(), 0o644)
    wheel = f"Wheel-Version: 1.0\nGenerator: x0x build_wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files[f"{distinfo}/WHEEL"] = (wheel.encode(), 0o644)
    files[f"{distinfo}/top_level.txt"] = (b"x0x\n", 0o644)
    record_name = f"{distinfo}/RECORD"
    lines = [f"{name},{record_hash(data)},{len(data)}" for name, (data, _) in sorted(files.items())]
    lines.append(f"{record_name},,")
    files[record_name] = (("\n".join(lines) + "\n").encode(), 0o644)

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{dist}-{version}-{tag}.whl"
    for old in out_dir.glob(f"{dist}-*.whl"):
        old.unlink()
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        order = [n for n in sorted(files) if not n.startswith(distinfo)] + [
            n for n in sorted(files) if n.startswith(distinfo) and n != record_name
        ] + [record_name]
        for name in order:
            data, mode = files[name]
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(target)
    print(target)


if __name__ == "__main__":
    main()
