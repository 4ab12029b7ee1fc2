"""Event types and the bounded asynchronous streams that deliver them.

Events come from libx0x's pull API: the agent watches the library's event fd
with ``loop.add_reader`` (or, on loops without it such as Windows'
ProactorEventLoop, from a thread of its own that posts each drain to the
loop) and drains records in batches on its event loop,
converting each into one of the dataclasses below (all fields are copies:
nothing refers to library memory). Each stream (:class:`EventStream`,
:class:`x0x.Subscription`, :class:`x0x.TaskChanges`) has its own bounded
queue; when a consumer falls behind, new items for that stream are dropped
and counted in :attr:`Stream.dropped`. Subscriptions and topic-event streams
(:class:`x0x.Subscription`, :class:`TopicEvents`) also report each loss, where
it happened, as a :class:`x0x.LaggedError` (``.missed``), whether it happened
in their own queue or in the library's; so do the streams of private groups
(:class:`x0x.GroupMessages`, :class:`x0x.GroupEvents`) for losses in their own
queue.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import errno
import select
import socket
import threading
import warnings
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable, ClassVar, Generic, TypeVar, Union

from .errors import LaggedError

__all__ = [
    "EventKind",
    "TaskOp",
    "PeerConnected",
    "PeerDisconnected",
    "ConnectionFailed",
    "ExternalAddressDiscovered",
    "NatTypeDetected",
    "AgentsChanged",
    "DirectMessage",
    "TopicMessage",
    "TaskChanged",
    "TopicEvent",
    "GroupChange",
    "GroupInvitation",
    "GroupMessage",
    "GroupEvent",
    "Event",
    "Stream",
    "EventStream",
]


class EventKind(enum.IntEnum):
    """The ``x0x_event_kind`` values."""

    PEER_CONNECTED = 1
    PEER_DISCONNECTED = 2
    CONNECTION_FAILED = 3
    EXTERNAL_ADDRESS_DISCOVERED = 4
    AGENTS_CHANGED = 5
    DIRECT_MESSAGE = 6
    TOPIC_MESSAGE = 7
    TASK_CHANGED = 8
    NAT_TYPE_DETECTED = 9
    TOPIC_NEIGHBOUR_UP = 10
    TOPIC_NEIGHBOUR_DOWN = 11
    LAGGED = 12
    VALIDATE = 13
    GROUP_INVITATION = 14
    GROUP_MESSAGE = 15
    GROUP_CHANGED = 16


class TaskOp(enum.IntEnum):
    """The ``x0x_task_op`` values reported by :class:`TaskChanged`."""

    ADDED = 1
    UPDATED = 2
    CLAIMED = 3
    COMPLETED = 4
    REOPENED = 5
    MOVED = 6
    REMOVED = 7
    ACCESS_CHANGED = 8


@dataclass(slots=True)
class PeerConnected:
    """A connection to ``peer`` (machine ID, hex) at ``addr`` is up; ``agents`` are the agents it carries."""

    kind: ClassVar[EventKind] = EventKind.PEER_CONNECTED
    peer: str
    addr: str
    agents: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PeerDisconnected:
    """The connection to ``peer`` went down; ``status``/``error`` say why (0 and None when closed locally)."""

    kind: ClassVar[EventKind] = EventKind.PEER_DISCONNECTED
    peer: str
    status: int
    error: str | None


@dataclass(slots=True)
class ConnectionFailed:
    """A dial to ``addr`` (expecting ``peer``, None if unknown) failed with ``status``/``error``."""

    kind: ClassVar[EventKind] = EventKind.CONNECTION_FAILED
    addr: str
    peer: str | None
    status: int
    error: str | None


@dataclass(slots=True)
class ExternalAddressDiscovered:
    """``addr`` is this node's external address: peers at two or more IPs see it
    there (one peer's report alone never makes it one). It follows the
    :class:`NatTypeDetected` of the same classification; a new address is
    reported again; there is none behind a symmetric NAT."""

    kind: ClassVar[EventKind] = EventKind.EXTERNAL_ADDRESS_DISCOVERED
    addr: str


@dataclass(slots=True)
class NatTypeDetected:
    """This node's NAT mapping behaviour, learnt from the addresses peers at
    different IPs see it at: ``nat_type`` is ``"none"`` (a public address),
    ``"endpoint-independent"`` (a cone NAT: hole punching works) or
    ``"endpoint-dependent"`` (a symmetric NAT: most peers are reached through
    a relay); ``addr`` is the external address peers agree on, if any."""

    kind: ClassVar[EventKind] = EventKind.NAT_TYPE_DETECTED
    nat_type: str
    addr: str | None


@dataclass(slots=True)
class AgentsChanged:
    """``peer``'s set of agents changed to ``agents`` (hex IDs)."""

    kind: ClassVar[EventKind] = EventKind.AGENTS_CHANGED
    peer: str
    agents: list[str]


def _hex(v: str | bytes) -> str:
    return v if isinstance(v, str) else v.hex()


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in 0.8: use {new} (the names of x0x.h and the Node binding)",
        DeprecationWarning,
        stacklevel=3,
    )


