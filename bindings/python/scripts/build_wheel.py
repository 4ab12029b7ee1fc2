"""Writes the agent-x0x wheel (a zip with RECORD sha256 hashes) without any build dependency.

Usage: python build_wheel.py LIBX0X_SO OUT_DIR [--plat PLATFORM_TAG]

The platform tag is derived from the library itself: its ELF machine gives
the architecture and the highest GLIBC_x.y symbol version it needs gives
manylinux_x_y (PEP 600); the library must depend on nothing but glibc
(checked). A Mach-O library gives macosx_<its minimum macOS>_<cpu>, a
Windows DLL win_amd64 or win_arm64. --plat (or the environment variable
X0X_WHEEL_PLAT) names the tag instead, e.g. manylinux_2_28_aarch64 for a
cross-built library; it is checked against the library: the ELF machine,
and a manylinux_X_Y below the glibc the library needs is refused; a
Mach-O's CPU; a DLL's machine. The library goes into the wheel as
x0x/_native/<name>, the name x0x/_lib.py loads on that platform:
libx0x.so.0 (manylinux), libx0x.dylib (macosx), x0x.dll (win). The wheel's
"Operating System" classifier is the tag's too (pyproject.toml lists the
Linux one). Entries are
sorted and time-stamped with SOURCE_DATE_EPOCH (or 1980-01-01) so the same
inputs give the same wheel. OUT_DIR loses its older agent_x0x-*.whl files.

It is also a module: the PEP 517 backend (x0x_build_backend.py, beside it)
calls build() and metadata_text(). The ELF reader needs no objdump.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
SRC = PKG_ROOT / "src" / "x0x"
LIB_IN_WHEEL = "x0x/_native/libx0x.so.0"  # on Linux; lib_in_wheel() gives it per platform tag
ALLOWED_NEEDED = {
    "libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1", "libresolv.so.2",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
}
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64"}
PE_MACHINES = {0x8664: "amd64", 0xAA64: "arm64"}
DEFAULT_CLASSIFIERS = [
    "Framework :: AsyncIO",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3 :: Only",
    "Typing :: Typed",
]


class WheelError(Exception):
    """A reason not to write the wheel (the message says what is wrong)."""


# ---------------------------------------------------------------- metadata

def project_meta(pyproject: Path | None = None) -> dict[str, Any]:
    """The [project] table of pyproject.toml (bindings/python's by default).

    With tomllib (or tomli) the whole table; without (Python 3.10 without
    tomli) only the string fields name, version, description, readme and
    requires-python.
    """
    path = pyproject or PKG_ROOT / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    if tomllib is not None:
        proj = dict(tomllib.loads(text)["project"])
    else:
        proj = {}
        section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        body = section.group(1) if section else ""
        for key in ("name", "version", "description", "readme", "requires-python"):
            m = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', body, re.M)
            if m:
                proj[key] = m.group(1)
    for key in ("name", "version", "description", "requires-python"):
        if not isinstance(proj.get(key), str):
            raise WheelError(f"{path}: [project] has no {key}")
    if proj.get("dependencies"):
        raise WheelError(f"{path}: agent-x0x has no runtime dependencies, but [project] lists {proj['dependencies']}")
    proj["_dir"] = str(path.parent)
    return proj


def readme_text(meta: dict[str, Any]) -> str:
    readme = meta.get("readme", "README.md")
    if isinstance(readme, dict):
        readme = readme.get("file", "README.md")
    return (Path(meta["_dir"]) / str(readme)).read_text(encoding="utf-8")


def lib_in_wheel(plat: str) -> str:
    """The library's path in a wheel for platform tag plat (the name x0x/_lib.py loads there)."""
    if plat.startswith("win"):
        return "x0x/_native/x0x.dll"
    if plat.startswith("macosx"):
        return "x0x/_native/libx0x.dylib"
    return LIB_IN_WHEEL


def os_classifier(plat: str) -> str | None:
    """The "Operating System" trove classifier of platform tag plat (None for "any" and unknown tags)."""
    if plat.startswith("win"):
        return "Operating System :: Microsoft :: Windows"
    if plat.startswith("macosx"):
        return "Operating System :: MacOS"
    if plat.startswith(("manylinux", "musllinux", "linux")):
        return "Operating System :: POSIX :: Linux"
    return None


def classifiers(meta: dict[str, Any], plat: str | None = None) -> list[str]:
    """The classifiers of [project], with the "Operating System" ones replaced by plat's (if plat has one)."""
    out = list(meta.get("classifiers", DEFAULT_CLASSIFIERS))
    osc = os_classifier(plat) if plat else None
    if osc is None:
        return out
    at = next((i for i, c in enumerate(out) if c.startswith("Operating System ::")), None)
    out = [c for c in out if not c.startswith("Operating System ::")]
    if at is None:
        at = next((i for i, c in enumerate(out) if c > osc), len(out))
    out.insert(min(at, len(out)), osc)
    return out


def metadata_text(meta: dict[str, Any], plat: str | None = None) -> str:
    """Core metadata 2.1 (METADATA in a wheel, PKG-INFO in an sdist).

    plat (a wheel platform tag, or just its start: "win", "macosx",
    "manylinux") sets the "Operating System" classifier; without it the
    classifiers are pyproject.toml's.
    """
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {meta['name']}",
        f"Version: {meta['version']}",
        f"Summary: {meta['description']}",
    ]
    for author in meta.get("authors", []):
        if "name" in author and "email" not in author:
            lines.append(f"Author: {author['name']}")
        elif "email" in author:
            who = f"{author['name']} <{author['email']}>" if "name" in author else author["email"]
            lines.append(f"Author-email: {who}")
    lic = meta.get("license", {"text": "MIT OR Apache-2.0"})
    lines.append(f"License: {lic.get('text', 'MIT OR Apache-2.0') if isinstance(lic, dict) else lic}")
    if meta.get("keywords"):
        lines.append(f"Keywords: {','.join(meta['keywords'])}")
    for label, url in meta.get("urls", {}).items():
        lines.append(f"Project-URL: {label}, {url}")
    for c in classifiers(meta, plat):
        lines.append(f"Classifier: {c}")
    lines.append(f"Requires-Python: {meta['requires-python']}")
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + readme_text(meta)


