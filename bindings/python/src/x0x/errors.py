"""Exceptions raised by the x0x package.

Every failure reported by libx0x becomes an :class:`X0xError` subclass chosen
by the C status code (``x0x_status`` in ``x0x.h``); ``.code`` is the numeric
status, ``.status`` its name (e.g. ``"X0X_ERR_TIMEOUT"``) and the message is
the library's ``x0x_last_error()`` text. Bad arguments detected in Python,
before any C call, raise plain :class:`TypeError` or :class:`ValueError`.
"""

from __future__ import annotations

__all__ = [
    "X0xError",
    "InvalidArgument",
    "InvalidHandle",
    "Closed",
    "X0xIOError",
    "CryptoError",
    "WrongPassphrase",
    "NotFound",
    "X0xTimeout",
    "TooLarge",
    "InternalPanic",
    "NoRoute",
    "Corrupt",
    "AuthError",
    "NoPeers",
    "TaskDone",
    "TaskNotClaimed",
    "TaskClaimedByOther",
    "NotWriter",
    "Rejected",
    "NotMember",
    "AlreadyMember",
    "Refused",
    "OtherError",
    "LaggedError",
    "Unsupported",
    "error_for_status",
]


class X0xError(Exception):
    """Base class of every error reported by libx0x.

    Attributes:
        code: the numeric ``x0x_status`` (``-1`` for :class:`Unsupported`).
        status: the status name, e.g. ``"X0X_ERR_TIMEOUT"``.
        message: the library's explanation (``x0x_last_error()``), which
            starts with the C function's name.
    """

    #: Status code this class stands for (overridden by subclasses).
    CODE: int = 99
    #: Status name this class stands for (overridden by subclasses).
    STATUS: str = "X0X_ERR_OTHER"

    def __init__(self, message: str, code: int | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.code: int = self.CODE if code is None else code
        self.status: str = self.STATUS if status is None else status

    def __str__(self) -> str:
        return f"{self.message} [{self.status}]"


class InvalidArgument(X0xError, ValueError):
    """The library rejected an argument (malformed value, unknown key, bad address)."""

    CODE = 1
    STATUS = "X0X_ERR_INVALID_ARG"


class InvalidHandle(X0xError):
    """A handle was destroyed, never issued or of another kind."""

    CODE = 2
    STATUS = "X0X_ERR_INVALID_HANDLE"


class Closed(X0xError):
    """The agent (or task list, group, or identity) is closed, or shutting down; for a
    group also: this agent left it or was removed from it."""

    CODE = 3
    STATUS = "X0X_ERR_CLOSED"


class X0xIOError(X0xError):
    """An operating-system or network error (files, sockets, dial failures), or a data
    directory another running agent holds ("data directory in use")."""

    CODE = 4
    STATUS = "X0X_ERR_IO"


class CryptoError(X0xError):
    """A cryptographic check failed (signature, certificate, sealed key file)."""

    CODE = 5
    STATUS = "X0X_ERR_CRYPTO"


class WrongPassphrase(X0xError):
    """A passphrase is wrong, missing, or given for an unprotected file."""

    CODE = 6
    STATUS = "X0X_ERR_WRONG_PASSPHRASE"


class NotFound(X0xError):
    """Something named does not exist (a file, a task, a subscription, a pending invitation)."""

    CODE = 7
    STATUS = "X0X_ERR_NOT_FOUND"


class X0xTimeout(X0xError, TimeoutError):
    """The timeout of a blocking call expired (also a builtin :class:`TimeoutError`)."""

    CODE = 8
    STATUS = "X0X_ERR_TIMEOUT"


class TooLarge(X0xError, ValueError):
    """An input or message exceeds a size limit of the library."""

    CODE = 9
    STATUS = "X0X_ERR_TOO_LARGE"


class InternalPanic(X0xError):
    """The library caught an internal panic (a bug in libx0x: please report it)."""

    CODE = 10
    STATUS = "X0X_ERR_PANIC"


class NoRoute(X0xError):
    """No connected peer carries the destination agent."""

    CODE = 11
    STATUS = "X0X_ERR_NO_ROUTE"


class Corrupt(X0xError):
    """Data (a key file, an identity bundle, persisted state) is corrupt or of an unsupported version."""

    CODE = 12
    STATUS = "X0X_ERR_CORRUPT"


class AuthError(X0xError):
    """A peer failed authentication or presented another identity than the pinned one."""

    CODE = 13
    STATUS = "X0X_ERR_AUTH"


class NoPeers(X0xError):
    """``join_network`` had nobody to contact (no bootstrap or cached peers)."""

    CODE = 14
    STATUS = "X0X_ERR_NO_PEERS"


class TaskDone(X0xError):
    """The task is done, so it cannot be claimed (reopen it first)."""

    CODE = 15
    STATUS = "X0X_ERR_TASK_DONE"


class TaskNotClaimed(X0xError):
    """The task is not claimed, so it cannot be completed (claim it first)."""

    CODE = 16
    STATUS = "X0X_ERR_TASK_NOT_CLAIMED"


class TaskClaimedByOther(X0xError):
    """The task is claimed by another agent, so this agent cannot complete it."""

    CODE = 17
    STATUS = "X0X_ERR_TASK_CLAIMED_BY_OTHER"


class NotWriter(X0xError):
    """This agent may not write to the task list (not granted by its creator and
    the list is not open, or the list's creation has not arrived yet), or may not
    change its writers (only the creator can)."""

    CODE = 18
    STATUS = "X0X_ERR_NOT_WRITER"


class Rejected(X0xError):
    """A validator of the topic refused the message (or gave no verdict in time)."""

    CODE = 19
    STATUS = "X0X_ERR_REJECTED"


class NotMember(X0xError):
    """Groups: the agent is not a member of the group (also: removing this agent
    itself, use :meth:`x0x.Group.leave`; leaving a group whose only member is this
    agent, use :meth:`x0x.Group.close`)."""

    CODE = 20
    STATUS = "X0X_ERR_NOT_MEMBER"


class AlreadyMember(X0xError):
    """Groups: the invited agent is already a member of the group."""

    CODE = 21
    STATUS = "X0X_ERR_ALREADY_MEMBER"


class Refused(X0xError):
    """Groups: the invited agent does not accept invitations (it has not called
    :meth:`x0x.Agent.publish_key_package`) or is over its rate of invitations."""

    CODE = 22
    STATUS = "X0X_ERR_REFUSED"


class OtherError(X0xError):
    """An error the library could not classify more precisely."""

    CODE = 99
    STATUS = "X0X_ERR_OTHER"


class LaggedError(Exception):
    """The lag marker of a stream: ``missed`` items were lost because its reader fell behind.

    Raised once, exactly where the gap is, by ``await stream.get()`` and by
    ``async for`` over a subscription, a topic-event stream or a group's
    message or event stream (which it ends: start another loop to read on). The stream goes on. Not an
    :class:`X0xError`: nothing failed in the library.
    """

    def __init__(self, missed: int) -> None:
        super().__init__(f"x0x: the reader fell behind: {missed} item{'' if missed == 1 else 's'} lost")
        self.missed: int = missed


class Unsupported(X0xError, NotImplementedError):
    """The loaded libx0x lacks a function this package needs (it is older than the package)."""

    CODE = -1
    STATUS = "X0X_UNSUPPORTED"


_BY_CODE: dict[int, type[X0xError]] = {
    cls.CODE: cls
    for cls in (
        InvalidArgument,
        InvalidHandle,
        Closed,
        X0xIOError,
        CryptoError,
        WrongPassphrase,
        NotFound,
        X0xTimeout,
        TooLarge,
        InternalPanic,
        NoRoute,
        Corrupt,
        AuthError,
        NoPeers,
        TaskDone,
        TaskNotClaimed,
        TaskClaimedByOther,
        NotWriter,
        Rejected,
        NotMember,
        AlreadyMember,
        Refused,
        OtherError,
    )
}


def error_for_status(code: int, message: str, status: str | None = None) -> X0xError:
    """Returns (does not raise) the exception for a non-zero status ``code``.

    Unknown codes give a plain :class:`X0xError` carrying the code and the
    given ``status`` name (``"X0X_ERR_UNKNOWN"`` when none is given).
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        return X0xError(message, code, status or "X0X_ERR_UNKNOWN")
    return cls(message, code, status or cls.STATUS)
