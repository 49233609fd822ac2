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
through ``put``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer

Record = dict[str, Any]


class IRecords(Interface):
    """A store of records by kind and key."""

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

    def list(kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        """
        :param prefix: only keys that start with it (``"<node id>/"``).
        :returns: Deferred firing with ``(key, record)`` pairs, in the
            order the keys were first written.
        """


@implementer(IRecords)
class MemoryRecords:
    """Records in this process's memory: gone when it stops."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, Record]] = {}

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        record = self._kinds.get(kind, {}).get(key)
        return succeed(copy.deepcopy(record) if record is not None else None)

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        self._kinds.setdefault(kind, {})[key] = copy.deepcopy(dict(record))
        return succeed(None)

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        return succeed(self._kinds.get(kind, {}).pop(key, None) is not None)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        records = self._kinds.get(kind, {})
        return succeed([(key, copy.deepcopy(record)) for key, record in records.items()
                        if key.startswith(prefix)])
