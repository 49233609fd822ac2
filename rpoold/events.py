"""
Events: one per change the daemon makes or sees in the pool, kept in the
record store's event log so that every daemon sharing the store sees
every other's, in one order.

An event has an ``id`` (given by the store: increasing, never reused), a
``type`` (``container.created``, ``node.status``, ...), a ``time``, the
``resource`` it is about (a path of the API) and a small ``data`` object.

- ``IEventLog`` is what a store provides for events: append, read after an
  id, the ids it still holds, a *tail* (every event appended from an id on,
  whoever appended it, delivered in order and once) and trimming.  The
  memory store, SQLite and Redis implement it (``rpoold.records``,
  ``rpoold.stores``).
- ``EventHub`` is the daemon's side: it appends the events the daemon
  makes, tails the log and hands each event to the listeners of this
  process (the ``/events`` streams, the waits for an operation), and trims
  the log to its retention.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from zope.interface import Interface

from rpoold.errors import RpoolError

log = Logger()

#: Seconds between two tries to start the tail of a log that could not be read.
RETRY = 1.0

#: Event data is kept small: a change's identifiers and states, not bodies.
MAX_DATA_BYTES = 4096

_NODE_PATH = re.compile(r"^/nodes/([^/]+)")


def timestamp(seconds: float) -> str:
    """:returns: an RFC 3339 UTC time with milliseconds (``2017-04-12T08:12:22.526Z``)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def node_of(resource: str) -> str:
    """:returns: the node a resource path is on (``/nodes/<id>/...``), or ``""``."""
    found = _NODE_PATH.match(resource)
    return found.group(1) if found else ""


@dataclass(frozen=True)
class Event:
    """
    One change.

    :ivar id: given by the store's log: increasing, never reused.
    :ivar time: seconds since the epoch, when it was appended.
    """

    id: int
    type: str
    time: float
    resource: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def node(self) -> str:
        """The node it happened on (``""`` for pool-wide resources)."""
        return node_of(self.resource)

    def view(self) -> dict[str, Any]:
        """:returns: the event as the API shows it."""
        return {"id": self.id, "type": self.type, "time": timestamp(self.time),
                "resource": self.resource, "data": self.data}

    def payload(self) -> dict[str, Any]:
        """:returns: what a store keeps of it besides its id and time."""
        return {"type": self.type, "resource": self.resource, "data": self.data}


#: A run of events (a name of its own: the stores have a method called ``list``).
EventList = list[Event]


def event_from(event_id: int, when: float, payload: Mapping[str, Any]) -> Event:
    """:returns: the event a store kept as ``payload`` (``Event.payload``)."""
    data = payload.get("data")
    return Event(id=event_id, type=str(payload.get("type", "")), time=when,
                 resource=str(payload.get("resource", "")),
                 data=dict(data) if isinstance(data, Mapping) else {})


class IEventLog(Interface):
    """
    The events of a store, in the order of their ids.  Every method answers
    a Deferred; a store that does not answer fails it with
    ``rpoold.records.StoreUnavailable``.
    """

    def append(event_type: str, resource: str, data: Mapping[str, Any]) -> Deferred[Event]:
        """
        Add an event after every one already in the log.

        :param data: a JSON object (kept as a copy).
        :returns: Deferred firing with the event, its id and time given.
        """

    def read(after: int, limit: int) -> Deferred[EventList]:
        """
        :returns: Deferred firing with the events whose id is above
            ``after``, oldest first, at most ``limit``.
        """

    def bounds() -> Deferred[tuple[int, int]]:
        """
        :returns: Deferred firing with the id of the oldest event still
            kept and the id of the last one appended (``(last + 1, last)``
            when none is kept; ``(1, 0)`` for a log never written).
        """

    def tail(after: int, deliver: Callable[[Event], None]) -> None:
        """
        Call ``deliver`` with every event whose id is above ``after``, in
        id order and each once, as they are appended, by this store object
        or by any other sharing the store (another daemon's), until the
        store closes.  Delivery is best effort while the store is away:
        it goes on from the last event delivered once it answers again.
        """

    def trim(max_age: float, max_count: int) -> Deferred[int]:
        """
        Forget the events older than ``max_age`` seconds and all but the
        last ``max_count``.

        :returns: Deferred firing with how many were forgotten (an
            estimate where the store cannot tell).
        """


class TailListener:
    """One listener of a store's tail and the last id it was given (for the stores)."""

    def __init__(self, after: int, deliver: Callable[[Event], None]) -> None:
        self.after = after
        self.deliver = deliver

    def offer(self, event: Event) -> None:
        """Deliver ``event`` unless it is not after the last one delivered."""
        if event.id <= self.after:
            return
        self.after = event.id
        try:
            self.deliver(event)
        except Exception:
            log.failure("events: a listener of the tail failed")


