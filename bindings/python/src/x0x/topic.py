"""Topics: handles on joined topics, their subscriptions and neighbour events.

``topic = await agent.join(name)`` returns a :class:`Topic`; a topic can be
joined several times, each handle with its own subscriptions and validator.
``topic.subscribe()`` opens a :class:`Subscription` of its messages and
``topic.events()`` a :class:`TopicEvents` stream of its neighbour changes;
both deliver through the agent's event loop (the one mechanism of
:mod:`x0x.events`) and report lost items with :class:`x0x.LaggedError`.

Validators run on the agent's event loop: libx0x sends each message to be
checked as a request through the agent's events and waits (at most the
topic's ``validation_timeout``) for the verdict this module reports back. A
direct call from the network path into Python would stall the overlay
behind the interpreter, so there is none.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from ctypes import byref, c_size_t, c_uint64, c_void_p, create_string_buffer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, TypeVar, Union

from . import _lib, _util
from ._lib import check, lib
from .errors import Closed, InvalidArgument, InvalidHandle
from .events import DEFAULT_STREAM_CAPACITY, Stream, TopicEvent, TopicMessage

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["Topic", "Subscription", "TopicEvents", "Validator"]

T = TypeVar("T")

#: A validator: returns True (or an awaitable of True) to accept a message;
#: anything else, an exception, or no verdict within the topic's
#: ``validation_timeout`` refuses it.
Validator = Callable[[TopicMessage], Union[bool, Awaitable[bool]]]


class _TopicStream(Stream[T]):
    """A stream of a topic handle (a subscription handle of the library)."""

    __slots__ = ("_agent", "_topic", "_handle", "_parent")
    _reports_lag = True

    def __init__(self, agent: Agent, parent: Topic, capacity: int) -> None:
        super().__init__(agent._loop, capacity)
        self._agent = agent
        self._topic = parent._name
        self._handle = 0
        self._parent: Topic | None = parent

    @property
    def topic(self) -> str:
        """The topic's name."""
        return self._topic

    def close(self) -> None:
        """Ends the stream (idempotent); queued items stay readable."""
        if self._closed:
            return
        self._agent._unroute(self._handle)
        parent, self._parent = self._parent, None
        try:
            if parent is not None:
                parent._streams.discard(self)
                if not self._agent._closed and not parent._left:
                    if parent._owned_by is self:
                        parent._leave_now()
                    else:
                        lib.x0x_subscription_close(self._handle)
        finally:
            self._end()


