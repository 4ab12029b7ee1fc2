"""The asyncio Agent: one x0x agent (a node with its machine and agent keys).

Blocking C calls run in the event loop's default thread-pool executor, so
the loop never blocks. Events are pulled from libx0x on the loop that
created the agent (``loop.add_reader`` on the library's event fd, drained in
batches of up to 1024 records; on loops without ``add_reader``, such as
asyncio's default loop on Windows, a thread per agent watches the fd and
posts each drain to the loop) and dispatched to the streams the caller
opened: :meth:`Agent.events`, the subscriptions and event streams of
topics (:meth:`Agent.join`; records name their subscription handle), the
message and event streams of private groups (:meth:`Agent.create_group`,
:meth:`Agent.accept_invitation`, :meth:`Agent.groups`; records name their
group handle) and
:meth:`x0x.TaskList.changes`; validation requests go to their topic's
validator. Events that no stream wants are discarded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import threading
import warnings
from collections.abc import Iterable
from ctypes import byref, c_int, c_size_t, c_uint64, c_void_p, create_string_buffer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import _lib, _util
from ._lib import check, lib
from .errors import Closed, InvalidHandle, NotFound
from .events import (
    DEFAULT_STREAM_CAPACITY,
    AgentsChanged,
    EventKind,
    ConnectionFailed,
    DirectMessage,
    Event,
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
    EVENT_THREAD_PREFIX,
    _EventWatch,
    _on_loop,
    _StreamOwner,
)
from .topic import _TOKEN as _TOPIC_TOKEN
from .topic import Subscription, Topic, Validator

if TYPE_CHECKING:
    from .group import Group
    from .identity import Identity
    from .tasklist import TaskChanges, TaskList

__all__ = ["Agent", "Subscription"]

T = TypeVar("T")

#: Records drained per x0x_events_drain call.
DRAIN_BATCH = 1024
_REC = _lib.EVENT_STRUCT.size
_ZERO_ID = bytes(_lib.ID_SIZE)
_TASK_OPS = {int(op): op for op in TaskOp}
_NAT_TYPES = {1: "none", 2: "endpoint-independent", 3: "endpoint-dependent"}
_GROUP_CHANGES = {
    1: GroupChange.MEMBER_JOINED,
    2: GroupChange.MEMBER_LEFT,
    3: GroupChange.EPOCH_CHANGED,
    4: GroupChange.REMOVED,
    5: GroupChange.MEMBER_ONLINE,
}
# ctypes.string_at without its Python wrapper frame (falls back to the public one).
_string_at: Callable[[int, int], bytes] = getattr(ctypes, "_string_at", ctypes.string_at)


class Agent(_StreamOwner):
    """An x0x agent. Create it with ``await Agent.create(...)``; close it with ``await agent.close()``.

    The agent belongs to the event loop that created it: its events are
    read there. Its coroutines may be awaited from any loop or thread
    (``asyncio.run`` in worker threads included); the C calls are
    thread-safe. Using the agent after :meth:`close` raises :class:`x0x.Closed`.
    """

    def __init__(self, _token: object, handle: int, loop: asyncio.AbstractEventLoop, info: tuple[bytes, bytes, str, int]) -> None:
        if _token is not _TOKEN:
            raise TypeError("use 'await Agent.create(...)' to create an Agent")
        self._handle = handle
        self._loop = loop
        self._agent_id = info[0].hex()
        self._machine_id = info[1].hex()
        self._addr = info[2]
        self._fd = info[3]
        self._closed = False
        self._lock = threading.Lock()  # guards _closed and the registries below
        self._close_done: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Copy-on-write registries, read without locks by the dispatcher.
        self._event_streams: tuple[EventStream, ...] = ()
        self._routes: dict[int, Stream[Any]] = {}  # subscription handle -> stream of a topic
        self._topics: dict[int, Topic] = {}  # topic handle -> Topic (validation requests)
        self._task_streams: dict[str, tuple[TaskChanges, ...]] = {}
        self._lists: set[TaskList] = set()
        self._groups: dict[int, Group] = {}  # group handle -> Group (its messages and changes)
        self._gone_groups: set[int] = set()  # handles of Groups closed or removed here (never reused)
        # Drain buffers, used only on the loop thread.
        self._buf = (_lib.CEvent * DRAIN_BATCH)()
        self._view = memoryview((ctypes.c_char * (_REC * DRAIN_BATCH)).from_buffer(self._buf)).cast("B")
        self._n = c_size_t(0)
        self._nref = byref(self._n)
        self._reader = False  # watched with loop.add_reader
        self._watch: _EventWatch | None = None  # or by a thread (loops without add_reader)

    # ------------------------------------------------------------------ creation

    @classmethod
    async def create(
        cls,
        *,
        data_dir: _util.StrPath | None = None,
        bind_addr: str | None = None,
        bootstrap: Iterable[str] = (),
        network: str | None = None,
        passphrase: str | bytes | None = None,
        event_queue_capacity: int | None = None,
        machine_key_path: _util.StrPath | None = None,
        identity: Identity | None = None,
        timeout: float | None = None,
    ) -> Agent:
        """Creates an agent: loads or creates its keys in ``data_dir`` and starts listening.

        ``data_dir`` holds the keys, the peer cache, the task lists and the
        groups. Without it (None), the data directory is ``$X0X_HOME`` if set
        and non-empty, else ``~/.x0x`` (the environment as it was when
        libx0x was loaded, at ``import x0x``); ``""`` is refused
        (ValueError), so that an unset variable never silently selects that
        shared directory. One running agent per data directory: a second
        one on a directory another running agent holds (in this process or
        another) raises :class:`x0x.X0xIOError` at once ("data directory in
        use").

        It contacts nobody until :meth:`join_network` or :meth:`connect`.
        ``bind_addr`` defaults to ``"127.0.0.1:0"``; ``bootstrap`` entries are
        ``"host:port"`` or ``"<64 hex peer id>@host:port"``; ``network`` is
        ``"local"`` (default) or ``"testnet"``; ``passphrase`` seals the key
        files (Argon2id, ~0.25 s per key file); ``identity`` uses an
        imported agent key instead of the data directory's. ``timeout`` is in
        seconds (None: the library default of 30 s).

        Raises TypeError/ValueError for bad arguments, and
        :class:`x0x.InvalidArgument`, :class:`x0x.WrongPassphrase`,
        :class:`x0x.Corrupt`, :class:`x0x.CryptoError`,
        :class:`x0x.X0xIOError` (also: the data directory in use) or
        :class:`x0x.X0xTimeout` from the library.
        """
        settings: list[tuple[bytes, bytes]] = []
        if data_dir is not None:
            settings.append((b"data_dir", _util.path_string(data_dir, "data_dir")))
        if bind_addr is not None:
            settings.append((b"bind_addr", _util.c_string(bind_addr, "bind_addr", allow_empty=False)))
        if isinstance(bootstrap, (str, bytes)):
            raise TypeError("bootstrap must be an iterable of address strings, not a single string")
        for i, b in enumerate(bootstrap):
            settings.append((b"bootstrap", _util.c_string(b, f"bootstrap[{i}]", allow_empty=False)))
        if network is not None:
            settings.append((b"network", _util.c_string(network, "network", allow_empty=False)))
        if machine_key_path is not None:
            settings.append((b"machine_key_path", _util.path_string(machine_key_path, "machine_key_path")))
        if event_queue_capacity is not None:
            cap = _util.uint(event_queue_capacity, "event_queue_capacity", 1, _lib.MAX_EVENT_QUEUE)
            settings.append((b"event_queue_capacity", str(cap).encode()))
        pp = None if passphrase is None else _util.passphrase(passphrase)
        ident = 0
        if identity is not None:
            from .identity import Identity

            if not isinstance(identity, Identity):
                raise TypeError(f"identity must be an x0x.Identity, not {type(identity).__name__}")
            ident = identity._live_handle()
        ms = _util.timeout_ms(timeout)

        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, _create_blocking, settings, pp, ident, ms)
        try:
            handle, info = await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(_destroy_orphan)
            raise
        agent = cls(_TOKEN, handle, loop, info)
        try:
            agent._watch_events()
        except BaseException:
            await loop.run_in_executor(None, lib.x0x_agent_destroy, handle)
            raise
        return agent

    # ------------------------------------------------------------------ properties

    @property
    def agent_id(self) -> str:
        """This agent's ID (64 lowercase hex digits)."""
        return self._agent_id

    @property
    def machine_id(self) -> str:
        """The machine ID (64 hex digits), which is also the node's peer ID."""
        return self._machine_id

    @property
    def addr(self) -> str:
        """The UDP address the agent listens on, e.g. ``"127.0.0.1:40123"``."""
        return self._addr

    @property
    def dial_addr(self) -> str:
        """``"<machine id>@<addr>"``: an address for :meth:`connect` that pins this node's identity."""
        return f"{self._machine_id}@{self._addr}"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop that owns this agent's event delivery."""
        return self._loop

    @property
    def events_dropped(self) -> int:
        """Events the library's queue dropped because it was full (see ``event_queue_capacity``).

        Drops by individual Python streams are counted per stream
        (``stream.dropped``). Raises :class:`x0x.Closed` after close.
        """
        h = self._live_handle("events_dropped")
        out = c_uint64(0)
        self._check_live(lib.x0x_events_dropped(h, byref(out)), "events_dropped")
        return int(out.value)

    # ------------------------------------------------------------------ network

    async def join_network(self, timeout: float | None = None) -> None:
        """Connects to the bootstrap and best cached peers; returns once one connection is up.

        Raises :class:`x0x.NoPeers` (nobody to contact), :class:`x0x.X0xTimeout`,
        :class:`x0x.AuthError`, :class:`x0x.X0xIOError`, :class:`x0x.Closed`.
        """
        ms = _util.timeout_ms(timeout)
        await self._run("join_network", lambda h: check(lib.x0x_join_network(h, ms)))

    async def connect(self, addr: str, timeout: float | None = None) -> str:
        """Dials ``addr`` (``"host:port"`` or ``"<peer hex>@host:port"``) and keeps the connection up.

        Returns the peer ID (hex) that proved itself there. Raises
        :class:`x0x.InvalidArgument` (malformed address), :class:`x0x.AuthError`
        (pinned ID mismatch, or this agent's own node), :class:`x0x.X0xTimeout`,
        :class:`x0x.X0xIOError`, :class:`x0x.Closed`.
        """
        caddr = _util.c_string(addr, "addr", allow_empty=False)
        ms = _util.timeout_ms(timeout)

        def do(h: int) -> str:
            out = create_string_buffer(_lib.ID_SIZE)
            check(lib.x0x_connect(h, caddr, ms, out))
            return out.raw.hex()

        return await self._run("connect", do)

    async def send_direct(self, agent_id: str | bytes, data: _util.Payload, timeout: float | None = None) -> None:
        """Sends ``data`` (bytes, or a str encoded as UTF-8) to agent ``agent_id`` via a connected peer carrying it (or locally).

        Raises :class:`x0x.NoRoute` (no connected peer carries it),
        :class:`x0x.TooLarge`, :class:`x0x.X0xTimeout`, :class:`x0x.Closed`.
        """
        to = _util.id_bytes(agent_id, "agent_id")
        raw = _util.payload(data, "data", _lib.MAX_PAYLOAD, allow_str=True)
        ms = _util.timeout_ms(timeout)
        await self._run("send_direct", lambda h: check(lib.x0x_send_direct(h, to, raw, len(raw), ms)))

    async def wait_for_agent(self, agent_id: str | bytes, timeout: float | None = None) -> None:
        """Waits until some connected peer carries ``agent_id``; raises :class:`x0x.X0xTimeout` otherwise.

        For this agent's own ID it returns at once."""
        aid = _util.id_bytes(agent_id, "agent_id")
        ms = _util.timeout_ms(timeout)
        await self._run("wait_for_agent", lambda h: check(lib.x0x_wait_for_agent(h, aid, ms)))

    async def connected_peers(self) -> list[str]:
        """The peer IDs (hex) with an authenticated connection."""

        def do(h: int) -> list[str]:
            ptr, n = c_void_p(), c_size_t(0)
            check(lib.x0x_connected_peers(h, byref(ptr), byref(n)))
            return _lib.take_ids(ptr.value, n.value)

        return await self._run("connected_peers", do)

    async def peer_agents(self, peer: str | bytes) -> list[str]:
        """The agents (hex IDs) connected peer ``peer`` announced (empty if unknown)."""
        pid = _util.id_bytes(peer, "peer")

        def do(h: int) -> list[str]:
            ptr, n = c_void_p(), c_size_t(0)
            check(lib.x0x_peer_agents(h, pid, byref(ptr), byref(n)))
            return _lib.take_ids(ptr.value, n.value)

        return await self._run("peer_agents", do)

    # ------------------------------------------------------------------ pub/sub

    async def join(
        self,
        name: str,
        *,
        validator: Validator | None = None,
        publish_only: bool = False,
        validation_timeout: float | None = None,
    ) -> Topic:
        """Joins topic ``name`` (1..256 UTF-8 bytes) and returns its :class:`x0x.Topic` handle.

        Handles are independent: a topic can be joined several times, each
        handle with its own subscriptions and validator; the node carries the
        topic while any handle not ``publish_only`` is joined.
        ``publish_only=True`` publishes without joining (this node carries no
        traffic for the topic). ``validator`` is called on the agent's event
        loop with each message new to this node (a :class:`x0x.TopicMessage`)
        and each local publish; it returns ``True`` (or an awaitable of
        ``True``) to accept it. Anything else, an exception, or no verdict
        within ``validation_timeout`` seconds (default 1, at most 10) refuses
        it: it is then neither delivered nor forwarded by this node, and a
        local publish of it raises :class:`x0x.Rejected`. Raises
        :class:`x0x.Closed` and library errors.
        """
        cname = _util.c_string(name, "name", max_len=_lib.MAX_TOPIC, allow_empty=False)
        if validator is not None and not callable(validator):
            raise TypeError(f"validator must be callable, not {type(validator).__name__}")
        if not isinstance(publish_only, bool):
            raise TypeError(f"publish_only must be a bool, not {type(publish_only).__name__}")
        limit = 0
        if validation_timeout is not None:
            limit = _util.timeout_ms(validation_timeout)
            if limit > _lib.MAX_VALIDATION_MS:
                raise ValueError(f"validation_timeout must be at most {_lib.MAX_VALIDATION_MS // 1000} s, got {validation_timeout!r}")
        flags = _lib.TOPIC_PUBLISH_ONLY if publish_only else 0

        def do(h: int) -> int:
            out = c_uint64(0)
            if validator is None:
                check(lib.x0x_topic_join(h, cname, flags, byref(out)))
            else:
                check(lib.x0x_topic_join_validated(h, cname, flags, _lib.ValidatorFunction(), None, limit, byref(out)))
            return int(out.value)

        th = await self._run("join", do)
        topic = Topic(_TOPIC_TOKEN, self, th, name, publish_only, validator)
        with self._lock:
            if not self._closed:
                new = dict(self._topics)
                new[th] = topic
                self._topics = new
                return topic
        lib.x0x_topic_leave(th)  # closed meanwhile (its destroy may have left it already)
        raise Closed("join: the agent is closed")

    async def subscribe(self, topic: str, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> Subscription:
        """Deprecated: use ``(await agent.join(topic)).subscribe()``.

        Subscribes to ``topic`` (1..256 UTF-8 bytes) and returns a stream of
        its messages (through a topic handle of its own, left when the
        subscription ends). Only messages arriving after this returns are
        delivered. The stream keeps up to ``capacity`` unread messages; later
        ones are dropped and counted (``sub.dropped``; no LaggedError). Its
        messages also go to :meth:`events` streams. Raises
        :class:`x0x.Closed` and library errors.
        """
        _util.c_string(topic, "topic", max_len=_lib.MAX_TOPIC, allow_empty=False)
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        t = await self.join(topic)
        try:
            return t._subscribe_owned(capacity)
        except BaseException:
            await t.leave()
            raise

    async def publish(self, topic: str, data: _util.Payload, timeout: float | None = None) -> str:
        """Publishes ``data`` (at most 1 MiB; a str is encoded as UTF-8) on ``topic``, signed by this agent; returns the message ID (hex).

        Returns once the message is handed to the overlay (not delivered).
        Raises :class:`x0x.TooLarge`, :class:`x0x.X0xTimeout`, :class:`x0x.Closed`.
        """
        ctopic = _util.c_string(topic, "topic", max_len=_lib.MAX_TOPIC, allow_empty=False)
        raw = _util.payload(data, "data", _lib.MAX_PUBLISH, allow_str=True)
        ms = _util.timeout_ms(timeout)

        def do(h: int) -> str:
            out = create_string_buffer(_lib.ID_SIZE)
            check(lib.x0x_publish(h, ctopic, raw, len(raw), ms, out))
            return out.raw.hex()

        return await self._run("publish", do)

    def _route(self, handle: int, stream: Stream[Any]) -> None:
        with self._lock:
            if self._closed:
                raise Closed("subscribe: the agent is closed")
            new = dict(self._routes)
            new[handle] = stream
            self._routes = new

    def _unroute(self, handle: int) -> None:
        with self._lock:
            if handle in self._routes:
                new = dict(self._routes)
                del new[handle]
                self._routes = new

    def _forget_topic(self, handle: int) -> None:
        with self._lock:
            if handle in self._topics:
                new = dict(self._topics)
                del new[handle]
                self._topics = new

    # ------------------------------------------------------------------ private groups

    async def publish_key_package(self) -> bytes:
        """Makes this agent invitable into private groups and returns one key package.

        From now on members of groups may fetch single-use key packages from
        it over a direct connection (:meth:`x0x.Group.invite`; at most 4 per
        inviting agent per minute). The returned key package may be handed to
        an inviter by other means (:meth:`x0x.Group.invite_key_package`).
        Raises :class:`x0x.Closed`.
        """

        def do(h: int) -> bytes:
            ptr, n = c_void_p(), c_size_t(0)
            check(lib.x0x_keypackage_publish(h, byref(ptr), byref(n)))
            return _lib.take_bytes(ptr.value, n.value)

        return await self._run("publish_key_package", do)

    async def create_group(self) -> Group:
        """Creates a private group with this agent as its only member; returns its :class:`x0x.Group`.

        Raises :class:`x0x.Closed`.
        """
        from .group import _open

        def do(h: int) -> int:
            out = c_uint64(0)
            check(lib.x0x_group_create(h, byref(out)))
            return int(out.value)

        return await _open(self, "create_group", do)

    async def invitations(self) -> list[GroupInvitation]:
        """The group invitations waiting for an answer (:class:`x0x.GroupInvitation`).

        Each also arrived as an event of :meth:`events` when it came in.
        Raises :class:`x0x.Closed`.
        """
        from .group import parse_invitations

        def do(h: int) -> str:
            ptr = c_void_p()
            check(lib.x0x_invitations(h, byref(ptr)))
            return _lib.take_string(ptr.value)

        return parse_invitations(await self._run("invitations", do))

    async def accept_invitation(self, group_id: str | bytes) -> Group:
        """Accepts the pending invitation to ``group_id`` (hex or 32 bytes): joins the group.

        Returns its :class:`x0x.Group`. Raises :class:`x0x.NotFound` (no such
        invitation pending), :class:`x0x.Corrupt` (the Welcome does not open:
        a forged invitation), :class:`x0x.Closed`.
        """
        from .group import _open

        gid = _util.id_bytes(group_id, "group_id")

        def do(h: int) -> int:
            out = c_uint64(0)
            check(lib.x0x_group_accept(h, gid, byref(out)))
            return int(out.value)

        return await _open(self, "accept_invitation", do)

    async def decline_invitation(self, group_id: str | bytes) -> None:
        """Declines the pending invitation to ``group_id``: the inviter is asked to remove this agent again.

        Raises :class:`x0x.NotFound` (no such invitation pending), :class:`x0x.Closed`.
        """
        gid = _util.id_bytes(group_id, "group_id")
        await self._run("decline_invitation", lambda h: check(lib.x0x_group_decline(h, gid)))

    async def groups(self) -> list[Group]:
        """The groups this agent has open (:class:`x0x.Group`), by ID.

        They include the groups restored from the data directory when the
        agent was created (their :class:`x0x.Group` is made on first use;
        their messages and changes flow from then on); a group closed with
        :meth:`x0x.Group.close`, left or removed is not open. The same
        :class:`x0x.Group` is returned each time. Raises :class:`x0x.Closed`.
        """
        from .group import _group_open, _reopened, parse_group_ids

        def do(h: int) -> list[tuple[int, str]]:
            ptr = c_void_p()
            check(lib.x0x_groups(h, byref(ptr)))
            found: list[tuple[int, str]] = []
            for gid in parse_group_ids(_lib.take_string(ptr.value)):
                try:
                    found.append((_group_open(h, bytes.fromhex(gid)), gid))
                except NotFound:
                    continue  # closed since it was listed
            return found

        out: list[Group] = []
        for handle, gid in await self._run("groups", do):
            g = _reopened(self, "groups", handle, gid)
            if g is not None:
                out.append(g)
        return out

    async def group(self, group_id: str | bytes) -> Group:
        """The open group ``group_id`` (hex or 32 bytes), as :meth:`groups` lists it.

        Raises :class:`x0x.NotFound` (the agent has no such group open: not
        a member, or the group was closed, left or removed),
        :class:`x0x.Closed`.
        """
        from .group import _group_open, _reopened

        gid = _util.id_bytes(group_id, "group_id")
        g = _reopened(self, "group", await self._run("group", lambda h: _group_open(h, gid)), gid.hex())
        if g is None:
            raise NotFound("group: the group was closed")
        return g

    def _register_group(self, group: Group) -> Group | None:
        """Registers a new Group, or returns the one already open with its handle
        (libx0x gives an accepted re-invitation into an open group, and
        x0x_group_open any group the agent has a handle for, that same
        handle); None once the agent is closed, or for the handle of a Group
        closed or removed here."""
        with self._lock:
            if self._closed or group._handle in self._gone_groups:
                return None
            old = self._groups.get(group._handle)
            if old is not None:
                return old
            new = dict(self._groups)
            new[group._handle] = group
            self._groups = new
            return group

    def _forget_group(self, handle: int) -> None:
        with self._lock:
            self._gone_groups.add(handle)
            if handle in self._groups:
                new = dict(self._groups)
                del new[handle]
                self._groups = new

    # ------------------------------------------------------------------ events

    def events(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> EventStream:
        """Returns a new stream of every event of this agent from now on.

        Read it on the agent's event loop with ``async for``; close it with
        ``stream.close()`` or ``async with``. Each call makes an independent
        stream; events arriving while no stream is open are not kept. Raises
        :class:`x0x.Closed` after close.
        """
        stream = EventStream(self._loop, capacity, self)
        with self._lock:
            if self._closed:
                raise Closed("events: the agent is closed")
            self._event_streams = self._event_streams + (stream,)
        return stream

    def _remove_event_stream(self, stream: EventStream) -> None:
        with self._lock:
            self._event_streams = tuple(s for s in self._event_streams if s is not stream)

    def _add_task_stream(self, list_id: str, stream: TaskChanges) -> None:
        with self._lock:
            if self._closed:
                raise Closed("changes: the agent is closed")
            new = dict(self._task_streams)
            new[list_id] = new.get(list_id, ()) + (stream,)
            self._task_streams = new

    def _remove_task_stream(self, list_id: str, stream: TaskChanges) -> None:
        with self._lock:
            rest = tuple(s for s in self._task_streams.get(list_id, ()) if s is not stream)
            new = dict(self._task_streams)
            if rest:
                new[list_id] = rest
            else:
                new.pop(list_id, None)
            self._task_streams = new

    async def debug_inject_events(self, n: int, payload_len: int = 16) -> None:
        """Pushes ``n`` synthetic direct-message events (``payload_len`` bytes of 0xAB) through the event path.

        For benchmarks: unlike real events they wait for room in the
        library's queue instead of being dropped. Returns once all are
        handed to the event path (they are consumed on the agent's loop).
        """
        cnt = _util.uint(n, "n", 0, 0xFFFFFFFF)
        plen = _util.uint(payload_len, "payload_len", 0, _lib.MAX_INJECT_PAYLOAD)
        await self._run("debug_inject_events", lambda h: check(lib.x0x_debug_inject_events(h, cnt, plen)))

    def _on_readable(self) -> None:
        """Loop-thread reader callback: drains one batch and dispatches it."""
        if self._closed:
            self._remove_reader()
            return
        rc = lib.x0x_events_drain(self._handle, self._buf, DRAIN_BATCH, self._nref)
        if rc != 0:
            # The handle is gone (destroyed behind our back): stop watching the fd.
            self._remove_reader()
            return
        count = self._n.value
        if count:
            try:
                self._dispatch(count)
            finally:
                lib.x0x_events_release(self._buf, count)

    def _dispatch(self, count: int) -> None:
        streams = self._event_streams
        routes = self._routes
        tasks = self._task_streams
        groups = self._groups
        string_at = _string_at
        woken: list[Stream[Any]] = []
        # Hot path for the common case of exactly one all-events stream.
        single = streams[0] if len(streams) == 1 else None
        if single is not None:
            sq = single._items
            cap = single._capacity
            append = sq.append
        for rec in _lib.EVENT_STRUCT.iter_unpack(self._view[: count * _REC]):
            kind = rec[0]
            ev: Event
            if kind == 6:
                plen = rec[10]
                ev = DirectMessage(rec[3], rec[4], rec[2], string_at(rec[9], plen) if plen else b"")
            elif kind == 7:
                route = routes.get(rec[15])
                if route is None:
                    continue  # a closed subscription's record
                plen = rec[10]
                topic = string_at(rec[11], -1).decode("utf-8", "replace") if rec[11] else ""
                msg = TopicMessage(topic, rec[3], string_at(rec[9], plen) if plen else b"", rec[12], rec[13], None, rec[14])
                route._push(msg)
                woken.append(route)
                if route._reports_lag:
                    continue  # agent.events() gets messages of the deprecated agent.subscribe only
                ev = msg
            elif kind == 15:
                grp = groups.get(rec[15])
                if grp is not None and grp._msg_streams:
                    plen = rec[10]
                    gmsg = GroupMessage(grp._id, rec[3].hex(), string_at(rec[9], plen) if plen else b"", rec[12])
                    for gs in grp._msg_streams:
                        gs._push(gmsg)
                        woken.append(gs)
                continue
            elif kind == 16:
                grp = groups.get(rec[15])
                change = _GROUP_CHANGES.get(rec[12])
                if grp is not None and change is not None:
                    gev = GroupEvent(change, grp._id, None if rec[3] == _ZERO_ID else rec[3].hex(), rec[13])
                    for ge in grp._evt_streams:
                        ge._push(gev)
                        woken.append(ge)
                    if change is GroupChange.REMOVED:
                        grp._on_removed()
                continue
            elif kind == 10 or kind == 11 or kind == 12:
                route = routes.get(rec[15])
                if route is not None:
                    if kind == 12:
                        route._lag(rec[12])
                    else:
                        topic = string_at(rec[11], -1).decode("utf-8", "replace") if rec[11] else ""
                        route._push(TopicEvent(EventKind(kind), topic, rec[2].hex()))
                    woken.append(route)
                elif kind == 12:
                    grp = groups.get(rec[15])
                    if grp is not None:  # a lag marker of a group's records
                        grp._lag(rec[12])
                        woken.extend(grp._msg_streams)
                        woken.extend(grp._evt_streams)
                continue
            elif kind == 13:
                tp = self._topics.get(rec[15])
                if tp is not None:
                    plen = rec[10]
                    topic = string_at(rec[11], -1).decode("utf-8", "replace") if rec[11] else ""
                    tp._validate(rec[14], TopicMessage(topic, rec[3], string_at(rec[9], plen) if plen else b"", rec[12], rec[13], None, 0))
                continue
            elif kind == 8:
                list_id = string_at(rec[11], -1).decode("ascii", "replace") if rec[11] else ""
                tid = string_at(rec[9], rec[10]).hex() if rec[10] else ""
                tc = TaskChanged(list_id, tid, _TASK_OPS.get(rec[12], rec[12]), rec[3].hex(), bool(rec[13]))
                tsubs = tasks.get(list_id)
                if tsubs:
                    for t in tsubs:
                        t._push(tc)
                        woken.append(t)
                ev = tc
            elif kind == 1:
                ev = PeerConnected(rec[2].hex(), _cstr(rec[5]) or "", _ids(rec[7], rec[8]))
            elif kind == 2:
                ev = PeerDisconnected(rec[2].hex(), rec[1], _cstr(rec[6]))
            elif kind == 3:
                ev = ConnectionFailed(
                    _cstr(rec[5]) or "", None if rec[2] == _ZERO_ID else rec[2].hex(), rec[1], _cstr(rec[6])
                )
            elif kind == 4:
                ev = ExternalAddressDiscovered(_cstr(rec[5]) or "")
            elif kind == 5:
                ev = AgentsChanged(rec[2].hex(), _ids(rec[7], rec[8]))
            elif kind == 9:
                ev = NatTypeDetected(_NAT_TYPES.get(rec[12], "unknown"), _cstr(rec[5]))
            elif kind == 14:
                gid = string_at(rec[11], -1).decode("ascii", "replace") if rec[11] else ""
                ev = GroupInvitation(gid, rec[3].hex(), _ids(rec[7], rec[8]), rec[12])
            else:
                continue  # a kind from a newer ABI minor: skip it
            if single is not None:
                if len(sq) < cap:
                    append(ev)
                else:
                    single._dropped += 1
            else:
                for es in streams:
                    es._push(ev)
        for es in streams:
            if es._items:
                es._wake()
        for w in woken:
            w._wake()

    def _watch_events(self) -> None:
        """Starts reading events (loop thread): loop.add_reader on the events fd, else an _EventWatch thread.

        add_reader is the fast path; loops that lack it (NotImplementedError:
        asyncio's ProactorEventLoop, the default on Windows, where the fd
        is a socket) get a thread that waits on the fd and posts each
        drain to the loop.
        """
        if self._reader or self._watch is not None:
            return
        try:
            self._loop.add_reader(self._fd, self._on_readable)
        except NotImplementedError:
            self._watch = _EventWatch(self._loop, self._fd, self._on_readable, f"{EVENT_THREAD_PREFIX}-{self._agent_id[:16]}")
        else:
            self._reader = True

    def _remove_reader(self) -> None:
        """Stops reading events (the watching thread, if any, has ended when this returns)."""
        if self._reader:
            self._reader = False
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
        watch = self._watch
        if watch is not None:
            self._watch = None
            watch.close()

    # ------------------------------------------------------------------ identity

    async def export_identity(self, passphrase: str | bytes) -> bytes:
        """Seals this agent's key into a passphrase-protected bundle (~0.25 s) for :meth:`x0x.Identity.import_bundle`."""
        pp = _util.passphrase(passphrase)
        if not pp:
            raise ValueError("passphrase must not be empty")

        def do(h: int) -> bytes:
            ptr, n = c_void_p(), c_size_t(0)
            check(lib.x0x_identity_export(h, pp, len(pp), byref(ptr), byref(n)))
            return _lib.take_bytes(ptr.value, n.value)

        return await self._run("export_identity", do)

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Stops the agent: ends every stream, closes connections, saves the peer cache.

        Idempotent and safe to call concurrently (later calls wait for the
        first). Open task lists and groups become unusable (a group's other
        members still count this agent as a member). Raises :class:`x0x.X0xIOError`
        (from the first call only) if saving the peer cache failed; the
        agent is closed anyway.
        """
        with self._lock:
            first = not self._closed
            self._closed = True
        if not first:
            await asyncio.wrap_future(self._close_done)
            return
        try:
            await self._detach_from_loop()
        finally:
            for tl in list(self._lists):
                tl._mark_left()
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, _destroy_blocking, self._handle)
            fut.add_done_callback(lambda _f: self._close_done.set_result(None))
            await asyncio.shield(fut)

    async def _detach_from_loop(self) -> None:
        loop = self._loop
        if _on_loop(loop) or loop.is_closed() or not loop.is_running():
            self._detach_now()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def job() -> None:
            try:
                self._detach_now()
                done.set_result(None)
            except BaseException as exc:  # pragma: no cover - defensive
                done.set_exception(exc)

        loop.call_soon_threadsafe(job)
        try:
            await asyncio.wait_for(asyncio.wrap_future(done), 10.0)
        except asyncio.TimeoutError:  # pragma: no cover - owner loop stuck
            warnings.warn("x0x: the agent's event loop did not respond; closing anyway", RuntimeWarning, stacklevel=3)
            watch = self._watch
            if watch is not None:  # stop watching the fd before x0x_agent_destroy closes it
                watch.close()

    def _detach_now(self) -> None:
        self._remove_reader()
        with self._lock:
            streams: list[Stream[Any]] = list(self._event_streams)
            streams.extend(self._routes.values())
            for ts in self._task_streams.values():
                streams.extend(ts)
            topics = list(self._topics.values())
            groups = list(self._groups.values())
            self._event_streams = ()
            self._routes = {}
            self._topics = {}
            self._task_streams = {}
            self._groups = {}
        for t in topics:
            t._agent_closed()
        live = not self._loop.is_closed()
        for g in groups:
            g._agent_closed(live)
        for s in streams:
            if live:
                s._finish()
            else:
                s._closed = True

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            warnings.warn(f"x0x.Agent {self._agent_id[:16]}… was never closed", ResourceWarning, stacklevel=2)

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._addr
        return f"<x0x.Agent {self._agent_id[:16]}… {state}>"

    # ------------------------------------------------------------------ helpers

    def _live_handle(self, what: str) -> int:
        if self._closed:
            raise Closed(f"{what}: the agent is closed")
        return self._handle

    def _check_live(self, rc: int, what: str) -> None:
        try:
            check(rc)
        except (InvalidHandle, Closed) as exc:
            if self._closed:
                raise Closed(f"{what}: the agent is closed") from exc
            raise

    async def _run(self, what: str, fn: Callable[[int], T]) -> T:
        """Runs fn(handle) in the executor; library errors after close become Closed."""
        h = self._live_handle(what)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, fn, h)
        except (InvalidHandle, Closed) as exc:
            if self._closed:
                raise Closed(f"{what}: the agent is closed") from exc
            raise


_TOKEN = object()


def _cstr(addr: int) -> str | None:
    return ctypes.string_at(addr).decode("utf-8", "replace") if addr else None


def _ids(addr: int, count: int) -> list[str]:
    if not addr or not count:
        return []
    raw = ctypes.string_at(addr, count * _lib.ID_SIZE)
    return [raw[i : i + _lib.ID_SIZE].hex() for i in range(0, len(raw), _lib.ID_SIZE)]


def _create_blocking(
    settings: list[tuple[bytes, bytes]], passphrase: bytes | None, identity: int, ms: int
) -> tuple[int, tuple[bytes, bytes, str, int]]:
    cfg = c_uint64(0)
    check(lib.x0x_config_new(byref(cfg)))
    handle = c_uint64(0)
    try:
        for key, value in settings:
            check(lib.x0x_config_set(cfg, key, value))
        if passphrase:
            check(lib.x0x_config_set_passphrase(cfg, passphrase, len(passphrase)))
        if identity:
            check(lib.x0x_config_set_identity(cfg, identity))
        check(lib.x0x_agent_create(cfg, ms, byref(handle)))
    finally:
        lib.x0x_config_destroy(cfg)
    h = int(handle.value)
    try:
        aid = create_string_buffer(_lib.ID_SIZE)
        mid = create_string_buffer(_lib.ID_SIZE)
        check(lib.x0x_agent_id(h, aid))
        check(lib.x0x_machine_id(h, mid))
        ptr = c_void_p()
        check(lib.x0x_agent_addr(h, byref(ptr)))
        addr = _lib.take_string(ptr.value)
        fd = c_int(-1)
        check(lib.x0x_events_fd(h, byref(fd)))
    except BaseException:
        lib.x0x_agent_destroy(h)
        raise
    return h, (aid.raw, mid.raw, addr, int(fd.value))


def _destroy_blocking(handle: int) -> None:
    rc = lib.x0x_agent_destroy(handle)
    if rc != 0 and rc != InvalidHandle.CODE:
        check(rc)


def _destroy_orphan(fut: asyncio.Future[tuple[int, tuple[bytes, bytes, str, int]]]) -> None:
    """Destroys an agent whose create() was cancelled after the C call started."""
    if fut.cancelled() or fut.exception() is not None:
        return
    handle = fut.result()[0]
    threading.Thread(target=lib.x0x_agent_destroy, args=(handle,), name="x0x-orphan-destroy").start()

