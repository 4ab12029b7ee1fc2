"""Replicated task lists (a CRDT synced among the agents that joined it).

A :class:`TaskList` belongs to one :class:`x0x.Agent`; it becomes unusable
when the agent closes or when the list is left (its calls then raise
:class:`x0x.Closed`, as the Node binding rejects with ``X0X_ERR_CLOSED``).
Task and list IDs are 64 hex digits. Every operation is signed by the
agent; claims and completions are always made for the calling agent.
Strings are bounded as every replica enforces them: a list name or task
title at most 1,024 UTF-8 bytes, a description at most 16 KiB; a longer one
raises :class:`x0x.TooLarge` (also a ValueError).
"""

from __future__ import annotations

import asyncio
import enum
import json
from ctypes import byref, c_uint64, c_void_p, create_string_buffer
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, TypeVar

from . import _lib, _util
from ._lib import check, lib
from .agent import Agent
from .errors import Closed, InvalidHandle, OtherError
from .events import DEFAULT_STREAM_CAPACITY, Stream, TaskChanged

__all__ = ["TaskList", "Task", "TaskState", "TaskListSnapshot", "TaskChanges"]

T = TypeVar("T")


class TaskState(str, enum.Enum):
    """State of a task."""

    EMPTY = "empty"
    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Task:
    """One task of a snapshot (a copy; it does not change with the list).

    ``claimant`` is the winning claimer (state CLAIMED) or the completer
    (DONE), ``claims`` every concurrent claimer, ``assignee`` an agent ID or
    None, ``created_at_ms`` Unix milliseconds.
    """

    id: str
    title: str
    description: str
    state: TaskState
    claimant: str | None
    claims: tuple[str, ...]
    assignee: str | None
    priority: int
    created_by: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class TaskListSnapshot:
    """The whole list at one moment, tasks in list order."""

    id: str
    name: str
    tasks: tuple[Task, ...]
    creator: str | None = None  # the list's creator, None until its creation arrived
    writers: tuple[str, ...] = ()  # agents the creator granted write access
    open: bool = False  # every agent may write


