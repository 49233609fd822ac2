"""
What container operations ask of the record store: a container's stop,
start, processes and create read its own record, never the records of
the whole pool, so their cost does not grow with the pool.  A running
container nobody recorded yet is recorded once, at first sight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from zope.interface import implementer

from plugins.poolsim.mock import mock_backend
from plugins.poolsim.pool import SEED_CONTAINER, SEED_NODE
from rpoold.interfaces import IBackendContext
from rpoold.records import IRecords, MemoryRecords, Record
from testbed.http_api import Api
from tests.support.backends import MOCK_OPTIONS, SEED_FLIST, serve_all


class CountingRecords(MemoryRecords):
    """``MemoryRecords`` that count their calls by method and kind."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        self.calls["get", kind] += 1
        return super().get(kind, key)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        self.calls["list", kind] += 1
        return super().list(kind, prefix)

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        self.calls["add", kind] += 1
        return super().add(kind, key, record)


@implementer(IBackendContext)
class Context:
    def __init__(self, records: IRecords) -> None:
        self.reactor = reactor
        self.config_dir = "."
        self.records = records

    def backend(self, name: str) -> Any:
        raise LookupError(name)


@pytest_twisted.ensureDeferred
async def test_a_containers_operations_read_its_record_only() -> None:
    records = CountingRecords()
    api = Api.in_memory(serve_all(mock_backend(dict(MOCK_OPTIONS), Context(records))).resource())
    assert records.calls["add", "container"] == 1  # the seed container, seen running at start
    containers = f"/nodes/{SEED_NODE}/containers"
    for n in range(20):  # a pool with more containers than the one worked on
        body = {"name": f"other{n}", "hostname": "h", "flist": SEED_FLIST}
        assert (await api.post(containers, json=body)).status == 201
    records.calls.clear()

    body = {"name": "c1", "hostname": "c1", "flist": SEED_FLIST}
    assert (await api.post(containers, json=body)).status == 201
    assert (await api.post(f"{containers}/c1/stop")).status == 204
    assert (await api.post(f"{containers}/c1/start")).status == 201
    assert (await api.get(f"{containers}/{SEED_CONTAINER}/processes")).status == 200
    assert (await api.get(f"{containers}/c1")).status == 200
    assert records.calls["list", "container"] == 0, records.calls
    assert records.calls["get", "container"] <= 8, records.calls

    # Listing a node's containers reads them all, once.
    assert (await api.get(containers)).status == 200
    assert records.calls["list", "container"] == 1, records.calls