def check_version(src: Path, version: str) -> None:
    init = (src / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if not m or m.group(1) != version:
        raise WheelError(f"x0x.__version__ ({m.group(1) if m else None}) differs from pyproject.toml ({version})")


# ---------------------------------------------------------------- the library

def elf_info(data: bytes) -> tuple[str, tuple[int, int] | None, set[str]]:
    """Architecture, highest GLIBC_x.y version needed (None if none) and DT_NEEDED of a 64-bit LE ELF."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise WheelError("not a little-endian 64-bit ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine not in ELF_MACHINES:
        raise WheelError(f"unsupported ELF machine {machine}")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, stype, _flags, _addr, off, size, link, _info, _align, _entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((stype, off, size, link))

    def cstr(table: int, index: int) -> str:
        off = sections[table][1] + index
        return data[off:data.index(b"\0", off)].decode("ascii", "replace")

    needed: set[str] = set()
    versions: set[tuple[int, int]] = set()
    for stype, off, size, link in sections:
        if stype == 6:  # SHT_DYNAMIC
            for pos in range(off, off + size, 16):
                tag, val = struct.unpack_from("<qQ", data, pos)
                if tag == 0:
                    break
                if tag == 1:  # DT_NEEDED
                    needed.add(cstr(link, val))
        elif stype == 0x6FFFFFFE:  # SHT_GNU_verneed
            pos = off
            while True:
                _ver, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    _hash, _flags, _other, name, anext = struct.unpack_from("<IHHII", data, apos)
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", cstr(link, name))
                    if m:
                        versions.add((int(m.group(1)), int(m.group(2))))
                    apos += anext
                if nxt == 0:
                    break
                pos += nxt
    return ELF_MACHINES[machine], (max(versions) if versions else None), needed


def macho_min_os(data: bytes) -> tuple[int, int]:
    """The minimum macOS version of a 64-bit Mach-O file (LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX)."""
    ncmds = struct.unpack_from("<I", data, 16)[0]
    pos = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x32:  # LC_BUILD_VERSION: platform, minos, sdk, ntools
            minos = struct.unpack_from("<I", data, pos + 12)[0]
            return minos >> 16, (minos >> 8) & 0xFF
        if cmd == 0x24:  # LC_VERSION_MIN_MACOSX: version, sdk
            v = struct.unpack_from("<I", data, pos + 8)[0]
            return v >> 16, (v >> 8) & 0xFF
        pos += size
    raise WheelError("no minimum macOS version in the Mach-O load commands: give the platform tag (X0X_WHEEL_PLAT)")


def platform_tag(lib: Path, plat: str | None = None) -> str:
    """The wheel's platform tag for lib: derived from an ELF library, or plat checked against lib."""
    data = lib.read_bytes()
    if plat is not None and not re.fullmatch(r"[a-z0-9_]+", plat):
        raise WheelError(f"platform tag {plat!r} is not a wheel platform tag (e.g. manylinux_2_28_x86_64)")
    if data[:4] == b"\x7fELF":
        try:
            arch, glibc, needed = elf_info(data)
        except WheelError as e:
            raise WheelError(f"{lib}: {e}") from None
        if any(n.startswith("libc.musl") or n.startswith("ld-musl") for n in needed):
            raise WheelError(
                f"{lib} was built against musl libc: no wheel is made for musl, because musl's dlopen cannot "
                "load a Go c-shared library (golang/go#13492, golang/go#54805); build on a glibc system")
        extra = needed - ALLOWED_NEEDED
        if extra:
            raise WheelError(f"{lib} needs libraries a manylinux wheel cannot assume: {sorted(extra)}")
        if glibc is None and plat is None:
            raise WheelError(f"{lib}: no GLIBC symbol versions found (not a glibc library?): give the platform tag")
        derived = f"manylinux_{glibc[0]}_{glibc[1]}_{arch}" if glibc else ""
        if plat is None or plat == derived:
            return derived
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", plat)
        if not m or m.group(3) != arch:
            raise WheelError(f"{lib} is a Linux {arch} glibc library: platform tag {plat} does not fit (want manylinux_X_Y_{arch})")
        if glibc and (int(m.group(1)), int(m.group(2))) < glibc:
            raise WheelError(f"{lib} needs glibc {glibc[0]}.{glibc[1]}: it cannot carry the tag {plat}")
        return plat
    if data[:4] == b"\xcf\xfa\xed\xfe":  # Mach-O 64-bit little-endian
        cpu: str | None = MACHO_CPUS.get(struct.unpack_from("<I", data, 4)[0])
        if cpu is None:
            raise WheelError(f"{lib}: unsupported Mach-O CPU type")
        if plat is None:
            major, minor = macho_min_os(data)
            return f"macosx_{major}_{minor if major == 10 else 0}_{cpu}"
        if not (plat.startswith("macosx_") and plat.endswith("_" + cpu)):
            raise WheelError(f"{lib} is a Mach-O {cpu} library: platform tag {plat} does not fit")
        return plat
    if data[:4] == b"\xca\xfe\xba\xbe":  # a universal Mach-O: the tag must be given
        if plat is None or not plat.startswith("macosx_"):
            raise WheelError(f"{lib} is a universal Mach-O library: give its platform tag (X0X_WHEEL_PLAT, e.g. macosx_11_0_universal2)")
        return plat
    if data[:2] == b"MZ":
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        machine = PE_MACHINES.get(struct.unpack_from("<H", data, pe + 4)[0]) if data[pe:pe + 4] == b"PE\0\0" else None
        if machine is None:
            raise WheelError(f"{lib}: not a PE DLL for amd64 or arm64")
        if plat is None:
            return f"win_{machine}"
        if plat != f"win_{machine}":
            raise WheelError(f"{lib} is a Windows {machine} DLL: platform tag {plat} does not fit (want win_{machine})")
        return plat
    raise WheelError(f"{lib}: not a shared library this script knows (ELF, Mach-O or PE)")


# ---------------------------------------------------------------- the wheel

def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def package_files(src: Path) -> dict[str, tuple[bytes, int]]:
    """The x0x package's files (the .py files and py.typed), by their path in the wheel."""
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src.parent).as_posix()
        if path.is_dir() or "__pycache__" in rel or "/_native/" in rel:
            continue
        if path.suffix in (".py", ".typed"):
            files[rel] = (path.read_bytes(), 0o644)
    return files


