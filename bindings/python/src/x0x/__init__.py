"""x0x: a post-quantum peer-to-peer network for AI agents (Python binding of libx0x).

Direct messages, topics, replicated task lists and private (MLS) groups.

Asyncio-native and dependency-free (ctypes over the C ABI of ``x0x.h``)::

    import asyncio, x0x

    async def main() -> None:
        async with await x0x.Agent.create(data_dir="/tmp/a") as agent:
            async with await agent.join("news") as topic, topic.subscribe() as sub:
                await topic.publish(b"hello")
                async for msg in sub:  # raises x0x.LaggedError (.missed) after a gap
                    print(msg.from_agent, msg.payload)
                    break

    asyncio.run(main())

The native library is ``x0x/_native/libx0x.so.0`` inside the package
(``libx0x.dylib`` on macOS, ``x0x.dll`` on Windows), or the file named by
the ``X0X_LIB`` environment variable when the package has none. Only one
Go runtime can live in a process: do not load a second Go shared library
next to it. On Linux glibc only (musl cannot dlopen it).
"""

from __future__ import annotations

from ctypes import create_string_buffer
from pathlib import Path

from . import _lib, _util
from ._lib import check as _check
from .agent import Agent
from .errors import (
    AlreadyMember,
    AuthError,
    Closed,
    Corrupt,
    CryptoError,
    InternalPanic,
    InvalidArgument,
    InvalidHandle,
    NoPeers,
    NoRoute,
    NotFound,
    NotMember,
    OtherError,
    TaskClaimedByOther,
    LaggedError,
    NotWriter,
    Refused,
    Rejected,
    TaskDone,
    TaskNotClaimed,
    TooLarge,
    Unsupported,
    WrongPassphrase,
    X0xError,
    X0xIOError,
    X0xTimeout,
)
from .events import (
    AgentsChanged,
    ConnectionFailed,
    DirectMessage,
    Event,
    EventKind,
    EventStream,
    ExternalAddressDiscovered,
    GroupChange,
    GroupEvent,
    GroupInvitation,
    GroupMessage,
    NatTypeDetected,
    PeerConnected,
    PeerDisconnected,
    Stream,
    TaskChanged,
    TaskOp,
    TopicEvent,
    TopicMessage,
)
from .group import Group, GroupEvents, GroupInfo, GroupMessages
from .identity import Identity
from .tasklist import Task, TaskChanges, TaskList, TaskListSnapshot, TaskState
from .topic import Subscription, Topic, TopicEvents, Validator

#: The same class as :class:`GroupInvitation` (an invitation waiting for an answer).
Invitation = GroupInvitation

__version__ = "0.7.0"

#: ABI version this package was written for, as (major, minor).
ABI_REQUIRED = (_lib.ABI_MAJOR, _lib.ABI_MINOR)


def abi_version() -> tuple[int, int]:
    """The ABI version (major, minor) of the loaded libx0x."""
    return (_lib.ABI_VERSION >> 16, _lib.ABI_VERSION & 0xFFFF)


def library_path() -> Path:
    """The path libx0x was loaded from."""
    return _lib.LIBRARY_PATH


def library_supports(function: str) -> bool:
    """True if the loaded libx0x exports C function ``function`` (e.g. ``"x0x_tasklist_create"``).

    Calls of functions it lacks raise :class:`Unsupported`.
    """
    return function in _lib.PRESENT


def status_name(code: int) -> str:
    """The library's name of status ``code``, e.g. ``"X0X_ERR_TIMEOUT"``."""
    return _lib.status_name(code)


def id_to_hex(raw: bytes) -> str:
    """The 64 lowercase hex digits of a 32-byte ID (computed by libx0x)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"id must be bytes, not {type(raw).__name__}")
    b = bytes(raw)
    if len(b) != _lib.ID_SIZE:
        raise ValueError(f"id must be {_lib.ID_SIZE} bytes, got {len(b)}")
    out = create_string_buffer(_lib.ID_HEX_SIZE)
    _check(_lib.lib.x0x_id_to_hex(b, out))
    return out.value.decode("ascii")


def id_from_hex(text: str) -> bytes:
    """The 32 bytes of an ID given as 64 hex digits (parsed by libx0x; raises InvalidArgument)."""
    c = _util.c_string(text, "id")
    out = create_string_buffer(_lib.ID_SIZE)
    _check(_lib.lib.x0x_id_from_hex(c, out))
    return out.raw


__all__ = [
    "ABI_REQUIRED",
    "Agent",
    "AgentsChanged",
    "AlreadyMember",
    "AuthError",
    "Closed",
    "ConnectionFailed",
    "Corrupt",
    "CryptoError",
    "DirectMessage",
    "Event",
    "EventKind",
    "EventStream",
    "ExternalAddressDiscovered",
    "Group",
    "GroupChange",
    "GroupEvent",
    "GroupEvents",
    "GroupInfo",
    "GroupInvitation",
    "GroupMessage",
    "GroupMessages",
    "Invitation",
    "NatTypeDetected",
    "Identity",
    "InternalPanic",
    "InvalidArgument",
    "InvalidHandle",
    "LaggedError",
    "NoPeers",
    "NoRoute",
    "NotFound",
    "NotMember",
    "OtherError",
    "PeerConnected",
    "PeerDisconnected",
    "Refused",
    "Rejected",
    "Stream",
    "Subscription",
    "Task",
    "TaskChanged",
    "TaskChanges",
    "TaskClaimedByOther",
    "NotWriter",
    "TaskDone",
    "TaskList",
    "TaskListSnapshot",
    "TaskNotClaimed",
    "TaskOp",
    "TaskState",
    "TooLarge",
    "Topic",
    "TopicEvent",
    "TopicEvents",
    "TopicMessage",
    "Unsupported",
    "Validator",
    "WrongPassphrase",
    "X0xError",
    "X0xIOError",
    "X0xTimeout",
    "abi_version",
    "id_from_hex",
    "id_to_hex",
    "library_path",
    "library_supports",
    "status_name",
]