class DirectMessage:
    """Agent ``from_agent`` (hex) on node ``peer`` sent ``payload`` to local agent ``to_agent``.

    The names are those of ``x0x.h`` and the Node binding (``from``, ``to``,
    ``peer``, ``payload``), with ``from``/``to`` spelt ``from_agent``/``to_agent``
    because ``from`` is a Python keyword. ``sender`` and ``recipient`` are
    deprecated aliases (until 0.8). The IDs are converted to hex when first
    read (they may be given as hex strings or 32 raw bytes); ``payload`` is a
    copy owned by the object.
    """

    __slots__ = ("_from", "_to", "_peer", "payload")
    kind: ClassVar[EventKind] = EventKind.DIRECT_MESSAGE

    def __init__(self, from_agent: str | bytes, to_agent: str | bytes, peer: str | bytes, payload: bytes) -> None:
        self._from = from_agent
        self._to = to_agent
        self._peer = peer
        self.payload: bytes = payload

    @property
    def from_agent(self) -> str:
        """The sending agent's ID (hex): ``from`` in x0x.h and Node."""
        return _hex(self._from)

    @property
    def to_agent(self) -> str:
        """The receiving local agent's ID (hex): ``to`` in x0x.h and Node."""
        return _hex(self._to)

    @property
    def peer(self) -> str:
        """The peer (machine) that delivered the message (hex)."""
        return _hex(self._peer)

    @property
    def sender(self) -> str:
        """Deprecated alias of :attr:`from_agent`."""
        _deprecated("DirectMessage.sender", "from_agent")
        return self.from_agent

    @property
    def recipient(self) -> str:
        """Deprecated alias of :attr:`to_agent`."""
        _deprecated("DirectMessage.recipient", "to_agent")
        return self.to_agent

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DirectMessage):
            return NotImplemented
        return (self.from_agent, self.to_agent, self.peer, self.payload) == (
            other.from_agent,
            other.to_agent,
            other.peer,
            other.payload,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"DirectMessage(from_agent={self.from_agent!r}, to_agent={self.to_agent!r}, peer={self.peer!r}, "
            f"payload={self.payload!r:.80})"
        )


class TopicMessage:
    """A message on a subscribed ``topic``.

    ``from_agent`` is the publishing agent (hex; its signature was verified;
    ``from`` in x0x.h and Node), ``seq`` the publisher's sequence number,
    ``timestamp`` the publisher's clock in Unix milliseconds, and ``hops``
    the overlay hops it took (0 for this agent's own messages; above the
    topic tree's depth when it was repaired through announcements or
    anti-entropy). ``peer`` is always None: libx0x does not say which
    neighbour delivered a topic message (as in Node, where it is null).
    ``origin`` is a deprecated alias of ``from_agent`` (until 0.8). IDs are
    converted to hex when first read; ``payload`` is a copy.
    """

    __slots__ = ("topic", "_from", "payload", "seq", "timestamp", "hops")
    kind: ClassVar[EventKind] = EventKind.TOPIC_MESSAGE

    def __init__(
        self,
        topic: str,
        from_agent: str | bytes,
        payload: bytes,
        seq: int,
        timestamp: int,
        peer: object = None,
        hops: int = 0,
    ) -> None:
        """``peer`` is ignored (kept in the signature for compatibility)."""
        self.topic: str = topic
        self._from = from_agent
        self.payload: bytes = payload
        self.seq: int = seq
        self.timestamp: int = timestamp
        self.hops: int = hops

    @property
    def from_agent(self) -> str:
        """The publishing agent's ID (hex)."""
        return _hex(self._from)

    @property
    def origin(self) -> str:
        """Deprecated alias of :attr:`from_agent`."""
        _deprecated("TopicMessage.origin", "from_agent")
        return self.from_agent

    @property
    def peer(self) -> None:
        """Always None: the library does not say which neighbour delivered a topic message."""
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicMessage):
            return NotImplemented
        return (self.topic, self.from_agent, self.payload, self.seq, self.timestamp, self.hops) == (
            other.topic,
            other.from_agent,
            other.payload,
            other.seq,
            other.timestamp,
            other.hops,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"TopicMessage(topic={self.topic!r}, from_agent={self.from_agent!r}, payload={self.payload!r:.80}, "
            f"seq={self.seq}, timestamp={self.timestamp}, hops={self.hops})"
        )