def write_wheel(out_dir: Path, meta: dict[str, Any], tag: str, files: dict[str, tuple[bytes, int]],
                purelib: bool = False) -> Path:
    """Writes <dist>-<version>-<tag>.whl with files + dist-info; returns its path.

    tag is the whole tag (py3-none-<platform>); its platform sets the OS classifier.
    """
    dist = re.sub(r"[-_.]+", "_", meta["name"]).lower()
    version = meta["version"]
    distinfo = f"{dist}-{version}.dist-info"
    files = dict(files)
    files[f"{distinfo}/METADATA"] = (metadata_text(meta, tag.split("-")[-1]).encode(), 0o644)
    wheel = (f"Wheel-Version: 1.0\nGenerator: x0x build_wheel.py\nRoot-Is-Purelib: {'true' if purelib else 'false'}\n"
             f"Tag: {tag}\n")
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
    tmp = out_dir / f".{target.name}.{os.getpid()}.tmp"  # unique: two builds may share out_dir
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
    return target


def build(lib: Path, out_dir: Path, plat: str | None = None, pyproject: Path | None = None,
          src: Path | None = None, clean: bool = False) -> Path:
    """Writes the platform wheel carrying lib; returns its path."""
    meta = project_meta(pyproject)
    src = src or SRC
    check_version(src, meta["version"])
    plat_tag = platform_tag(lib, plat)
    tag = "py3-none-" + plat_tag
    files = package_files(src)
    files[lib_in_wheel(plat_tag)] = (lib.read_bytes(), 0o755)
    if clean:
        dist = re.sub(r"[-_.]+", "_", meta["name"]).lower()
        for old in out_dir.glob(f"{dist}-*.whl"):
            old.unlink()
    return write_wheel(out_dir, meta, tag, files)


def main(argv: list[str]) -> None:
    args = list(argv)
    plat = os.environ.get("X0X_WHEEL_PLAT") or None
    if "--plat" in args:
        i = args.index("--plat")
        if i + 1 >= len(args):
            raise SystemExit(__doc__)
        plat = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    try:
        print(build(Path(args[0]).resolve(), Path(args[1]).resolve(), plat=plat, clean=True))
    except WheelError as e:
        raise SystemExit(f"build_wheel.py: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