class Subscription(_TopicStream[TopicMessage]):
    """The messages of a topic, from :meth:`Topic.subscribe`.

    Read it on the agent's event loop with ``async for msg in sub`` or
    ``await sub.get()``. When messages were lost because the reader fell
    behind, the reader gets one :class:`x0x.LaggedError` (``.missed``) where
    they were lost; an ``async for`` loop ends with it, and another one
    reads on. End it with :meth:`close` (or ``await sub.unsubscribe()``, or
    ``async with``); leaving the topic or closing the agent ends it too.
    Queued messages stay readable after it ended.
    """

    __slots__ = ()

    async def unsubscribe(self) -> None:
        """Same as :meth:`close` (for ``await``-style code)."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<x0x.Subscription topic={self._topic!r} queued={self.qsize()} dropped={self._dropped}>"


class _LegacySubscription(Subscription):
    """A subscription of the deprecated :meth:`x0x.Agent.subscribe` (it owns its topic handle).

    Losses are only counted (``dropped``, ``agent.events_dropped``), as
    before topic handles.
    """

    __slots__ = ()
    _reports_lag = False


class TopicEvents(_TopicStream[TopicEvent]):
    """Changes of this node's neighbours on a topic (:class:`x0x.TopicEvent`), from :meth:`Topic.events`.

    Read and ended like a :class:`Subscription` (it reports losses with
    :class:`x0x.LaggedError` too).
    """

    __slots__ = ()

    async def __aenter__(self) -> TopicEvents:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Topic:
    """A topic joined with :meth:`x0x.Agent.join`; leave it with ``await topic.leave()`` or ``async with``.

    Its methods may be called from any thread; streams it opens are read on
    the agent's event loop. After :meth:`leave` they raise
    :class:`x0x.InvalidHandle`, after the agent closed :class:`x0x.Closed`.
    """

    def __init__(
        self,
        _token: object,
        agent: Agent,
        handle: int,
        name: str,
        publish_only: bool,
        validator: Validator | None,
    ) -> None:
        if _token is not _TOKEN:
            raise TypeError("use 'await agent.join(name)' to join a topic")
        self._agent = agent
        self._handle = handle
        self._name = name
        self._publish_only = publish_only
        self._validator = validator
        self._left = False
        self._streams: set[_TopicStream[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._owned_by: _TopicStream[Any] | None = None  # the deprecated agent.subscribe stream that owns it

    @property
    def name(self) -> str:
        """The topic's name."""
        return self._name

    @property
    def agent(self) -> Agent:
        """The agent that joined it."""
        return self._agent

    @property
    def publish_only(self) -> bool:
        """True if joined with ``publish_only=True``."""
        return self._publish_only

    @property
    def left(self) -> bool:
        """True once left (or its agent closed)."""
        return self._left or self._agent._closed

    def _h(self, what: str) -> int:
        if self._agent._closed:
            raise Closed(f"{what}: the agent is closed")
        if self._left:
            raise InvalidHandle(f"{what}: the topic {self._name!r} was left")
        return self._handle

    async def publish(self, data: _util.Payload) -> str:
        """Signs ``data`` (at most 1 MiB; a str is encoded as UTF-8) and publishes it on the topic; returns the message ID (hex).

        This agent's own subscriptions get it too. Returns once the message
        is handed to the overlay, after the topic's validators accepted it.
        Raises :class:`x0x.Rejected` (a validator refused it),
        :class:`x0x.TooLarge`, :class:`x0x.Closed`, :class:`x0x.InvalidHandle` (left).
        """
        raw = _util.payload(data, "data", _lib.MAX_PUBLISH, allow_str=True)
        h = self._h("publish")

        def do() -> str:
            out = create_string_buffer(_lib.ID_SIZE)
            self._check(lib.x0x_topic_publish(h, raw, len(raw), out), "publish")
            return out.raw.hex()

        return await asyncio.get_running_loop().run_in_executor(None, do)

    def subscribe(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> Subscription:
        """Opens a :class:`Subscription` to the topic's messages from now on.

        ``capacity`` bounds the unread messages it keeps. Raises
        :class:`x0x.InvalidArgument` on a publish-only handle.
        """
        h = self._h("subscribe")
        if self._publish_only:
            raise InvalidArgument(f"subscribe: the topic {self._name!r} was joined publish_only")
        s = Subscription(self._agent, self, capacity)
        self._open(lib.x0x_topic_subscribe, h, s, "subscribe")
        return s

    def events(self, *, capacity: int = DEFAULT_STREAM_CAPACITY) -> TopicEvents:
        """Opens a :class:`TopicEvents` stream of this node's neighbour changes on the topic from now on."""
        h = self._h("events")
        s = TopicEvents(self._agent, self, capacity)
        self._open(lib.x0x_topic_events, h, s, "events")
        return s

    def _subscribe_owned(self, capacity: int) -> Subscription:
        """A subscription that leaves this topic when it ends (the deprecated agent.subscribe)."""
        s = _LegacySubscription(self._agent, self, capacity)
        self._open(lib.x0x_topic_subscribe, self._h("subscribe"), s, "subscribe")
        self._owned_by = s
        return s

    def _open(self, fn: Callable[..., int], h: int, stream: _TopicStream[Any], what: str) -> None:
        out = c_uint64(0)
        self._check(fn(h, byref(out)), what)
        stream._handle = int(out.value)
        try:
            self._agent._route(stream._handle, stream)
        except BaseException:
            lib.x0x_subscription_close(stream._handle)
            raise
        self._streams.add(stream)

    def neighbours(self) -> list[str]:
        """This node's neighbours on the topic (machine IDs, hex), sorted."""
        h = self._h("neighbours")
        ptr, n = c_void_p(), c_size_t(0)
        self._check(lib.x0x_topic_neighbours(h, byref(ptr), byref(n)), "neighbours")
        return _lib.take_ids(ptr.value, n.value)

    async def leave(self) -> None:
        """Leaves the topic (idempotent; nothing to do after the agent closed).

        Its subscriptions and event streams end (queued items stay readable),
        its validator stops applying, and the node stops carrying the topic
        unless another handle joined it.
        """
        self._leave_now()

    def _leave_now(self) -> None:
        if self._left:
            return
        self._left = True
        self._end_streams()
        self._agent._forget_topic(self._handle)
        if not self._agent._closed:
            rc = lib.x0x_topic_leave(self._handle)
            if rc not in (0, InvalidHandle.CODE):
                check(rc)

    def _end_streams(self) -> None:
        for s in list(self._streams):
            self._agent._unroute(s._handle)
            s._parent = None
            s._end()
        self._streams.clear()
        for t in list(self._tasks):
            t.cancel()

    def _agent_closed(self) -> None:
        self._left = True
        self._streams.clear()
        for t in list(self._tasks):
            t.cancel()

    def _check(self, rc: int, what: str) -> None:
        try:
            check(rc)
        except (InvalidHandle, Closed) as exc:
            if self._agent._closed:
                raise Closed(f"{what}: the agent is closed") from exc
            raise

    # A validation request of this handle (the agent's dispatcher, loop thread).
    def _validate(self, request: int, msg: TopicMessage) -> None:
        v = self._validator
        if v is None or self._left:
            return
        try:
            r = v(msg)
        except Exception:
            self._report(request, False)
            return
        if inspect.isawaitable(r):
            task = self._agent._loop.create_task(self._await_verdict(request, r))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._report(request, r is True)

    async def _await_verdict(self, request: int, verdict: Awaitable[bool]) -> None:
        try:
            ok = (await verdict) is True
        except Exception:
            ok = False
        self._report(request, ok)

    def _report(self, request: int, accept: bool) -> None:
        if self._left or self._agent._closed:
            return  # the validator no longer applies
        verdict = _lib.VALIDATION_ACCEPT if accept else _lib.VALIDATION_REJECT
        lib.x0x_topic_validation_result(self._handle, request, verdict)  # too late: already refused

    async def __aenter__(self) -> Topic:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.leave()

    def __repr__(self) -> str:
        state = "left" if self.left else ("publish-only" if self._publish_only else "joined")
        return f"<x0x.Topic {self._name!r} {state}>"


_TOKEN = object()

