"""
The event log of each record store form (``IEventLog``): the memory store,
SQLite on a real file, a real ``redis-server``; then two store objects on
one file or one server (two daemons): one order of ids, every event heard
by both tails, once; and the daemon's ``EventHub`` on top.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import fail, gatherResults
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from rpoold.events import RETRY, Event, EventFilter, EventHub, IEventLog, node_of
from rpoold.records import MemoryRecords, StoreUnavailable
from rpoold.stores import open_store
from testbed.redis_server import RedisServer
from tests.support.polling import wait_for

FORMS = ("memory", "sqlite", "redis")
DURABLE = ("sqlite", "redis")

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


class Logs:
    """New store objects on one place (one file, one key prefix; the memory store is itself)."""

    def __init__(self, form: str, url: str, config_dir: str) -> None:
        self.form = form
        self.url = url
        self.config_dir = config_dir
        self.made: list[Any] = []
        self._memory = MemoryRecords()

    async def opened(self) -> Any:
        store = self._memory if self.form == "memory" else open_store(self.url, self.config_dir, reactor)
        await store.open()
        self.made.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.made:
            await store.close()


def _url(form: str, request: pytest.FixtureRequest) -> str:
    if form == "memory":
        return "memory:"
    if form == "sqlite":
        return "sqlite:///records.db"
    server: RedisServer = request.getfixturevalue("shared_redis")
    return f"redis://127.0.0.1:{server.port}/0?prefix=ev{next(_prefixes)}:&timeout=5"


@pytest_twisted.async_yield_fixture(params=FORMS)
async def logs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Logs]:
    where = Logs(request.param, _url(request.param, request), str(tmp_path))
    yield where
    await where.close_all()


@pytest_twisted.async_yield_fixture(params=DURABLE)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Logs]:
    where = Logs(request.param, _url(request.param, request), str(tmp_path))
    yield where
    await where.close_all()


def heard(store: Any, after: int = 0) -> list[Event]:
    """Start ``store``'s tail after ``after``; the list fills as events are delivered."""
    got: list[Event] = []
    store.tail(after, got.append)
    return got


# Every form -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_provides_the_interface(logs: Logs) -> None:
    assert verifyObject(IEventLog, await logs.opened())


@pytest_twisted.ensureDeferred
async def test_append_read_and_bounds(logs: Logs) -> None:
    log = await logs.opened()
    assert await log.bounds() == (1, 0)
    data = {"status": "running", "nested": {"a": [1, 2]}}
    first = await log.append("container.created", "/nodes/n1/containers/c1", data)
    data["status"] = "changed after the call"
    for i in range(2, 6):
        await log.append("job.started", f"/nodes/n1/jobs/j{i}", {"i": i})
    assert first.id == 1 and first.type == "container.created" and first.node == "n1"
    everything = await log.read(0, 100)
    assert [e.id for e in everything] == [1, 2, 3, 4, 5]
    assert everything[0].data == {"status": "running", "nested": {"a": [1, 2]}}
    assert [e.id for e in await log.read(2, 2)] == [3, 4]
    assert await log.read(5, 10) == []
    assert await log.bounds() == (1, 5)
    assert everything[0].view()["time"].endswith("Z")


@pytest_twisted.ensureDeferred
async def test_refuses_what_json_cannot_carry(logs: Logs) -> None:
    log = await logs.opened()
    with pytest.raises(TypeError):
        await log.append("x.changed", "/x", {"s": {1, 2}})
    with pytest.raises(ValueError):
        await log.append("x.changed", "/x", {"n": float("nan")})
    assert await log.bounds() == (1, 0)


@pytest_twisted.ensureDeferred
async def test_trim_keeps_the_last_and_ids_are_never_reused(logs: Logs) -> None:
    log = await logs.opened()
    for i in range(10):
        await log.append("vm.state", "/nodes/n/vms/v", {"i": i})
    assert await log.trim(3600, 4) == 6
    assert await log.bounds() == (7, 10)
    assert [e.id for e in await log.read(0, 100)] == [7, 8, 9, 10]
    assert (await log.append("vm.state", "/nodes/n/vms/v", {})).id == 11
    # Older than no time at all: everything goes, the count stays.
    await log.trim(0, 100)
    assert await log.bounds() == (12, 11)
    assert (await log.append("vm.state", "/nodes/n/vms/v", {})).id == 12


