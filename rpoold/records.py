"""
Records: what a backend keeps that the things it manages cannot tell it.

A node does not know the create body of a container that is halted, the
settings a bridge was made with, a filesystem's quota, when a snapshot
was taken, a VM's spec, nor that an operator deleted it from the pool; the
mock keeps its storage clusters and vdisks the same way.  Every backend
keeps such state in one ``IRecords`` object and nowhere else, so that
where it lives (memory here; a durable store later) is one choice.

A record is a JSON object (``dict``) filed under a *kind* (``"container"``,
``"vm"``, ...) and a *key* (``"<node id>/<name>"`` and the like).  Writes
copy what they are given and reads hand out copies: a record changes only
through the store.  ``add`` and ``replace`` are atomic, also between
daemons sharing one store: a name is claimed by one writer only.

A store that cannot be reached fails its calls with ``StoreUnavailable``
(503); it is opened once, at start (``open``), where a store that cannot
be used is a ``StoreError``, a start-up error.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from rpoold.errors import ServiceUnavailable
from rpoold.events import Event, EventList, IEventLog, now

Record = dict[str, Any]

log = Logger()


class StoreError(Exception):
    """The store cannot be used at all (at start): one line saying why."""


class StoreUnavailable(ServiceUnavailable):
    """The store does not answer now (503); the daemon goes on and retries later."""


class IRecords(Interface):
    """A store of records by kind and key."""

    def open() -> Deferred[None]:
        """
        Make the store ready (connect; create or migrate its schema).

        :returns: Deferred firing once it is ready.
        :raises StoreError: it cannot be used (unreachable at start, a file
            that is not a store, a schema newer than this code).
        """

    def close() -> Deferred[None]:
        """Let go of the store (connections, files)."""

    def check_at_start() -> None:
        """
        Before the reactor runs (it blocks): check that the store can be
        used, creating or migrating its schema, so that a store that cannot
        is one line at start-up.

        :raises StoreError: it cannot be used.
        """

    def watch(kind: str, changed: Callable[[str | None], None]) -> None:
        """
        Hear of the writes to ``kind``, also other daemons' where the store
        is shared, so that what a daemon keeps from records stays true:
        ``changed(key)`` after a record of that key changed (written or
        deleted); ``changed(None)`` when changes may have been missed (the
        store was away): anything of the kind may have changed.
        """

    def get(kind: str, key: str) -> Deferred[Record | None]:
        """
        :returns: Deferred firing with the record, or ``None`` when there
            is none.
        """

    def put(kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        """
        Write a record (a new one, or over the one under that key).

        :param record: a JSON object; the store keeps a copy.
        :returns: Deferred firing with ``None`` once it is written.
        """

    def delete(kind: str, key: str) -> Deferred[bool]:
        """
        :returns: Deferred firing with whether there was a record.
        """

    def add(kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        """
        Write a record only if there is none under that key (atomically).

        :returns: Deferred firing with whether it was written.
        """

    def replace(kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        """
        Compare and set: write ``record`` (delete when ``None``) only if the
        record under that key is ``expected`` now (``None``: there is none),
        atomically.

        :returns: Deferred firing with whether it was written.
        """

    def list(kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        """
        :param prefix: only keys that start with it (``"<node id>/"``).
        :returns: Deferred firing with ``(key, record)`` pairs, in the
            order the keys were first written.
        """


class Watchers:
    """The callbacks of ``IRecords.watch``, by kind, for a store that sees every write itself."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[Callable[[str | None], None]]] = {}

    def add(self, kind: str, changed: Callable[[str | None], None]) -> None:
        self._by_kind.setdefault(kind, []).append(changed)

    def kinds(self) -> list[str]:
        """The kinds watched."""
        return list(self._by_kind)

    def tell_all(self, key: str | None) -> None:
        """Tell every watcher (``None``: anything may have changed)."""
        for kind in self.kinds():
            self.tell(kind, key)

    def tell(self, kind: str, key: str | None) -> None:
        for changed in list(self._by_kind.get(kind, ())):
            try:
                changed(key)
            except Exception:
                log.failure("record store: a watcher failed")