@dataclass(slots=True)
class TaskChanged:
    """Task ``task_id`` of list ``list_id`` changed by ``op``, made by agent ``from_agent``
    (``from`` in x0x.h and Node; ``local``: by this agent). ``agent`` is a deprecated
    alias of ``from_agent`` (until 0.8)."""

    kind: ClassVar[EventKind] = EventKind.TASK_CHANGED
    list_id: str
    task_id: str
    op: TaskOp | int
    from_agent: str
    local: bool

    @property
    def agent(self) -> str:
        """Deprecated alias of :attr:`from_agent`."""
        _deprecated("TaskChanged.agent", "from_agent")
        return self.from_agent


@dataclass(slots=True)
class TopicEvent:
    """A change of this node's neighbours on ``topic`` (from :meth:`x0x.Topic.events`).

    ``kind`` is :attr:`EventKind.TOPIC_NEIGHBOUR_UP` or
    :attr:`EventKind.TOPIC_NEIGHBOUR_DOWN`; ``peer`` the neighbour's machine ID (hex).
    """

    kind: EventKind
    topic: str
    peer: str

    @property
    def up(self) -> bool:
        """True for a new neighbour, False for one that went away."""
        return self.kind is EventKind.TOPIC_NEIGHBOUR_UP


class GroupChange(str, enum.Enum):
    """What a :class:`GroupEvent` reports (``x0x_group_change``); a ``str``, e.g. ``"member-joined"``."""

    #: ``agent`` became a member.
    MEMBER_JOINED = "member-joined"
    #: ``agent`` left or was removed.
    MEMBER_LEFT = "member-left"
    #: A commit moved the group to a new epoch (new keys).
    EPOCH_CHANGED = "epoch-changed"
    #: This agent left or was removed: the group is closed and its streams end after this event.
    REMOVED = "removed"
    #: ``agent`` announced its presence (only members see it).
    MEMBER_ONLINE = "member-online"

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class GroupInvitation:
    """Agent ``from_agent`` invited this agent into private group ``group`` (hex IDs).

    ``members`` are the group's members at the invitation (hex), ``epoch``
    the epoch the invitation starts. Delivered by :meth:`x0x.Agent.events`
    when it arrives and listed by :meth:`x0x.Agent.invitations` until it is
    answered with :meth:`x0x.Agent.accept_invitation` or
    :meth:`x0x.Agent.decline_invitation`.
    """

    kind: ClassVar[EventKind] = EventKind.GROUP_INVITATION
    group: str
    from_agent: str
    members: list[str] = field(default_factory=list)
    epoch: int = 0


@dataclass(slots=True)
class GroupMessage:
    """Member ``from_agent`` (hex; authenticated by MLS) sent ``data`` to group ``group`` in ``epoch``.

    From :meth:`x0x.Group.messages` (the other members' messages: a group
    does not echo this agent's own).
    """

    kind: ClassVar[EventKind] = EventKind.GROUP_MESSAGE
    group: str
    from_agent: str
    data: bytes
    epoch: int


@dataclass(slots=True)
class GroupEvent:
    """A change of group ``group``, from :meth:`x0x.Group.events`.

    ``kind`` is a :class:`GroupChange` (compares equal to its string, e.g.
    ``"member-joined"``); ``agent`` the member concerned (hex; None for
    ``"epoch-changed"`` and ``"removed"``); ``epoch`` the epoch after the change.
    """

    kind: GroupChange
    group: str
    agent: str | None
    epoch: int


#: Any event delivered by :meth:`x0x.Agent.events`.
Event = Union[
    PeerConnected,
    PeerDisconnected,
    ConnectionFailed,
    ExternalAddressDiscovered,
    NatTypeDetected,
    AgentsChanged,
    DirectMessage,
    TopicMessage,
    TaskChanged,
    GroupInvitation,
]

T = TypeVar("T")

#: Default capacity of a stream's queue.
DEFAULT_STREAM_CAPACITY = 8192


class _Gap:
    """A place in a stream's queue where ``missed`` items were lost."""

    __slots__ = ("missed",)

    def __init__(self, missed: int) -> None:
        self.missed = missed