class EventFilter:
    """
    Which events a subscriber wants: types matching one of ``types``
    (glob patterns: ``container.*``), on node ``node``; an empty choice
    takes every event.
    """

    def __init__(self, types: Iterable[str] = (), node: str = "") -> None:
        self.types = tuple(t for t in types if t)
        self.node = node
        self._patterns = [re.compile(fnmatch.translate(t)) for t in self.types]

    def __call__(self, event: Event) -> bool:
        if self._patterns and not any(p.match(event.type) for p in self._patterns):
            return False
        if self.node:
            nodes = event.data.get("nodes")
            return event.node == self.node or (isinstance(nodes, list) and self.node in nodes)
        return True


Listener = Callable[[Event], None]


@dataclass(frozen=True)
class EventSettings:
    """
    The ``[events]`` section.

    :ivar retention: seconds an event is kept in the log.
    :ivar max_events: most events kept.
    :ivar keepalive: seconds between two comment lines of an idle stream.
    :ivar buffer: most events held for a subscriber that does not read
        (then it is disconnected).
    :ivar node_interval: seconds between two looks at the nodes' status
        (0: none).
    """

    retention: float = 3600.0
    max_events: int = 100_000
    keepalive: float = 15.0
    buffer: int = 1000
    node_interval: float = 10.0


class EventHub(Service):
    """
    The daemon's events: what it appends, and the log's tail handed to the
    listeners of this process.

    :param log: the store's event log.
    :param clock: an ``IReactorTime``.
    :param retention: seconds an event is kept.
    :param max_events: most events kept.
    :param trim_interval: seconds between two trims of the log.
    :ivar position: the id of the last event delivered to the listeners.
    """

    def __init__(self, log: IEventLog, clock: Any, retention: float = 3600.0,
                 max_events: int = 100_000, trim_interval: float = 10.0) -> None:
        self.log = log
        self.clock = clock
        self.retention = retention
        self.max_events = max_events
        self.trim_interval = trim_interval
        self.position = 0
        self.started = False
        self._listeners: list[Listener] = []
        self._trimmer: Any = None
        self._retry: Any = None
        self._tailing = False
        self._appended = 0

    # Running -------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._start_tail()

    def _start_tail(self) -> None:
        """Start the tail; while the log cannot be read, try again every ``RETRY`` seconds."""

        def failed(failure: Any) -> None:
            log.error("events: the log's tail did not start (again in {retry:g} s): {why}",
                      retry=RETRY, why=failure.getErrorMessage())
            if self.running:
                self._retry = self.clock.callLater(RETRY, self._start_tail)

        self._retry = None
        ensureDeferred(self.start()).addErrback(failed)

    async def start(self) -> None:
        """Begin delivering from the log's last event on, and trimming it."""
        if self._tailing:
            return
        self._tailing = True
        try:
            _, last = await self.log.bounds()
        except BaseException:
            self._tailing = False
            raise
        self.position = max(self.position, last)
        self.log.tail(last, self._deliver)
        self.started = True
        if self.running and self.trim_interval > 0:
            self._trimmer = self.clock.callLater(self.trim_interval, self._trim)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._trimmer is not None and self._trimmer.active():
            self._trimmer.cancel()
        self._trimmer = None
        return succeed(None)

    def _trim(self) -> None:
        self._trimmer = None

        def again(_: Any) -> None:
            if self.running:
                self._trimmer = self.clock.callLater(self.trim_interval, self._trim)

        self.trim_now().addBoth(again)

    def trim_now(self) -> Deferred[None]:
        """Trim the log to the retention now (failures are logged)."""
        d = self.log.trim(self.retention, self.max_events)

        def failed(failure: Any) -> None:
            log.warn("events: trimming the log failed: {why}", why=failure.getErrorMessage())

        return d.addCallbacks(lambda _: None, failed)

    # Appending -----------------------------------------------------------------------

    def emit(self, event_type: str, resource: str,
             data: Mapping[str, Any] | None = None) -> Deferred[Event | None]:
        """
        Append an event; it reaches the listeners of every daemon through
        the log's tail.

        :returns: Deferred firing with the event, or ``None`` when it could
            not be appended (logged; it never fails).
        """
        d = self.log.append(event_type, resource, dict(data or {}))

        def failed(failure: Any) -> None:
            if failure.check(RpoolError):
                log.warn("events: {type} of {resource} not recorded: {why}", type=event_type,
                         resource=resource, why=failure.getErrorMessage())
            else:
                log.failure("events: appending {type} failed", failure, type=event_type)
            return None

        self._appended += 1
        if self._appended % 1000 == 0 and not self.running:
            # Not run as a service (in-process use): trim now and then anyway.
            self.trim_now()
        return d.addErrback(failed)

    # Listening -----------------------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """
        Hear every event delivered from now on (in id order).

        :returns: what stops it.
        """
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    @property
    def listeners(self) -> int:
        """How many listen."""
        return len(self._listeners)

    def _deliver(self, event: Event) -> None:
        if event.id <= self.position:
            return
        self.position = event.id
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("events: a listener failed")

    def read(self, after: int, limit: int) -> Deferred[EventList]:
        """:returns: the log's ``read``."""
        return self.log.read(after, limit)

    def bounds(self) -> Deferred[tuple[int, int]]:
        """:returns: the log's ``bounds``."""
        return self.log.bounds()


def now() -> float:
    """The wall clock, in seconds (events and operations carry wall-clock times)."""
    return time.time()