@pytest_twisted.ensureDeferred
async def test_tail_delivers_in_order_from_where_it_starts(logs: Logs) -> None:
    log = await logs.opened()
    await log.append("a.created", "/a", {})
    await log.append("b.created", "/b", {})
    from_start = heard(log, 0)
    from_now = heard(log, 2)
    await gatherResults([log.append("c.created", f"/c/{i}", {}) for i in range(20)])
    await wait_for(lambda: len(from_start) == 22, "the tail from the start hears every event")
    await wait_for(lambda: len(from_now) == 20, "the tail from now hears the new events")
    assert [e.id for e in from_start] == list(range(1, 23))
    assert [e.id for e in from_now] == list(range(3, 23))


@pytest_twisted.ensureDeferred
async def test_concurrent_appends_get_distinct_increasing_ids(logs: Logs) -> None:
    log = await logs.opened()
    events = await gatherResults([log.append("job.ended", f"/nodes/n/jobs/{i}", {"i": i})
                                  for i in range(200)])
    assert [e.id for e in events] == list(range(1, 201))
    assert [e.data["i"] for e in await log.read(0, 1000)] == list(range(200))


# Two store objects on one place (two daemons) --------------------------------------------


@pytest_twisted.ensureDeferred
async def test_two_stores_one_order_every_event_heard_by_both(shared: Logs) -> None:
    a, b = await shared.opened(), await shared.opened()
    heard_a, heard_b = heard(a), heard(b)
    for i in range(30):
        await (a if i % 3 else b).append("container.started", f"/nodes/n/containers/c{i}", {"i": i})
    await wait_for(lambda: len(heard_a) == 30 and len(heard_b) == 30, "both tails hear all 30",
                   timeout=10)
    assert [e.id for e in heard_a] == [e.id for e in heard_b] == list(range(1, 31))
    assert [e.data["i"] for e in heard_b] == list(range(30))
    assert await b.bounds() == (1, 30)


@pytest_twisted.ensureDeferred
async def test_a_reopened_store_reads_and_continues(shared: Logs) -> None:
    first = await shared.opened()
    for i in range(3):
        await first.append("bridge.created", f"/nodes/n/bridges/b{i}", {})
    await first.close()
    shared.made.remove(first)
    again = await shared.opened()
    assert [e.resource for e in await again.read(0, 10)] == [f"/nodes/n/bridges/b{i}" for i in range(3)]
    assert (await again.append("bridge.deleted", "/nodes/n/bridges/b0", {})).id == 4


# The hub ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_hubs_of_two_daemons_hear_each_other(shared: Logs) -> None:
    hubs = [EventHub(await shared.opened(), reactor, trim_interval=0) for _ in range(2)]
    await hubs[0].emit("before.start", "/x", {})
    for hub in hubs:
        await hub.start()
    got: list[list[Event]] = [[], []]
    for hub, into in zip(hubs, got, strict=True):
        hub.listen(into.append)
    await hubs[0].emit("container.created", "/nodes/n1/containers/web", {"name": "web"})
    await hubs[1].emit("container.deleted", "/nodes/n1/containers/web", {"name": "web"})
    await wait_for(lambda: all(len(g) == 2 for g in got), "each hub hears both events", timeout=10)
    for into in got:
        assert [e.type for e in into] == ["container.created", "container.deleted"]
    assert hubs[1].position == 3


class _AwayAtFirst:
    """An event log whose first ``bounds`` fails, as a store still away at start-up."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.refused = 0

    def bounds(self) -> Any:
        if not self.refused:
            self.refused += 1
            return fail(StoreUnavailable("the store is away"))
        return self.log.bounds()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def test_a_hub_whose_log_is_away_at_start_tries_again() -> None:
    clock = Clock()
    away = _AwayAtFirst(IEventLog(MemoryRecords()))
    hub = EventHub(away, clock, trim_interval=0)  # type: ignore[arg-type]
    hub.startService()
    assert away.refused == 1 and not hub.started
    clock.advance(RETRY)
    assert hub.started
    got: list[Event] = []
    hub.listen(got.append)
    hub.emit("container.created", "/nodes/n1/containers/web", {})
    assert [e.type for e in got] == ["container.created"]
    hub.stopService()


def test_filters() -> None:
    event = Event(1, "container.created", 0.0, "/nodes/n1/containers/c", {})
    cluster = Event(2, "storagecluster.created", 0.0, "/storageclusters/s", {"nodes": ["n1", "n2"]})
    assert EventFilter()(event)
    assert EventFilter(["container.*"])(event) and not EventFilter(["job.*"])(event)
    assert EventFilter(["job.*", "container.created"], "n1")(event)
    assert not EventFilter([], "n2")(event)
    assert EventFilter([], "n2")(cluster) and not EventFilter([], "n3")(cluster)
    assert node_of("/nodes/525400123456/vms/v1") == "525400123456" and node_of("/vdisks/x") == ""