class Stream(Generic[T]):
    """A bounded queue of items fed by the agent's event loop, read with ``async for``.

    Streams are created by the agent (never directly). They must be consumed
    on the agent's event loop. Iteration ends (``StopAsyncIteration``) once
    the stream is closed — by :meth:`close`, by unsubscribing, or when the
    agent closes — and the items queued before that have been read. Streams
    of topics report lost items with :class:`x0x.LaggedError` (see
    :class:`x0x.Subscription`).
    """

    __slots__ = ("_loop", "_items", "_capacity", "_dropped", "_waiter", "_closed", "_pending", "__weakref__")

    #: Whether losses are reported with LaggedError (else only counted).
    _reports_lag: ClassVar[bool] = False

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._loop = loop
        self._items: collections.deque[T | _Gap] = collections.deque()
        self._capacity = capacity
        self._dropped = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._pending = 0  # items lost after the last queued one (reported by LaggedError)

    @property
    def dropped(self) -> int:
        """Items dropped because this stream's queue was full."""
        return self._dropped

    @property
    def capacity(self) -> int:
        """Most items the queue holds before it drops new ones."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """True once the stream receives no more items."""
        return self._closed

    def qsize(self) -> int:
        """Items queued and not yet read."""
        return sum(1 for x in self._items if type(x) is not _Gap) if self._reports_lag else len(self._items)

    # Called on the loop thread by the agent's dispatcher.
    def _push(self, item: T) -> None:
        if len(self._items) >= self._capacity:
            self._dropped += 1
            if self._reports_lag:
                self._pending += 1
        else:
            if self._pending:
                self._items.append(_Gap(self._pending))
                self._pending = 0
            self._items.append(item)

    def _lag(self, missed: int) -> None:
        """The library lost ``missed`` items of this stream after those queued (loop thread only)."""
        if self._reports_lag and missed > 0:
            self._pending += missed

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def _finish(self) -> None:
        """Marks the stream closed and wakes its reader (loop thread only)."""
        self._closed = True
        self._wake()

    def _detach(self) -> None:  # overridden: unregister from the agent
        pass

    def close(self) -> None:
        """Stops delivery to this stream; already queued items stay readable. Idempotent."""
        if self._closed:
            return
        self._detach()
        self._end()

    def _end(self) -> None:
        """Finishes the stream from any thread: at once on its loop, else through the loop (if still open)."""
        if _on_loop(self._loop):
            self._finish()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._finish)
        else:
            self._closed = True

    def _take(self) -> T:
        """Pops the oldest queued entry (there is one), raising LaggedError at a gap."""
        x = self._items.popleft()
        if type(x) is _Gap:
            raise LaggedError(x.missed)
        return x  # type: ignore[return-value]

    def _take_pending(self) -> None:
        n = self._pending
        if n:
            self._pending = 0
            raise LaggedError(n)

    def get_nowait(self) -> T:
        """Returns the oldest queued item; raises asyncio.QueueEmpty if there is none.

        Raises :class:`x0x.LaggedError` (once) where items were lost.
        """
        if self._items:
            return self._take()
        self._take_pending()
        raise asyncio.QueueEmpty

    def get_batch_nowait(self, max_items: int = 1024) -> list[T]:
        """Removes and returns up to max_items queued items (maybe none).

        The batch stops before a gap; a gap first raises :class:`x0x.LaggedError`.
        """
        items = self._items
        out: list[T] = []
        while items and len(out) < max_items:
            if type(items[0]) is _Gap:
                if out:
                    return out
                return [self._take()]  # raises
            out.append(items.popleft())  # type: ignore[arg-type]
        if not out:
            self._take_pending()
        return out

    async def get(self) -> T:
        """Waits for and returns the next item; raises StopAsyncIteration once closed and empty.

        Raises :class:`x0x.LaggedError` (once) where items were lost; the
        stream goes on.
        """
        while True:
            if self._items:
                return self._take()
            self._take_pending()
            if self._closed:
                raise StopAsyncIteration
            if asyncio.get_running_loop() is not self._loop:
                raise RuntimeError("x0x streams must be read on the event loop of their agent")
            w = self._loop.create_future()
            self._waiter = w
            try:
                await w
            finally:
                if self._waiter is w:
                    self._waiter = None

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        if self._items:
            return self._take()
        return await self.get()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class EventStream(Stream[Event]):
    """Every event of an agent, from :meth:`x0x.Agent.events`; an async context manager closing itself."""

    __slots__ = ("_owner",)

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int, owner: _StreamOwner) -> None:
        super().__init__(loop, capacity)
        self._owner = owner

    def _detach(self) -> None:
        self._owner._remove_event_stream(self)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _StreamOwner:
    """What a stream needs from its agent (implemented by x0x.Agent)."""

    def _remove_event_stream(self, stream: EventStream) -> None:  # pragma: no cover - interface
        raise NotImplementedError


#: Name prefix of the threads of :class:`_EventWatch` (one per agent).
EVENT_THREAD_PREFIX = "x0x-events"


class _EventWatch:
    """Watches an agent's events fd from a daemon thread, for loops without ``add_reader``.

    asyncio's default loop on Windows (ProactorEventLoop) cannot watch a
    socket for readability (``add_reader`` raises NotImplementedError).
    There the agent uses this instead of ``loop.add_reader``: a thread waits
    (poll, or select on Windows) on the events fd and on a private wake
    socket. When the fd is readable it posts ``callback`` (one drain) to the
    loop with ``call_soon_threadsafe`` and then waits on the wake socket
    only, until the loop has run it and signalled back: at most one call is
    outstanding per agent, however many events arrive, and the fd is
    watched again only after each drain. :meth:`close` stops and joins the
    thread from any thread (the loop may be closed already); the thread
    never posts to a closed loop, and ends by itself if the fd goes away.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, callback: Callable[[], object], name: str
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._callback = callback
        self._lock = threading.Lock()  # serialises close()
        self._stopped = False  # set once, by close()
        self._pending = False  # a call is posted: set by the thread, cleared on the loop
        self._rsock, self._wsock = socket.socketpair()
        try:
            self._rsock.setblocking(False)
            self._wsock.setblocking(False)
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()
        except BaseException:
            self._rsock.close()
            self._wsock.close()
            raise

    @property
    def running(self) -> bool:
        """True while the watching thread runs."""
        return self._thread.is_alive()

    def _signal(self) -> None:
        """Wakes the thread (any thread). A full wake socket already wakes it."""
        try:
            self._wsock.send(b"\0")
        except OSError:  # BlockingIOError: bytes are pending anyway; else closing
            pass

    def _fire(self) -> None:
        """Runs on the loop: one drain, then lets the thread watch the fd again."""
        if self._stopped:
            return
        try:
            self._callback()
        finally:
            if not self._stopped:
                self._pending = False
                self._signal()

    def _run(self) -> None:
        fd, wake = self._fd, self._rsock.fileno()
        wait = _poller(fd, wake)
        rsock = self._rsock
        try:
            while not self._stopped:
                ready = wait(not self._pending)
                if wake in ready:
                    try:
                        while rsock.recv(4096):
                            pass
                    except OSError:  # BlockingIOError: emptied
                        pass
                    continue  # re-check stopped and pending
                if fd in ready and not self._pending:
                    self._pending = True
                    try:
                        self._loop.call_soon_threadsafe(self._fire)
                    except RuntimeError:  # the loop is closed: nobody will drain
                        return
        except (OSError, ValueError):
            return  # the events fd is gone (the agent was destroyed): nothing more to watch

    def close(self) -> None:
        """Stops the thread and waits for it to end; idempotent, from any thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._signal()
        if self._thread is not threading.current_thread():
            self._thread.join(10.0)
        if self._thread.is_alive():  # pragma: no cover - cannot happen: the wake socket ends its wait
            warnings.warn(f"x0x: event thread {self._thread.name} did not stop", RuntimeWarning, stacklevel=2)
            return
        self._rsock.close()
        self._wsock.close()


def _poller(fd: int, wake: int) -> Callable[[bool], set[int]]:
    """A function waiting until wake (or, if asked, fd too) is readable; returns the ready ones.

    It raises OSError when fd is closed. poll on POSIX (no FD_SETSIZE
    limit); select on Windows, which takes socket handles as ints.
    """
    if hasattr(select, "poll"):
        both, alone = select.poll(), select.poll()
        both.register(fd, select.POLLIN)
        both.register(wake, select.POLLIN)
        alone.register(wake, select.POLLIN)

        def wait_poll(with_fd: bool) -> set[int]:
            ready: set[int] = set()
            for f, ev in (both if with_fd else alone).poll():
                if ev & select.POLLNVAL:
                    raise OSError(errno.EBADF, f"fd {f} is closed")
                ready.add(f)
            return ready

        return wait_poll

    def wait_select(with_fd: bool) -> set[int]:
        r, _, _ = select.select([fd, wake] if with_fd else [wake], [], [])
        return set(r)

    return wait_select