@implementer(IRecords, IEventLog)
class MemoryRecords:
    """Records and events in this process's memory: gone when it stops."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, Record]] = {}
        self._watchers = Watchers()
        self._events: deque[Event] = deque()
        self._last_event = 0
        self._tails: list[Callable[[Event], None]] = []

    def watch(self, kind: str, changed: Callable[[str | None], None]) -> None:
        self._watchers.add(kind, changed)

    def open(self) -> Deferred[None]:
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)

    def check_at_start(self) -> None:
        pass

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        record = self._kinds.get(kind, {}).get(key)
        return succeed(copy.deepcopy(record) if record is not None else None)

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        self._kinds.setdefault(kind, {})[key] = copy.deepcopy(dict(record))
        self._watchers.tell(kind, key)
        return succeed(None)

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        found = self._kinds.get(kind, {}).pop(key, None) is not None
        if found:
            self._watchers.tell(kind, key)
        return succeed(found)

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        return self.replace(kind, key, None, record)

    def replace(self, kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        records = self._kinds.setdefault(kind, {})
        if records.get(key) != (dict(expected) if expected is not None else None):
            return succeed(False)
        if record is None:
            records.pop(key, None)
        else:
            records[key] = copy.deepcopy(dict(record))
        self._watchers.tell(kind, key)
        return succeed(True)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        records = self._kinds.get(kind, {})
        return succeed([(key, copy.deepcopy(record)) for key, record in records.items()
                        if key.startswith(prefix)])

    # IEventLog: the events of this process -------------------------------------------

    def append(self, event_type: str, resource: str, data: Mapping[str, Any]) -> Deferred[Event]:
        # As a durable store would keep it: JSON only, a copy.
        kept = json.loads(json.dumps(dict(data), allow_nan=False))
        self._last_event += 1
        event = Event(self._last_event, event_type, now(), resource, kept)
        self._events.append(event)
        for deliver in list(self._tails):
            deliver(event)
        return succeed(event)

    def read(self, after: int, limit: int) -> Deferred[EventList]:
        events = self._events
        if not events or after >= events[-1].id:
            return succeed([])
        start = max(0, after + 1 - events[0].id)
        return succeed([events[i] for i in range(start, min(len(events), start + max(0, limit)))])

    def bounds(self) -> Deferred[tuple[int, int]]:
        first = self._events[0].id if self._events else self._last_event + 1
        return succeed((first, self._last_event))

    def tail(self, after: int, deliver: Callable[[Event], None]) -> None:
        for event in list(self._events):
            if event.id > after:
                deliver(event)
        self._tails.append(deliver)

    def trim(self, max_age: float, max_count: int) -> Deferred[int]:
        cutoff = now() - max_age
        events = self._events
        before = len(events)
        while events and (len(events) > max_count or events[0].time < cutoff):
            events.popleft()
        return succeed(before - len(events))


@implementer(IRecords)
class ScopedRecords:
    """
    One backend instance's view of the daemon's store: its kinds filed
    under ``<scope>:<kind>``, so that two instances never share a record.
    The daemon opens and closes the store itself.

    :param store: the daemon's store.
    :param scope: the backend instance's name (the same in every daemon
        configured alike, so they share its records).
    """

    def __init__(self, store: IRecords, scope: str) -> None:
        self.store = store
        self.scope = scope

    def _kind(self, kind: str) -> str:
        return f"{self.scope}:{kind}"

    def open(self) -> Deferred[None]:
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)

    def check_at_start(self) -> None:
        pass

    def watch(self, kind: str, changed: Callable[[str | None], None]) -> None:
        self.store.watch(self._kind(kind), changed)

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        return self.store.get(self._kind(kind), key)

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        return self.store.put(self._kind(kind), key, record)

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        return self.store.delete(self._kind(kind), key)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        return self.store.list(self._kind(kind), prefix)

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        return self.store.add(self._kind(kind), key, record)

    def replace(self, kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        return self.store.replace(self._kind(kind), key, expected, record)


@implementer(IRecords, IEventLog)
class OpenedRecords:
    """
    The daemon's store while it opens: calls made before ``open`` fired
    wait for it (then run in the order they came), later ones go straight
    through.

    :param store: the store, not opened yet.
    """

    def __init__(self, store: IRecords) -> None:
        self.store = store
        self._waiting: list[Deferred[None]] | None = []

    def open(self) -> Deferred[None]:
        def opened(result: Any) -> Any:
            waiting, self._waiting = self._waiting or [], None
            for waiter in waiting:
                if isinstance(result, Failure):
                    waiter.errback(StoreUnavailable(f"the record store did not open: "
                                                    f"{result.getErrorMessage()}"))
                else:
                    waiter.callback(None)
            return result

        return self.store.open().addBoth(opened)

    def close(self) -> Deferred[None]:
        return self.store.close()

    def check_at_start(self) -> None:
        self.store.check_at_start()

    def watch(self, kind: str, changed: Callable[[str | None], None]) -> None:
        self.store.watch(kind, changed)

    def _when_open(self, call: Callable[[], Deferred[Any]]) -> Deferred[Any]:
        if self._waiting is None:
            return call()
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter.addCallback(lambda _: call())

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        return self._when_open(lambda: self.store.get(kind, key))

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        return self._when_open(lambda: self.store.put(kind, key, record))

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        return self._when_open(lambda: self.store.delete(kind, key))

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        return self._when_open(lambda: self.store.list(kind, prefix))

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        return self._when_open(lambda: self.store.add(kind, key, record))

    def replace(self, kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        return self._when_open(lambda: self.store.replace(kind, key, expected, record))

    def _events(self) -> IEventLog:
        return IEventLog(self.store)

    def append(self, event_type: str, resource: str, data: Mapping[str, Any]) -> Deferred[Event]:
        return self._when_open(lambda: self._events().append(event_type, resource, data))

    def read(self, after: int, limit: int) -> Deferred[EventList]:
        return self._when_open(lambda: self._events().read(after, limit))

    def bounds(self) -> Deferred[tuple[int, int]]:
        return self._when_open(lambda: self._events().bounds())

    def tail(self, after: int, deliver: Callable[[Event], None]) -> None:
        if self._waiting is None:
            self._events().tail(after, deliver)
            return
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        waiter.addCallback(lambda _: self._events().tail(after, deliver))
        waiter.addErrback(lambda failure: log.error("events: no tail, the store did not open: {why}",
                                                    why=failure.getErrorMessage()))

    def trim(self, max_age: float, max_count: int) -> Deferred[int]:
        return self._when_open(lambda: self._events().trim(max_age, max_count))
