"""Argument checks shared by the public classes (private).

Each helper validates one kind of Python argument and converts it to what
the C function takes, raising TypeError/ValueError with a message naming the
argument before any C call is made.
"""

from __future__ import annotations

import os
from typing import Union

from . import _lib
from .errors import TooLarge

BytesLike = Union[bytes, bytearray, memoryview]
#: A message payload: bytes, or a str sent as its UTF-8 encoding.
Payload = Union[bytes, bytearray, memoryview, str]
StrPath = Union[str, "os.PathLike[str]"]

_HEX = frozenset("0123456789abcdefABCDEF")


def id_bytes(value: object, what: str) -> bytes:
    """Converts an ID given as 64 hex digits (str) or 32 raw bytes to 32 bytes."""
    if isinstance(value, str):
        if len(value) != 2 * _lib.ID_SIZE or not _HEX.issuperset(value):
            raise ValueError(f"{what} must be {2 * _lib.ID_SIZE} hex digits, got {value!r:.80}")
        return bytes.fromhex(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != _lib.ID_SIZE:
            raise ValueError(f"{what} must be {_lib.ID_SIZE} bytes, got {len(raw)}")
        return raw
    raise TypeError(f"{what} must be a hex str or 32 bytes, not {type(value).__name__}")


def c_string(value: object, what: str, *, max_len: int = _lib.MAX_STRING, allow_empty: bool = True) -> bytes:
    """Encodes a str argument as UTF-8 for a NUL-terminated C string."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    raw = value.encode("utf-8", "strict")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain NUL characters")
    if not allow_empty and not raw:
        raise ValueError(f"{what} must not be empty")
    if len(raw) > max_len:
        raise ValueError(f"{what} is {len(raw)} bytes long; the limit is {max_len} bytes (UTF-8)")
    return raw


def field_string(value: object, what: str, max_len: int) -> bytes:
    """Encodes a task-list string (a list name, task title or description) of at most
    ``max_len`` UTF-8 bytes. Wrong types and NUL characters raise TypeError/ValueError;
    a longer string raises :class:`x0x.TooLarge` (also a ValueError), the status
    (``X0X_ERR_TOO_LARGE``) the library gives it."""
    raw = c_string(value, what, max_len=1 << 62)
    if len(raw) > max_len:
        raise TooLarge(f"{what} is {len(raw)} bytes long; the limit is {max_len} bytes (UTF-8)")
    return raw


def path_string(value: object, what: str) -> bytes:
    """Encodes a str or os.PathLike path for a C string."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        raise TypeError(f"{what} must be a str or os.PathLike[str], not bytes")
    return c_string(value, what, allow_empty=False)


def payload(value: object, what: str, max_len: int, *, allow_str: bool = False) -> bytes:
    """Checks a bytes-like payload and returns it as bytes (no copy for bytes).

    With ``allow_str``, a str is accepted too and encoded as UTF-8 (message
    payloads, as the Node binding does). Over ``max_len`` bytes raises
    :class:`x0x.TooLarge` (also a ValueError).
    """
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, (bytearray, memoryview)):
        raw = bytes(value)
    elif allow_str and isinstance(value, str):
        raw = value.encode("utf-8", "strict")
    else:
        kinds = "bytes, bytearray, memoryview or str" if allow_str else "bytes, bytearray or memoryview"
        raise TypeError(f"{what} must be {kinds}, not {type(value).__name__}")
    if len(raw) > max_len:
        raise TooLarge(f"{what} is {len(raw)} bytes; the limit is {max_len} bytes")
    return raw


def passphrase(value: object, what: str = "passphrase") -> bytes:
    """Converts a passphrase (str, encoded as UTF-8, or bytes) to bytes."""
    if isinstance(value, str):
        raw = value.encode("utf-8", "strict")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise TypeError(f"{what} must be a str or bytes, not {type(value).__name__}")
    if len(raw) > _lib.MAX_PASSPHRASE:
        raise ValueError(f"{what} is {len(raw)} bytes; the limit is {_lib.MAX_PASSPHRASE} bytes")
    return raw


def timeout_ms(value: object) -> int:
    """Converts a timeout in seconds (None: the library default of 30 s) to milliseconds."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {value!r}")
    ms = int(value * 1000)
    if ms > 0xFFFFFFFF:
        raise ValueError(f"timeout {value!r} s is too long (at most {0xFFFFFFFF // 1000} s)")
    return max(ms, 1)


def uint(value: object, what: str, lo: int, hi: int) -> int:
    """Checks an int argument in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be in {lo}..{hi}, got {value}")
    return value
