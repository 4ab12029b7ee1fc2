"""Loads libx0x and declares the C prototypes of include/x0x.h (private).

The library is looked for first inside the package (``x0x/_native/<name>``,
shipped in the wheel; the name is :data:`LIBRARY_NAME`: ``libx0x.so.0`` on
Linux, ``libx0x.dylib`` on macOS, ``x0x.dll`` on Windows), then at the path
in the ``X0X_LIB`` environment variable (for development against
``build/lib``). It is loaded by its full path (on Windows too: x0x.dll
imports only KERNEL32.dll and msvcrt.dll, so no DLL directory is needed). Functions the
loaded library lacks (an older ABI minor version) are replaced by stubs that
raise :class:`x0x.errors.Unsupported` when called, so the rest keeps working.

Everything here is immutable after import: the loaded library object, the
function table and the struct layout.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, NoReturn

from .errors import Unsupported, error_for_status

ID_SIZE = 32
ID_HEX_SIZE = 65
DEFAULT_TIMEOUT_MS = 30000
MAX_TOPIC = 256
MAX_STRING = 4096
# Task-list strings (X0X_MAX_TASKLIST_NAME, X0X_MAX_TASK_TITLE, X0X_MAX_TASK_DESCRIPTION).
MAX_TASKLIST_NAME = 1024
MAX_TASK_TITLE = 1024
MAX_TASK_DESCRIPTION = 16 * 1024
MAX_PASSPHRASE = 1024
MAX_BUNDLE = 64 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_PUBLISH = 1024 * 1024
DEFAULT_EVENT_QUEUE = 1024
MAX_EVENT_QUEUE = 65536
MAX_INJECT_PAYLOAD = 65536
ABI_MAJOR = 0
ABI_MINOR = 7
TOPIC_PUBLISH_ONLY = 1
DEFAULT_VALIDATION_MS = 1000
MAX_VALIDATION_MS = 10000
VALIDATION_ACCEPT = 0
VALIDATION_REJECT = 1
#: Largest group message (x0x_group_publish: 960 KiB).
MAX_GROUP_MESSAGE = 960 * 1024

#: The library's file name in the package, per platform (what build_wheel.py puts into x0x/_native/).
LIBRARY_NAMES = {"linux": "libx0x.so.0", "darwin": "libx0x.dylib", "win32": "x0x.dll"}
LIBRARY_NAME = LIBRARY_NAMES.get(sys.platform, "libx0x.so.0")
SONAME = LIBRARY_NAME  # the former name of LIBRARY_NAME

IdArray = c_uint8 * ID_SIZE


class CEvent(Structure):
    """The C ``x0x_event`` record (layout fixed within ABI major 0)."""

    _fields_ = [
        ("kind", c_uint32),
        ("status", c_int32),
        ("peer", c_uint8 * ID_SIZE),
        ("from_", c_uint8 * ID_SIZE),
        ("to", c_uint8 * ID_SIZE),
        ("addr", c_void_p),
        ("error", c_void_p),
        ("agents", c_void_p),
        ("agents_count", c_size_t),
        ("payload", c_void_p),
        ("payload_len", c_size_t),
        ("topic", c_void_p),
        ("reserved", c_uint64 * 4),
    ]


# The same record for struct.iter_unpack (native sizes and alignment):
# kind, status, peer, from, to, addr, error, agents, agents_count, payload,
# payload_len, topic, reserved[4].
EVENT_STRUCT = struct.Struct("@Ii32s32s32sPPPNPNP4Q")
if EVENT_STRUCT.size != ctypes.sizeof(CEvent):  # pragma: no cover - platform check
    raise ImportError(
        f"x0x: x0x_event layout mismatch (struct {EVENT_STRUCT.size} != ctypes {ctypes.sizeof(CEvent)} bytes)"
    )

EventCallback = CFUNCTYPE(None, c_uint64, POINTER(CEvent), c_void_p)
#: x0x_validator_fn (bound for completeness; the package validates
#: asynchronously: a call from the network path into Python would stall it).
ValidatorFunction = CFUNCTYPE(c_int, c_uint64, POINTER(CEvent), c_void_p)

_u64p = POINTER(c_uint64)
_u8p = POINTER(c_uint8)
_u8pp = POINTER(_u8p)
_sizep = POINTER(c_size_t)
_charpp = POINTER(c_void_p)  # char** out: read as an address, freed with x0x_free

# name -> (restype, argtypes)
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "x0x_abi_version": (c_uint32, []),
    "x0x_last_error": (c_char_p, []),
    "x0x_status_name": (c_char_p, [c_int]),
    "x0x_free": (None, [c_void_p]),
    "x0x_id_to_hex": (c_int, [c_char_p, c_char_p]),
    "x0x_id_from_hex": (c_int, [c_char_p, c_char_p]),
    "x0x_config_new": (c_int, [_u64p]),
    "x0x_config_set": (c_int, [c_uint64, c_char_p, c_char_p]),
    "x0x_config_set_passphrase": (c_int, [c_uint64, c_char_p, c_size_t]),
    "x0x_config_set_identity": (c_int, [c_uint64, c_uint64]),
    "x0x_config_destroy": (c_int, [c_uint64]),
    "x0x_agent_create": (c_int, [c_uint64, c_uint32, _u64p]),
    "x0x_agent_destroy": (c_int, [c_uint64]),
    "x0x_agent_id": (c_int, [c_uint64, c_char_p]),
    "x0x_machine_id": (c_int, [c_uint64, c_char_p]),
    "x0x_agent_addr": (c_int, [c_uint64, _charpp]),
    "x0x_join_network": (c_int, [c_uint64, c_uint32]),
    "x0x_connect": (c_int, [c_uint64, c_char_p, c_uint32, c_char_p]),
    "x0x_send_direct": (c_int, [c_uint64, c_char_p, c_char_p, c_size_t, c_uint32]),
    "x0x_wait_for_agent": (c_int, [c_uint64, c_char_p, c_uint32]),
    "x0x_connected_peers": (c_int, [c_uint64, _charpp, _sizep]),
    "x0x_peer_agents": (c_int, [c_uint64, c_char_p, _charpp, _sizep]),
    "x0x_identity_export": (c_int, [c_uint64, c_char_p, c_size_t, _charpp, _sizep]),
    "x0x_identity_import": (c_int, [c_char_p, c_size_t, c_char_p, c_size_t, _u64p]),
    "x0x_identity_agent_id": (c_int, [c_uint64, c_char_p]),
    "x0x_identity_save": (c_int, [c_uint64, c_char_p, c_char_p, c_size_t]),
    "x0x_identity_destroy": (c_int, [c_uint64]),
    "x0x_subscribe": (c_int, [c_uint64, c_char_p]),
    "x0x_unsubscribe": (c_int, [c_uint64, c_char_p]),
    "x0x_publish": (c_int, [c_uint64, c_char_p, c_char_p, c_size_t, c_uint32, c_char_p]),
    "x0x_tasklist_create": (c_int, [c_uint64, c_char_p, _u64p]),
    "x0x_tasklist_join": (c_int, [c_uint64, c_char_p, _u64p]),
    "x0x_tasklist_id": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_leave": (c_int, [c_uint64]),
    "x0x_tasklist_add": (c_int, [c_uint64, c_char_p, c_char_p, c_char_p]),
    "x0x_tasklist_update": (c_int, [c_uint64, c_char_p, c_char_p, c_char_p]),
    "x0x_tasklist_claim": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_complete": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_reopen": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_move": (c_int, [c_uint64, c_char_p, c_char_p]),
    "x0x_tasklist_remove": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_snapshot": (c_int, [c_uint64, _charpp]),
    "x0x_tasklist_add_writer": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_remove_writer": (c_int, [c_uint64, c_char_p]),
    "x0x_tasklist_set_open": (c_int, [c_uint64, c_int]),
    "x0x_debug_inject_events": (c_int, [c_uint64, c_uint32, c_size_t]),
    "x0x_events_fd": (c_int, [c_uint64, POINTER(c_int)]),
    "x0x_events_drain": (c_int, [c_uint64, POINTER(CEvent), c_size_t, _sizep]),
    "x0x_events_release": (None, [POINTER(CEvent), c_size_t]),
    "x0x_events_dropped": (c_int, [c_uint64, _u64p]),
    "x0x_set_event_callback": (c_int, [c_uint64, EventCallback, c_void_p]),
    "x0x_topic_join": (c_int, [c_uint64, c_char_p, c_uint32, _u64p]),
    "x0x_topic_join_validated": (c_int, [c_uint64, c_char_p, c_uint32, ValidatorFunction, c_void_p, c_uint32, _u64p]),
    "x0x_topic_validation_result": (c_int, [c_uint64, c_uint64, c_int]),
    "x0x_topic_publish": (c_int, [c_uint64, c_char_p, c_size_t, c_char_p]),
    "x0x_topic_subscribe": (c_int, [c_uint64, _u64p]),
    "x0x_topic_events": (c_int, [c_uint64, _u64p]),
    "x0x_subscription_close": (c_int, [c_uint64]),
    "x0x_topic_neighbours": (c_int, [c_uint64, _charpp, _sizep]),
    "x0x_topic_leave": (c_int, [c_uint64]),
    # ABI 0.7: private groups.
    "x0x_keypackage_publish": (c_int, [c_uint64, _charpp, _sizep]),
    "x0x_group_create": (c_int, [c_uint64, _u64p]),
    "x0x_invitations": (c_int, [c_uint64, _charpp]),
    "x0x_group_accept": (c_int, [c_uint64, c_char_p, _u64p]),
    "x0x_group_decline": (c_int, [c_uint64, c_char_p]),
    "x0x_group_id": (c_int, [c_uint64, c_char_p]),
    "x0x_group_info": (c_int, [c_uint64, _charpp]),
    "x0x_group_invite": (c_int, [c_uint64, c_char_p, c_uint32]),
    "x0x_group_invite_keypackage": (c_int, [c_uint64, c_char_p, c_size_t, c_uint32]),
    "x0x_group_remove": (c_int, [c_uint64, c_char_p]),
    "x0x_group_update": (c_int, [c_uint64]),
    "x0x_group_leave": (c_int, [c_uint64]),
    "x0x_group_publish": (c_int, [c_uint64, c_char_p, c_size_t]),
    "x0x_group_tasklist_create": (c_int, [c_uint64, c_char_p, _u64p]),
    "x0x_group_tasklist_join": (c_int, [c_uint64, c_char_p, _u64p]),
    "x0x_group_close": (c_int, [c_uint64]),
    "x0x_groups": (c_int, [c_uint64, _charpp]),
    "x0x_group_open": (c_int, [c_uint64, c_char_p, _u64p]),
}

#: Names of every function of include/x0x.h this package binds.
FUNCTIONS: tuple[str, ...] = tuple(_PROTOTYPES)

# Functions the package cannot work without (ABI 0.1).
_REQUIRED = (
    "x0x_abi_version",
    "x0x_last_error",
    "x0x_status_name",
    "x0x_free",
    "x0x_agent_create",
    "x0x_agent_destroy",
    "x0x_events_fd",
    "x0x_events_drain",
    "x0x_events_release",
)


def _candidates() -> list[Path]:
    """Paths to try, in order: the packaged library, then $X0X_LIB."""
    out = [Path(__file__).resolve().parent / "_native" / LIBRARY_NAME]
    env = os.environ.get("X0X_LIB")
    if env:
        out.append(Path(env))
    return out


def _load() -> tuple[ctypes.CDLL, Path]:
    tried: list[str] = []
    for path in _candidates():
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        try:
            return ctypes.CDLL(str(path)), path
        except OSError as exc:
            tried.append(f"{path} ({exc})")
    if not os.environ.get("X0X_LIB"):
        tried.append("$X0X_LIB (not set)")
    built_by = "scripts/build-capi.sh" if LIBRARY_NAME == "libx0x.so.0" else "scripts/build-matrix.sh"
    raise ImportError(
        f"x0x: cannot load the native library {LIBRARY_NAME}; looked for: "
        + "; ".join(tried)
        + ". Install a wheel for your platform (Linux x86_64 or aarch64 with glibc, macOS, Windows x64) "
        f"or set X0X_LIB to the path of {LIBRARY_NAME} (built by {built_by})."
    )


_cdll, LIBRARY_PATH = _load()


def _missing(name: str) -> Callable[..., NoReturn]:
    def stub(*_args: Any) -> NoReturn:
        raise Unsupported(
            f"{name}: the loaded libx0x ({LIBRARY_PATH}, ABI {ABI_VERSION >> 16}.{ABI_VERSION & 0xFFFF}) "
            f"does not provide this function; use a newer libx0x"
        )

    return stub


class _Functions:
    """Attribute namespace of the bound C functions (stubs for missing ones)."""

    def __getattr__(self, name: str) -> Any:  # only for names not bound
        raise AttributeError(name)


lib: Any = _Functions()
_present: set[str] = set()
for _name, (_res, _args) in _PROTOTYPES.items():
    try:
        _fn = getattr(_cdll, _name)
    except AttributeError:
        if _name in _REQUIRED:
            raise ImportError(f"x0x: {LIBRARY_PATH} is not a usable libx0x: it lacks {_name}") from None
        continue
    _fn.restype = _res
    _fn.argtypes = _args
    setattr(lib, _name, _fn)
    _present.add(_name)

ABI_VERSION: int = int(lib.x0x_abi_version())
if ABI_VERSION >> 16 != ABI_MAJOR:
    raise ImportError(
        f"x0x: {LIBRARY_PATH} implements ABI {ABI_VERSION >> 16}.{ABI_VERSION & 0xFFFF}, "
        f"this package needs ABI major {ABI_MAJOR}"
    )

for _name in _PROTOTYPES:
    if _name not in _present:
        setattr(lib, _name, _missing(_name))

PRESENT: frozenset[str] = frozenset(_present)


def last_error() -> str:
    """Returns the calling thread's last library error message."""
    msg: bytes | None = lib.x0x_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def status_name(code: int) -> str:
    """Returns the library's name for a status code."""
    name: bytes | None = lib.x0x_status_name(code)
    return name.decode("ascii", "replace") if name else "X0X_ERR_UNKNOWN"


