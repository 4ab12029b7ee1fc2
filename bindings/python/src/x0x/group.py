"""Private groups: MLS (RFC 9420) groups with x0x's post-quantum suite.

Only a group's members read its messages, task lists and presence; a
removed member reads nothing sent after its removal, and
:meth:`Group.update` heals the group from a leak of this agent's earlier
keys. An agent becomes invitable with ``await agent.publish_key_package()``;
a member invites it with ``await group.invite(agent_id)``; the invitation
arrives as an :class:`x0x.GroupInvitation` in ``agent.events()`` (and in
``await agent.invitations()``) and is answered with
``await agent.accept_invitation(group_id)`` (which returns the
:class:`Group`) or ``await agent.decline_invitation(group_id)``.

A group's state is kept, sealed, in the agent's data directory (saved at
every epoch change and when the group or the agent closes): an agent created
again from the same ``data_dir`` has every such group open at once, and
``await agent.groups()`` and ``await agent.group(group_id)`` give their
:class:`Group` objects. :meth:`Group.close` stops the group until then;
leaving it or a removal forgets it.

A :class:`Group` delivers through the agent's event loop like every other
stream of :mod:`x0x.events`: :meth:`Group.messages` (the other members'
:class:`x0x.GroupMessage`) and :meth:`Group.events` (:class:`x0x.GroupEvent`),
each bounded and reporting losses with :class:`x0x.LaggedError`. libx0x tags
each record with the group's handle, so records are routed without string
compares.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from ctypes import byref, c_uint64, c_void_p
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import _lib, _util
from ._lib import check, lib
from .errors import Closed, InvalidHandle, OtherError, X0xError
from .events import DEFAULT_STREAM_CAPACITY, GroupEvent, GroupInvitation, GroupMessage, Stream
from .tasklist import TaskList, _open_job

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["Group", "GroupInfo", "GroupMessages", "GroupEvents", "parse_invitations", "parse_info", "parse_group_ids"]

T = TypeVar("T")
_S = TypeVar("_S", bound="_GroupStream[Any]")


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group at one moment (from :meth:`Group.info`).

    ``members`` are the current members (hex, sorted), ``online`` the members
    that announced their presence in the last 15 minutes (and this agent),
    ``closed`` is True once this agent left the group or was removed.
    """

    id: str
    epoch: int
    members: tuple[str, ...]
    online: tuple[str, ...]
    closed: bool


class _GroupStream(Stream[T]):
    """A stream of one group (messages or changes), fed by the agent's dispatcher.

    An async context manager closing itself.
    """

    __slots__ = ("_group", "_group_id")
    _reports_lag = True

    def __init__(self, group: Group, capacity: int) -> None:
        super().__init__(group._agent._loop, capacity)
        self._group: Group | None = group
        self._group_id = group._id

    @property
    def group(self) -> str:
        """The group's ID (hex)."""
        return self._group_id

    def _detach(self) -> None:
        g, self._group = self._group, None
        if g is not None:
            g._remove_stream(self)

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<x0x.{type(self).__name__} {self._group_id[:16]}… queued={self.qsize()} dropped={self._dropped}>"


class GroupMessages(_GroupStream[GroupMessage]):
    """The other members' messages to a group (:class:`x0x.GroupMessage`), from :meth:`Group.messages`.

    Read it on the agent's event loop with ``async for msg in stream`` or
    ``await stream.get()``. When messages were lost because the reader fell
    behind, the reader gets one :class:`x0x.LaggedError` (``.missed``) where
    they were lost; an ``async for`` loop ends with it, and another one reads
    on. It ends when closed (:meth:`close`, ``async with``), when the group
    is closed, when this agent is removed from it, or when the agent closes;
    queued messages stay readable.
    """

    __slots__ = ()


class GroupEvents(_GroupStream[GroupEvent]):
    """Changes of a group (:class:`x0x.GroupEvent`), from :meth:`Group.events`.

    Read and ended like :class:`GroupMessages`. After a ``"removed"`` event
    the stream ends.
    """

    __slots__ = ()