class TaskChanges(Stream[TaskChanged]):
    """Changes (local and remote) of one task list, from :meth:`TaskList.changes`."""

    __slots__ = ("_agent", "_list_id")

    def __init__(self, agent: Agent, list_id: str, capacity: int) -> None:
        super().__init__(agent._loop, capacity)
        self._agent = agent
        self._list_id = list_id

    def _detach(self) -> None:
        self._agent._remove_task_stream(self._list_id, self)

    async def __aenter__(self) -> TaskChanges:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TaskList:
    """A handle to a replicated task list. Create with :meth:`create` or :meth:`join`."""

    def __init__(self, _token: object, agent: Agent, handle: int, list_id: str) -> None:
        if _token is not _TOKEN:
            raise TypeError("use 'await TaskList.create(agent, name)' or 'await TaskList.join(agent, list_id)'")
        self._agent = agent
        self._handle = handle
        self._id = list_id
        self._left = False
        self._streams: list[TaskChanges] = []

    @classmethod
    async def create(cls, agent: Agent, name: str) -> TaskList:
        """Creates a new list named ``name`` (at most 1,024 UTF-8 bytes) owned by ``agent``.

        Raises :class:`x0x.TooLarge` (a longer name), :class:`x0x.Closed`,
        :class:`x0x.X0xIOError` (persistence).
        """
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an x0x.Agent, not {type(agent).__name__}")
        cname = _util.field_string(name, "name", _lib.MAX_TASKLIST_NAME)
        handle, lid = await agent._run("tasklist_create", _open_job(lib.x0x_tasklist_create, cname))
        return cls._register(agent, handle, lid)

    @classmethod
    async def join(cls, agent: Agent, list_id: str | bytes) -> TaskList:
        """Joins list ``list_id`` (from ``other_list.id``), resuming what this agent persisted before.

        Catching up from members happens in the background (watch
        :meth:`changes`). Raises :class:`x0x.Corrupt` (persisted state),
        :class:`x0x.X0xIOError`, :class:`x0x.Closed`.
        """
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an x0x.Agent, not {type(agent).__name__}")
        lid_raw = _util.id_bytes(list_id, "list_id")
        handle, lid = await agent._run("tasklist_join", _open_job(lib.x0x_tasklist_join, lid_raw))
        return cls._register(agent, handle, lid)

    @classmethod
    def _register(cls, agent: Agent, handle: int, lid: str) -> TaskList:
        tl = cls(_TOKEN, agent, handle, lid)
        with agent._lock:
            closed = agent._closed
            if not closed:
                agent._lists.add(tl)
        if closed:  # the agent closed while we were opening: its lists are gone
            tl._left = True
            raise Closed("tasklist: the agent is closed")
        return tl

    @property
    def id(self) -> str:
        """The list ID (64 hex digits); give it to other agents for :meth:`join`."""
        return self._id

    @property
    def agent(self) -> Agent:
        """The agent this list belongs to."""
        return self._agent

    @property
    def left(self) -> bool:
        """True once the list was left (or its agent closed)."""
        return self._left

    async def add_task(self, title: str, description: str = "") -> str:
        """Adds a task at the end of the list; returns its ID (hex).

        ``title`` is at most 1,024 UTF-8 bytes, ``description`` at most 16 KiB;
        a longer one raises :class:`x0x.TooLarge` (also a ValueError).
        """
        ct = _util.field_string(title, "title", _lib.MAX_TASK_TITLE)
        cd = _util.field_string(description, "description", _lib.MAX_TASK_DESCRIPTION)

        def do(h: int) -> str:
            out = create_string_buffer(_lib.ID_SIZE)
            check(lib.x0x_tasklist_add(h, ct, cd, out))
            return out.raw.hex()

        return await self._run("add_task", do)

    async def claim_task(self, task_id: str | bytes) -> None:
        """Claims the task for this agent. Raises :class:`x0x.TaskDone`, :class:`x0x.NotFound`."""
        tid = _util.id_bytes(task_id, "task_id")
        await self._run("claim_task", lambda h: check(lib.x0x_tasklist_claim(h, tid)))

    async def complete_task(self, task_id: str | bytes) -> None:
        """Marks a task this agent claimed as done.

        Raises :class:`x0x.TaskNotClaimed`, :class:`x0x.TaskClaimedByOther`,
        :class:`x0x.TaskDone`, :class:`x0x.NotFound`.
        """
        tid = _util.id_bytes(task_id, "task_id")
        await self._run("complete_task", lambda h: check(lib.x0x_tasklist_complete(h, tid)))

    async def reopen_task(self, task_id: str | bytes) -> None:
        """Reopens a claimed or done task (back to EMPTY). Raises :class:`x0x.NotFound`."""
        tid = _util.id_bytes(task_id, "task_id")
        await self._run("reopen_task", lambda h: check(lib.x0x_tasklist_reopen(h, tid)))

    async def add_writer(self, agent_id: str | bytes) -> None:
        """Lets ``agent_id`` write to the list. Only the list's creator may call it;
        others get :class:`x0x.NotWriter` (as does every write by an agent that
        was not granted access to a list that is not open)."""
        aid = _util.id_bytes(agent_id, "agent_id")
        await self._run("add_writer", lambda h: check(lib.x0x_tasklist_add_writer(h, aid)))

    async def remove_writer(self, agent_id: str | bytes) -> None:
        """Revokes ``agent_id``'s write access (creator only; :class:`x0x.NotWriter`)."""
        aid = _util.id_bytes(agent_id, "agent_id")
        await self._run("remove_writer", lambda h: check(lib.x0x_tasklist_remove_writer(h, aid)))

    async def set_open(self, open_to_all: bool) -> None:
        """Lets every agent write (True) or only the creator and its writers (creator only)."""
        if not isinstance(open_to_all, bool):
            raise TypeError(f"open_to_all must be a bool, got {type(open_to_all).__name__}")
        flag = 1 if open_to_all else 0
        await self._run("set_open", lambda h: check(lib.x0x_tasklist_set_open(h, flag)))

    async def remove_task(self, task_id: str | bytes) -> None:
        """Removes a task (a concurrent edit by another agent keeps it). Raises :class:`x0x.NotFound`."""
        tid = _util.id_bytes(task_id, "task_id")
        await self._run("remove_task", lambda h: check(lib.x0x_tasklist_remove(h, tid)))

    async def move_task(self, task_id: str | bytes, after: str | bytes | None) -> None:
        """Moves a task to just after task ``after``, or to the front when ``after`` is None."""
        tid = _util.id_bytes(task_id, "task_id")
        aft = None if after is None else _util.id_bytes(after, "after")
        await self._run("move_task", lambda h: check(lib.x0x_tasklist_move(h, tid, aft)))

    async def update_task(
        self,
        task_id: str | bytes,
        *,
        title: str | None = None,
        description: str | None = None,
        assignee: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Sets the given fields of a task (None: unchanged); ``assignee=""`` unassigns.

        ``assignee`` is an agent ID (64 hex digits), ``priority`` 0..255;
        ``title`` and ``description`` are bounded as for :meth:`add_task`. Each
        field is a separate signed operation, applied in the order title,
        description, assignee, priority (not atomically: if one fails, the
        earlier ones stay applied). Raises :class:`x0x.NotFound`.
        """
        tid = _util.id_bytes(task_id, "task_id")
        fields: list[tuple[bytes, bytes]] = []
        if title is not None:
            fields.append((b"title", _util.field_string(title, "title", _lib.MAX_TASK_TITLE)))
        if description is not None:
            fields.append((b"description", _util.field_string(description, "description", _lib.MAX_TASK_DESCRIPTION)))
        if assignee is not None:
            if assignee == "":
                fields.append((b"assignee", b""))
            else:
                fields.append((b"assignee", _util.id_bytes(assignee, "assignee").hex().encode()))
        if priority is not None:
            fields.append((b"priority", str(_util.uint(priority, "priority", 0, 255)).encode()))
        if not fields:
            raise ValueError("update_task needs at least one of title, description, assignee, priority")

        def do(h: int) -> None:
            for name, value in fields:
                check(lib.x0x_tasklist_update(h, tid, name, value))

        await self._run("update_task", do)

    async def snapshot(self) -> TaskListSnapshot:
        """The whole list (name and tasks in list order) as typed dataclasses."""

        def do(h: int) -> str:
            ptr = c_void_p()
            check(lib.x0x_tasklist_snapshot(h, byref(ptr)))
            return _lib.take_string(ptr.value)

        return parse_snapshot(await self._run("snapshot", do))

    async def list_tasks(self) -> list[Task]:
        """The tasks in list order (see :meth:`snapshot`)."""
        return list((await self.snapshot()).tasks)

    def changes(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> TaskChanges:
        """A new stream of this list's changes (local and remote) from now on.

        Read it on the agent's event loop; it ends when closed, when the
        list is left or when the agent closes.
        """
        if self._left:
            raise Closed("changes: the task list was left")
        stream = TaskChanges(self._agent, self._id, capacity)
        self._agent._add_task_stream(self._id, stream)
        self._streams.append(stream)
        return stream

    async def leave(self) -> None:
        """Stops syncing the list (idempotent); its persisted state stays for a later :meth:`join`.

        Every other TaskList object of the same list on this agent is left
        too (the library invalidates all its handles).
        """
        if self._left:
            return
        agent = self._agent
        siblings = [tl for tl in list(agent._lists) if tl._id == self._id]
        for tl in siblings:
            tl._left = True
        try:
            if not agent._closed:
                await asyncio.get_running_loop().run_in_executor(None, _leave_blocking, self._handle)
        finally:
            for tl in siblings:
                tl._mark_left()

    def _mark_left(self) -> None:
        self._left = True
        with self._agent._lock:
            self._agent._lists.discard(self)
        for s in self._streams:
            s._detach()
            s._end()
        self._streams.clear()

    async def _run(self, what: str, fn: Callable[[int], T]) -> T:
        if self._left:
            raise Closed(f"{what}: the task list was left")
        if self._agent._closed:
            raise Closed(f"{what}: the agent is closed")
        h = self._handle
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, h)
        except (InvalidHandle, Closed) as exc:
            raise Closed(f"{what}: the task list was left or its agent closed ({exc.message})") from exc

    async def __aenter__(self) -> TaskList:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.leave()

    def __repr__(self) -> str:
        return f"<x0x.TaskList {self._id[:16]}…{' left' if self._left else ''}>"


_TOKEN = object()


def _finish_open(handle: int) -> tuple[int, str]:
    """Reads a new list handle's ID (leaving the list if that fails)."""
    return _lib.opened(handle, lib.x0x_tasklist_id, lib.x0x_tasklist_leave)


def _open_job(fn: Callable[[int, bytes, Any], int], arg: bytes) -> Callable[[int], tuple[int, str]]:
    """The executor job of a call opening a list, ``fn(handle, arg, &out)``
    (create or join, by an agent or a group): returns the new list handle and its ID."""

    def do(h: int) -> tuple[int, str]:
        out = c_uint64(0)
        check(fn(h, arg, byref(out)))
        return _finish_open(int(out.value))

    return do


def _leave_blocking(handle: int) -> None:
    rc = lib.x0x_tasklist_leave(handle)
    if rc != 0 and rc != InvalidHandle.CODE:
        check(rc)


def _opt_hex(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OtherError(f"x0x_tasklist_snapshot: {what} is not a string or null")
    return value


def parse_snapshot(text: str) -> TaskListSnapshot:
    """Parses the JSON of ``x0x_tasklist_snapshot``; raises :class:`x0x.OtherError` if it is malformed."""
    try:
        doc = json.loads(text)
        tasks = tuple(
            Task(
                id=str(t["id"]),
                title=str(t["title"]),
                description=str(t.get("description", "")),
                state=TaskState(t["state"]),
                claimant=_opt_hex(t.get("claimant"), "claimant"),
                claims=tuple(str(c) for c in (t.get("claims") or ())),
                assignee=_opt_hex(t.get("assignee"), "assignee"),
                priority=int(t.get("priority", 0)),
                created_by=str(t.get("created_by", "")),
                created_at_ms=int(t.get("created_at_ms", 0)),
            )
            for t in doc["tasks"] or ()
        )
        return TaskListSnapshot(
            id=str(doc["id"]),
            name=str(doc["name"]),
            tasks=tasks,
            creator=_opt_hex(doc.get("creator"), "creator"),
            writers=tuple(str(w) for w in (doc.get("writers") or ())),
            open=bool(doc.get("open", False)),
        )
    except OtherError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OtherError(f"x0x_tasklist_snapshot returned a malformed snapshot: {exc!r}") from exc