def check(rc: int) -> None:
    """Raises the X0xError for a non-zero status; call it on the thread that made the C call."""
    if rc != 0:
        raise error_for_status(rc, last_error() or f"libx0x returned {status_name(rc)}", status_name(rc))


def opened(handle: int, id_fn: Callable[[int, Any], int], release_fn: Callable[[int], int]) -> tuple[int, str]:
    """Reads the ID of a new handle with ``id_fn`` (releasing the handle with ``release_fn`` if that fails).

    Returns the handle and the ID (hex).
    """
    out = ctypes.create_string_buffer(ID_SIZE)
    rc = id_fn(handle, out)
    if rc != 0:
        release_fn(handle)
        check(rc)
    return handle, out.raw.hex()


def take_string(addr: int | None) -> str:
    """Copies the NUL-terminated library string at addr and frees it with x0x_free."""
    if not addr:
        return ""
    try:
        return ctypes.string_at(addr).decode("utf-8", "replace")
    finally:
        lib.x0x_free(addr)


def take_bytes(addr: int | None, n: int) -> bytes:
    """Copies n library-owned bytes at addr and frees them with x0x_free."""
    if not addr:
        return b""
    try:
        return ctypes.string_at(addr, n)
    finally:
        lib.x0x_free(addr)


def take_ids(addr: int | None, count: int) -> list[str]:
    """Copies count IDs at addr as hex strings and frees the array with x0x_free."""
    raw = take_bytes(addr, count * ID_SIZE)
    return [raw[i : i + ID_SIZE].hex() for i in range(0, len(raw), ID_SIZE)]


__all__ = [
    "CEvent",
    "EVENT_STRUCT",
    "EventCallback",
    "ValidatorFunction",
    "FUNCTIONS",
    "LIBRARY_NAME",
    "LIBRARY_PATH",
    "ABI_VERSION",
    "PRESENT",
    "c_char",
    "lib",
    "check",
    "opened",
    "last_error",
    "status_name",
    "take_string",
    "take_bytes",
    "take_ids",
]