class Group:
    """A private group this agent is a member of.

    Get one from :meth:`x0x.Agent.create_group` or
    :meth:`x0x.Agent.accept_invitation`, or for a group restored from the
    data directory from :meth:`x0x.Agent.groups` or :meth:`x0x.Agent.group`;
    stop this agent's replica with ``await group.close()`` or ``async with``
    (that does not remove the agent from the group for the others:
    :meth:`leave` does). Its coroutines
    may be awaited from any loop or thread; its streams are read on the
    agent's event loop. After :meth:`close` (or the agent's close) its calls
    raise :class:`x0x.Closed`; after this agent left or was removed (a
    ``"removed"`` event) every call but :meth:`info` and :meth:`close`
    raises :class:`x0x.Closed` too.
    """

    def __init__(self, _token: object, agent: Agent, handle: int, group_id: str) -> None:
        if _token is not _TOKEN:
            raise TypeError("use 'await agent.create_group()' or 'await agent.accept_invitation(group_id)'")
        self._agent = agent
        self._handle = handle
        self._id = group_id
        self._closed = False  # close() called, or the agent closed: the handle is gone
        self._removed = False  # this agent left or was removed (X0X_GROUP_REMOVED)
        # Copy-on-write, guarded by the agent's lock, read without it by the dispatcher.
        self._msg_streams: tuple[GroupMessages, ...] = ()
        self._evt_streams: tuple[GroupEvents, ...] = ()
        self._lists: weakref.WeakSet[TaskList] = weakref.WeakSet()
        self._list_handles: list[int] = []

    # ------------------------------------------------------------------ properties

    @property
    def id(self) -> str:
        """The group's ID (64 hex digits); invitations name it."""
        return self._id

    @property
    def agent(self) -> Agent:
        """The agent this group belongs to."""
        return self._agent

    @property
    def closed(self) -> bool:
        """True once the group was closed, this agent left it or was removed, or the agent closed."""
        return self._closed or self._removed or self._agent._closed

    @property
    def removed(self) -> bool:
        """True once this agent left the group or was removed from it (a ``"removed"`` event arrived)."""
        return self._removed

    # ------------------------------------------------------------------ calls

    async def info(self) -> GroupInfo:
        """The group's epoch, members and online members (works after a removal too)."""

        def do(h: int) -> str:
            ptr = c_void_p()
            check(lib.x0x_group_info(h, byref(ptr)))
            return _lib.take_string(ptr.value)

        return parse_info(await self._run("info", do))

    async def publish(self, data: _util.Payload) -> None:
        """Encrypts ``data`` (at most 960 KiB; a str is encoded as UTF-8) for the members and publishes it.

        The other members receive it as a :class:`x0x.GroupMessage` (this
        agent's own :meth:`messages` streams do not). Raises
        :class:`x0x.Closed` (closed, left or removed), :class:`x0x.TooLarge`
        (also a ValueError).
        """
        raw = _util.payload(data, "data", _lib.MAX_GROUP_MESSAGE, allow_str=True)
        await self._run("publish", lambda h: check(lib.x0x_group_publish(h, raw, len(raw))))

    def messages(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> GroupMessages:
        """Opens a :class:`GroupMessages` stream of the other members' messages from now on.

        ``capacity`` bounds the unread messages it keeps (losses beyond it
        are reported with :class:`x0x.LaggedError`). Raises :class:`x0x.Closed`.
        """
        s = GroupMessages(self, capacity)
        with self._agent._lock:
            self._check_open("messages")
            self._msg_streams = self._msg_streams + (s,)
        return s

    def events(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> GroupEvents:
        """Opens a :class:`GroupEvents` stream of the group's changes from now on.

        Raises :class:`x0x.Closed`.
        """
        s = GroupEvents(self, capacity)
        with self._agent._lock:
            self._check_open("events")
            self._evt_streams = self._evt_streams + (s,)
        return s

    async def invite(self, agent_id: str | bytes, timeout: float | None = None) -> None:
        """Invites agent ``agent_id`` (hex or 32 bytes), which a connected peer must carry.

        Fetches its key package over the direct connection (the agent must
        have called :meth:`x0x.Agent.publish_key_package`), commits the
        addition and sends it the Welcome; the agent then accepts or declines.
        ``timeout`` in seconds (None: 30 s). Raises :class:`x0x.AlreadyMember`,
        :class:`x0x.NoRoute`, :class:`x0x.Refused` (it does not accept
        invitations, or is over its rate), :class:`x0x.Corrupt` (an invalid
        key package), :class:`x0x.X0xTimeout`, :class:`x0x.Closed`.
        """
        aid = _util.id_bytes(agent_id, "agent_id")
        ms = _util.timeout_ms(timeout)
        await self._run("invite", lambda h: check(lib.x0x_group_invite(h, aid, ms)))

    async def invite_key_package(self, key_package: _util.BytesLike, timeout: float | None = None) -> None:
        """Invites the agent whose key package (from its :meth:`x0x.Agent.publish_key_package`,
        handed over by other means) is ``key_package``, sending it the Welcome over
        a direct connection. Raises as :meth:`invite`."""
        kp = _util.payload(key_package, "key_package", _lib.MAX_PAYLOAD)
        if not kp:
            raise ValueError("key_package must not be empty")
        ms = _util.timeout_ms(timeout)
        await self._run("invite_key_package", lambda h: check(lib.x0x_group_invite_keypackage(h, kp, len(kp), ms)))

    async def remove(self, agent_id: str | bytes) -> None:
        """Removes member ``agent_id``; it gets a ``"removed"`` event and reads nothing sent after.

        Raises :class:`x0x.NotMember` (also for this agent itself: use
        :meth:`leave`), :class:`x0x.Closed`.
        """
        aid = _util.id_bytes(agent_id, "agent_id")
        await self._run("remove", lambda h: check(lib.x0x_group_remove(h, aid)))

    async def update(self) -> None:
        """Replaces this agent's keys in the group (a commit, a new epoch). Raises :class:`x0x.Closed`."""
        await self._run("update", lambda h: check(lib.x0x_group_update(h)))

    async def leave(self) -> None:
        """Asks the other members to remove this agent; a ``"removed"`` event follows when they have.

        Raises :class:`x0x.NotMember` (this agent is the only member: :meth:`close`
        the group instead), :class:`x0x.Closed`.
        """
        await self._run("leave", lambda h: check(lib.x0x_group_leave(h)))

    async def create_task_list(self, name: str) -> TaskList:
        """Creates a task list that belongs to the group and returns its :class:`x0x.TaskList`.

        Its operations travel sealed under the group's epoch keys, and only
        the group's members (now or before) may write to it. Other members
        open it with :meth:`join_task_list`. It is left when the group closes.
        ``name`` is at most 1,024 UTF-8 bytes. Raises :class:`x0x.TooLarge`
        (a longer name), :class:`x0x.Closed`, :class:`x0x.X0xIOError`.
        """
        cname = _util.field_string(name, "name", _lib.MAX_TASKLIST_NAME)
        return self._adopt(*await self._run("create_task_list", _open_job(lib.x0x_group_tasklist_create, cname)))

    async def join_task_list(self, list_id: str | bytes) -> TaskList:
        """Joins task list ``list_id`` (hex or 32 bytes) of the group; catching up happens in the background.

        Raises :class:`x0x.InvalidArgument` (the agent has the list open
        outside the group), :class:`x0x.Corrupt`, :class:`x0x.Closed`.
        """
        lid = _util.id_bytes(list_id, "list_id")
        return self._adopt(*await self._run("join_task_list", _open_job(lib.x0x_group_tasklist_join, lid)))

    def _adopt(self, handle: int, lid: str) -> TaskList:
        tl = TaskList._register(self._agent, handle, lid)
        with self._agent._lock:
            closed = self._closed
            if not closed:
                self._lists.add(tl)
                self._list_handles.append(handle)
        if closed:  # the group closed while the list was being opened
            tl._mark_left()
            lib.x0x_tasklist_leave(handle)
            raise Closed("task list: the group was closed")
        return tl

    async def close(self) -> None:
        """Stops this agent's replica of the group for now (idempotent).

        Its streams end (queued items stay readable), its task lists are
        left and its secrets in memory zeroed. This agent stays a member for
        the others (see :meth:`leave`), and the group's state stays in the
        data directory: an agent created again from it has the group open
        (:meth:`x0x.Agent.groups`); a removal forgets it.
        """
        agent = self._agent
        with agent._lock:
            if self._closed:
                return
            self._closed = True
            streams = self._take_streams()
            handles, self._list_handles = self._list_handles, []
        self._end_replica(streams)
        if not agent._closed:
            await asyncio.get_running_loop().run_in_executor(None, _close_blocking, self._handle, handles)

    # ------------------------------------------------------------------ dispatcher side (loop thread)

    def _on_removed(self) -> None:
        """The REMOVED record arrived (after it was queued): end the streams and the group's lists."""
        with self._agent._lock:
            self._removed = True
            streams = self._take_streams()
        self._end_replica(streams)

    def _lag(self, missed: int) -> None:
        streams: list[Stream[Any]] = [*self._msg_streams, *self._evt_streams]
        for s in streams:
            s._lag(missed)

    def _agent_closed(self, live: bool) -> None:
        """The agent closed (its destroy invalidates the handle)."""
        with self._agent._lock:
            self._closed = True
            streams = self._take_streams()
            self._list_handles = []
        for s in streams:
            if isinstance(s, _GroupStream):
                s._group = None
            if live:
                s._finish()
            else:
                s._closed = True

    def _remove_stream(self, stream: _GroupStream[Any]) -> None:
        with self._agent._lock:
            self._msg_streams = tuple(s for s in self._msg_streams if s is not stream)
            self._evt_streams = tuple(s for s in self._evt_streams if s is not stream)

    # ------------------------------------------------------------------ helpers

    def _take_streams(self) -> list[Stream[Any]]:
        """Empties the group's stream lists and returns their streams (under the agent's lock)."""
        streams: list[Stream[Any]] = [*self._msg_streams, *self._evt_streams]
        self._msg_streams = ()
        self._evt_streams = ()
        return streams

    def _end_replica(self, streams: list[Stream[Any]]) -> None:
        """Ends the group's replica after close or removal: forgets it, ends the streams
        taken from it and marks its task lists left (the library left them: they cannot
        be read without the group's keys)."""
        self._agent._forget_group(self._handle)
        _end_streams(streams)
        for tl in list(self._lists):
            tl._mark_left()

    def _check_open(self, what: str) -> None:
        if self._agent._closed:
            raise Closed(f"{what}: the agent is closed")
        if self._closed:
            raise Closed(f"{what}: the group was closed")
        if self._removed:
            raise Closed(f"{what}: this agent left the group or was removed from it")

    async def _run(self, what: str, fn: Callable[[int], T]) -> T:
        """Runs fn(handle) in the executor; library errors after close become Closed."""
        if self._agent._closed:
            raise Closed(f"{what}: the agent is closed")
        if self._closed:
            raise Closed(f"{what}: the group was closed")
        h = self._handle
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, h)
        except (InvalidHandle, Closed) as exc:
            if self._agent._closed:
                raise Closed(f"{what}: the agent is closed") from exc
            if self._closed:
                raise Closed(f"{what}: the group was closed") from exc
            raise

    async def __aenter__(self) -> Group:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed or self._agent._closed else ("removed" if self._removed else "open")
        return f"<x0x.Group {self._id[:16]}… {state}>"


_TOKEN = object()


def _end_streams(streams: list[Stream[Any]]) -> None:
    for s in streams:
        if isinstance(s, _GroupStream):
            s._group = None
        s._end()


def _close_blocking(handle: int, list_handles: list[int]) -> None:
    for lh in list_handles:  # release the group's list handles (the group's close leaves the lists)
        lib.x0x_tasklist_leave(lh)
    rc = lib.x0x_group_close(handle)
    if rc != 0 and rc != InvalidHandle.CODE:
        check(rc)


def _group_opened(handle: int) -> tuple[int, str]:
    """Reads a new group handle's ID (closing the handle if that fails)."""
    return _lib.opened(handle, lib.x0x_group_id, lib.x0x_group_close)


def _group_open(h: int, gid: bytes) -> int:
    """x0x_group_open: the handle of agent h's open group gid (the one it has, if any)."""
    out = c_uint64(0)
    check(lib.x0x_group_open(h, gid, byref(out)))
    return int(out.value)


def _close_orphan(agent: Agent) -> Callable[[asyncio.Future[tuple[int, str]]], None]:
    """A done callback closing a group whose opening coroutine was cancelled after the C call started."""

    def done(fut: asyncio.Future[tuple[int, str]]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        handle = fut.result()[0]
        if handle in agent._groups:
            return  # an accepted re-invitation into a group open here: the handle is in use
        threading.Thread(target=lib.x0x_group_close, args=(handle,), name="x0x-orphan-group-close").start()

    return done


async def _open(agent: Agent, what: str, fn: Callable[[int], int]) -> Group:
    """Runs fn(agent handle) -> group handle in the executor and registers the new Group."""
    h = agent._live_handle(what)
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, lambda: _group_opened(fn(h)))
    try:
        handle, gid = await asyncio.shield(fut)
    except asyncio.CancelledError:
        fut.add_done_callback(_close_orphan(agent))
        raise
    except (InvalidHandle, Closed) as exc:
        if agent._closed:
            raise Closed(f"{what}: the agent is closed") from exc
        raise
    g = agent._register_group(Group(_TOKEN, agent, handle, gid))
    if g is None:
        lib.x0x_group_close(handle)  # closed meanwhile (its destroy may have closed it already)
        raise Closed(f"{what}: the agent is closed")
    return g


def _reopened(agent: Agent, what: str, handle: int, gid: str) -> Group | None:
    """The Group of an open group's handle from x0x_group_open: the one registered
    (libx0x gives the handle the agent has) or a new one. None if a Group of that
    handle was closed or removed here (x0x_group_open may give it while libx0x is
    still closing the group). Raises :class:`x0x.Closed` once the agent is closed."""
    g = agent._register_group(Group(_TOKEN, agent, handle, gid))
    if g is None and agent._closed:
        raise Closed(f"{what}: the agent is closed")
    return g


def _str_list(value: Any, what: str, fn: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OtherError(f"{fn}: {what} is not a list of strings")
    return list(value)


def _int(value: Any, what: str, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OtherError(f"{fn}: {what} is not an integer")
    return value


def _parse(text: str, fn: str, build: Callable[[Any], T]) -> T:
    """Returns ``build(json.loads(text))`` for the JSON of C function ``fn``;
    raises :class:`x0x.OtherError` if it is malformed."""
    try:
        return build(json.loads(text))
    except X0xError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise OtherError(f"{fn} returned malformed JSON: {exc!r}") from exc


def parse_info(text: str) -> GroupInfo:
    """Parses the JSON of ``x0x_group_info``; raises :class:`x0x.OtherError` if it is malformed."""
    fn = "x0x_group_info"

    def build(doc: Any) -> GroupInfo:
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise OtherError(f"{fn}: not an object with an id")
        return GroupInfo(
            id=doc["id"],
            epoch=_int(doc.get("epoch", 0), "epoch", fn),
            members=tuple(_str_list(doc.get("members"), "members", fn)),
            online=tuple(_str_list(doc.get("online"), "online", fn)),
            closed=bool(doc.get("closed", False)),
        )

    return _parse(text, fn, build)


def parse_group_ids(text: str) -> list[str]:
    """Parses the JSON of ``x0x_groups``; raises :class:`x0x.OtherError` if it is malformed."""
    fn = "x0x_groups"

    def build(doc: Any) -> list[str]:
        if doc is not None and not isinstance(doc, list):
            raise OtherError(f"{fn}: not a JSON array")
        return _str_list(doc, "the list", fn)

    return _parse(text, fn, build)


def parse_invitations(text: str) -> list[GroupInvitation]:
    """Parses the JSON of ``x0x_invitations``; raises :class:`x0x.OtherError` if it is malformed."""
    fn = "x0x_invitations"

    def build(doc: Any) -> list[GroupInvitation]:
        if doc is None:
            return []
        if not isinstance(doc, list):
            raise OtherError(f"{fn}: not a JSON array")
        out: list[GroupInvitation] = []
        for inv in doc:
            if not isinstance(inv, dict) or not isinstance(inv.get("group"), str) or not isinstance(inv.get("from"), str):
                raise OtherError(f"{fn}: an invitation without group or from")
            out.append(
                GroupInvitation(
                    group=inv["group"],
                    from_agent=inv["from"],
                    members=_str_list(inv.get("members"), "members", fn),
                    epoch=_int(inv.get("epoch", 0), "epoch", fn),
                )
            )
        return out

    return _parse(text, fn, build)
