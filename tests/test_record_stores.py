"""
The record stores (``IRecords``): one suite run against the memory store,
SQLite on a real file and a real ``redis-server``, then what only the
durable ones do (reopening, two stores on one file or server, their
start-up errors), SQLite's durability across a SIGKILL and Redis going away
and coming back.
"""

from __future__ import annotations

import gc
import itertools
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import redis
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, gatherResults
from twisted.logger import formatEvent, globalLogPublisher
from zope.interface.verify import verifyObject

from rpoold.records import IRecords, MemoryRecords, StoreError, StoreUnavailable
from rpoold.stores import open_store
from rpoold.stores.redis import LAYOUT_VERSION, RedisRecords
from rpoold.stores.sqlite import MIGRATIONS, VERSION_TABLE, SQLiteRecords
from testbed.ports import free_port
from testbed.processes import ROOT, Child, python_env, wait_until
from testbed.redis_server import RedisServer
from tests.support import record_writer
from tests.support.polling import eventually, wait_for

FORMS = ("memory", "sqlite", "redis")
DURABLE = ("sqlite", "redis")

_prefixes = itertools.count()


@pytest.fixture(autouse=True)
def no_unhandled_errors() -> Iterator[None]:
    """Fail a test that leaves an error in a Deferred nobody handled."""
    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("isError") or "log_failure" in event:
            seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield
    gc.collect()
    globalLogPublisher.removeObserver(observe)
    assert not seen, seen


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One ``redis-server`` for the module; each test has its own key prefix."""
    server = RedisServer().start()
    yield server
    server.stop()


class Place:
    """Where a test's records live: ``make`` gives a new store object on it each time."""

    def __init__(self, form: str, url: str, config_dir: str) -> None:
        self.form = form
        self.url = url
        self.config_dir = config_dir
        self.made: list[IRecords] = []
        self._memory = MemoryRecords()

    def make(self) -> IRecords:
        # The memory store has nothing to share but itself.
        store = self._memory if self.form == "memory" else open_store(self.url, self.config_dir, reactor)
        self.made.append(store)
        return store

    async def opened(self) -> IRecords:
        store = self.make()
        await store.open()
        return store

    async def close_all(self) -> None:
        for store in self.made:
            await store.close()


def _url(form: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if form == "memory":
        return "memory:"
    if form == "sqlite":
        return "sqlite:///records.db"
    server: RedisServer = request.getfixturevalue("shared_redis")
    return f"redis://127.0.0.1:{server.port}/0?prefix=t{next(_prefixes)}:&timeout=5"


@pytest_twisted.async_yield_fixture(params=FORMS)
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    where = Place(request.param, _url(request.param, tmp_path, request), str(tmp_path))
    yield where
    await where.close_all()


@pytest_twisted.async_yield_fixture(params=DURABLE)
async def durable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    where = Place(request.param, _url(request.param, tmp_path, request), str(tmp_path))
    yield where
    await where.close_all()


@pytest_twisted.async_yield_fixture
async def store(place: Place) -> AsyncIterator[IRecords]:
    yield await place.opened()


async def failure_of(d: Deferred[Any]) -> Exception:
    try:
        await d
    except Exception as e:
        return e
    raise AssertionError("the call succeeded")


# Every form ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_provides_the_interface(store: IRecords) -> None:
    assert verifyObject(IRecords, store)


@pytest_twisted.ensureDeferred
async def test_get_put_delete(store: IRecords) -> None:
    assert await store.get("container", "n1/web") is None
    assert await store.put("container", "n1/web", {"flist": "a", "nics": [{"type": "default"}]}) is None
    assert await store.get("container", "n1/web") == {"flist": "a", "nics": [{"type": "default"}]}
    await store.put("container", "n1/web", {"flist": "b"})
    assert await store.get("container", "n1/web") == {"flist": "b"}
    assert await store.get("vm", "n1/web") is None, "kinds are apart"
    assert await store.delete("container", "n1/web") is True
    assert await store.delete("container", "n1/web") is False
    assert await store.get("container", "n1/web") is None


@pytest_twisted.ensureDeferred
async def test_values_keep_their_types(store: IRecords) -> None:
    record = {"int": 7, "float": 2.5, "big": 2 ** 53 + 1, "neg": -1, "bool": True, "none": None,
              "text": "caf\u00e9 \u2603 \U0001f600", "surrogate": "\ud800", "empty": {},
              "list": [1, "a", [None]], "nested": {"a": {"b": {"c": []}}}}
    await store.put("vm", "n\u0153ud/\u2603", record)
    assert await store.get("vm", "n\u0153ud/\u2603") == record
    assert await store.list("vm", "n\u0153ud/") == [("n\u0153ud/\u2603", record)]


@pytest_twisted.ensureDeferred
async def test_list_in_first_write_order(store: IRecords) -> None:
    for key in ("b", "a", "c"):
        await store.put("bridge", key, {"name": key})
    await store.put("bridge", "a", {"name": "a", "again": True})
    assert [k for k, _ in await store.list("bridge")] == ["b", "a", "c"], "an overwrite keeps its place"
    assert await store.list("bridge") == [("b", {"name": "b"}), ("a", {"name": "a", "again": True}),
                                          ("c", {"name": "c"})]
    await store.delete("bridge", "a")
    await store.put("bridge", "a", {"name": "a"})
    assert [k for k, _ in await store.list("bridge")] == ["b", "c", "a"], "deleted and written anew: last"
    await store.add("bridge", "d", {"name": "d"})
    await store.replace("bridge", "e", None, {"name": "e"})
    await store.replace("bridge", "b", {"name": "b"}, {"name": "b2"})
    assert [k for k, _ in await store.list("bridge")] == ["b", "c", "a", "d", "e"]
    assert await store.list("nothing") == []


@pytest_twisted.ensureDeferred
async def test_list_by_prefix(store: IRecords) -> None:
    for key in ("n1/x", "n2/y", "n1/z", "n10/w", "n1"):
        await store.put("vm", key, {"key": key})
    await store.put("container", "n1/other-kind", {})
    assert [k for k, _ in await store.list("vm", "n1/")] == ["n1/x", "n1/z"]
    assert [k for k, _ in await store.list("vm", "n1")] == ["n1/x", "n1/z", "n10/w", "n1"]
    assert [k for k, _ in await store.list("vm", "n1/z")] == ["n1/z"]
    assert await store.list("vm", "n3/") == []
    assert await store.list("vm", "%") == [] and await store.list("vm", "_") == [], "no pattern characters"
    await store.put("vm", "50%/_a", {})
    assert [k for k, _ in await store.list("vm", "50%/_")] == ["50%/_a"]


@pytest_twisted.ensureDeferred
async def test_records_are_copies(store: IRecords) -> None:
    given = {"list": [1], "inner": {"a": 1}}
    written = store.put("container", "k", given)
    given["list"].append(2)  # before the write has even finished
    given["inner"]["a"] = 99
    await written
    read = await store.get("container", "k")
    assert read == {"list": [1], "inner": {"a": 1}}
    assert read is not None
    read["list"].append(3)
    read["new"] = True
    listed = await store.list("container")
    assert listed == [("k", {"list": [1], "inner": {"a": 1}})]
    listed[0][1]["inner"]["a"] = 5
    assert await store.get("container", "k") == {"list": [1], "inner": {"a": 1}}

    expected = {"list": [1], "inner": {"a": 1}}
    replaced = store.replace("container", "k", expected, given)
    expected["list"].append(4)
    given["list"].clear()
    assert await replaced is True
    assert await store.get("container", "k") == {"list": [1, 2], "inner": {"a": 99}}


@pytest_twisted.ensureDeferred
async def test_add_writes_only_what_is_absent(store: IRecords) -> None:
    assert await store.add("container", "n1/web", {"v": 1}) is True
    assert await store.add("container", "n1/web", {"v": 2}) is False
    assert await store.get("container", "n1/web") == {"v": 1}
    await store.delete("container", "n1/web")
    assert await store.add("container", "n1/web", {"v": 3}) is True
    assert await store.get("container", "n1/web") == {"v": 3}


@pytest_twisted.ensureDeferred
async def test_replace_compares_and_sets(store: IRecords) -> None:
    assert await store.replace("vm", "k", {"v": 0}, {"v": 1}) is False, "nothing there is not {'v': 0}"
    assert await store.get("vm", "k") is None
    assert await store.replace("vm", "k", None, {"v": 1}) is True, "None: there is none"
    assert await store.replace("vm", "k", None, {"v": 2}) is False
    assert await store.replace("vm", "k", {"v": 1}, {"v": 2}) is True
    assert await store.replace("vm", "k", {"v": 1}, {"v": 3}) is False, "stale"
    assert await store.replace("vm", "k", {"v": 2, "more": 1}, {"v": 3}) is False
    assert await store.get("vm", "k") == {"v": 2}
    assert await store.replace("vm", "k", {"v": 2}, None) is True, "None: delete"
    assert await store.get("vm", "k") is None
    assert await store.list("vm") == []
    assert await store.replace("vm", "k", {"v": 2}, None) is False
    assert await store.replace("vm", "k", None, None) is True, "absent, and stays so"


@pytest_twisted.ensureDeferred
async def test_replace_compares_values_not_spellings(store: IRecords) -> None:
    await store.put("vm", "k", {"n": 1, "a": [1, 2]})
    assert await store.replace("vm", "k", {"a": [1.0, 2], "n": 1.0}, {"n": 2}) is True
    assert await store.get("vm", "k") == {"n": 2}


@pytest_twisted.ensureDeferred
async def test_a_cancelled_call_leaves_the_store_working(store: IRecords) -> None:
    await store.put("vm", "a", {"v": "a"})
    await store.put("vm", "b", {"v": "b"})
    for pending in (store.get("vm", "a"), store.put("vm", "c", {"v": "c"}), store.list("vm")):
        pending.cancel()
        try:
            await pending
        except CancelledError:
            pass
    assert await store.get("vm", "b") == {"v": "b"}, "no answer meant for a cancelled call"
    assert await store.list("vm", "a") == [("a", {"v": "a"})]


@pytest_twisted.ensureDeferred
async def test_two_stores_add_the_same_keys(place: Place) -> None:
    one, two = await place.opened(), await place.opened()
    keys = [f"n1/c{i}" for i in range(20)]
    answers = await gatherResults([store.add("container", key, {"by": by})
                                   for key in keys for by, store in (("one", one), ("two", two))])
    for i, key in enumerate(keys):
        assert sorted(answers[2 * i:2 * i + 2]) == [False, True], key
        winner = "one" if answers[2 * i] else "two"
        assert await two.get("container", key) == {"by": winner}
        assert await one.get("container", key) == {"by": winner}


@pytest_twisted.ensureDeferred
async def test_two_stores_increment_by_compare_and_set(place: Place) -> None:
    """Read, add one, replace, again on conflict: with both stores at it, no increment is lost."""
    one, two = await place.opened(), await place.opened()
    await one.put("counter", "c", {"n": 0})
    rounds = 15
    conflicts = [0]

    async def increment(store: IRecords) -> None:
        for _ in range(rounds):
            while True:
                seen = await store.get("counter", "c")
                assert seen is not None
                if await store.replace("counter", "c", seen, {"n": seen["n"] + 1}):
                    break
                conflicts[0] += 1

    await gatherResults([Deferred.fromCoroutine(increment(s)) for s in (one, two, one, two)])
    assert await two.get("counter", "c") == {"n": 4 * rounds}


# The durable forms -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_watcher_hears_of_writes_to_its_kind(place: Place) -> None:
    """Writes through another store object on the same place (the same object for memory) are heard."""
    watching, writing = await place.opened(), await place.opened()
    heard: list[str | None] = []
    watching.watch("vm", heard.append)
    if place.form == "redis":
        # The subscription is made once the store is open: it first says "anything may have changed".
        await wait_for(lambda: None in heard, "subscribed", 10)
        heard.clear()
    if place.form == "sqlite":
        writing = watching  # an SQLite store hears its own writes only
    await writing.put("vm", "a", {"n": 1})
    await writing.add("vm", "b", {"n": 1})
    await writing.add("vm", "b", {"n": 2})  # not written: not heard
    await writing.replace("vm", "a", {"n": 1}, {"n": 2})
    await writing.delete("vm", "b")
    await writing.put("bridge", "x", {})  # another kind
    await wait_for(lambda: len(heard) >= 4, "writes heard", 10)
    assert heard == ["a", "b", "a", "b"]


@pytest_twisted.ensureDeferred
async def test_records_outlive_the_store_object(durable: Place) -> None:
    first = await durable.opened()
    for key in ("b", "a", "c"):
        await first.put("container", f"n1/{key}", {"name": key})
    await first.delete("container", "n1/a")
    await first.put("container", "n1/a", {"name": "a"})
    await first.close()
    again = await durable.opened()
    assert await again.list("container") == [("n1/b", {"name": "b"}), ("n1/c", {"name": "c"}),
                                             ("n1/a", {"name": "a"})]
    await again.put("container", "n1/d", {"name": "d"})
    assert [k for k, _ in await again.list("container")] == ["n1/b", "n1/c", "n1/a", "n1/d"]


@pytest_twisted.ensureDeferred
async def test_a_closed_store_is_unavailable(durable: Place) -> None:
    store = durable.make()
    assert isinstance(await failure_of(store.get("vm", "k")), StoreUnavailable), "not opened yet"
    await store.open()
    await store.put("vm", "k", {})
    await store.close()
    for call in (store.get("vm", "k"), store.put("vm", "k", {}), store.list("vm")):
        assert isinstance(await failure_of(call), StoreUnavailable)
    await store.close()
    await store.open()
    assert await store.get("vm", "k") == {}


@pytest_twisted.ensureDeferred
async def test_what_is_not_json_is_refused(durable: Place) -> None:
    store = await durable.opened()
    assert isinstance(await failure_of(store.put("vm", "k", {"a": {1, 2}})), TypeError)
    assert isinstance(await failure_of(store.add("vm", "k", {"a": float("nan")})), ValueError)
    assert isinstance(await failure_of(store.put("vm", "k", ["not", "an", "object"])), TypeError)  # type: ignore[arg-type]
    assert await store.get("vm", "k") is None


# SQLite ----------------------------------------------------------------------------------


async def open_error(store: IRecords) -> str:
    e = await failure_of(store.open())
    assert isinstance(e, StoreError), repr(e)
    assert "\n" not in str(e)
    return str(e)


@pytest_twisted.ensureDeferred
async def test_sqlite_file_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = SQLiteRecords(str(path), reactor)
    await store.open()
    await store.put("vm", "k", {"a": 1})
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(len(MIGRATIONS),)]
        assert other.execute("SELECT kind, key, value FROM records").fetchall() == [("vm", "k", '{"a":1}')]
    finally:
        other.close()
    await store.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = SQLiteRecords(str(path), reactor)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = 99")
    conn.close()
    message = await open_error(SQLiteRecords(str(path), reactor))
    assert str(path) in message and "schema version 99 is newer" in message, message


@pytest_twisted.ensureDeferred
async def test_sqlite_older_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = SQLiteRecords(str(path), reactor)
    await store.open()
    await store.put("vm", "k", {"a": 1})
    await store.close()

    class Next(SQLiteRecords):
        migrations = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",))

    newer = Next(str(path), reactor)
    await newer.open()
    assert await newer.get("vm", "k") == {"a": 1}
    await newer.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(len(MIGRATIONS) + 1,)]
        assert conn.execute("SELECT count(*) FROM extra").fetchone() == (0,)
    finally:
        conn.close()
    message = await open_error(SQLiteRecords(str(path), reactor))
    assert "is newer" in message


@pytest_twisted.ensureDeferred
async def test_sqlite_files_that_are_not_stores_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to have a header\n")
    message = await open_error(SQLiteRecords(str(text), reactor))
    assert message == f"record store {text}: not an SQLite database"
    assert text.read_text().startswith("not a database"), "left as it was"

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    message = await open_error(SQLiteRecords(str(foreign), reactor))
    assert str(foreign) in message and "not a record store" in message and "customers" in message
    conn = sqlite3.connect(foreign)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "left as it was"
    finally:
        conn.close()

    message = await open_error(SQLiteRecords(str(tmp_path), reactor))
    assert "is a directory" in message
    message = await open_error(SQLiteRecords(str(tmp_path / "missing" / "r.db"), reactor))
    assert "does not exist" in message


def test_sqlite_durable_across_sigkill(tmp_path: Path) -> None:
    """Every write a killed child was answered for is in the file."""
    path = tmp_path / "records.db"
    child = Child([sys.executable, "-m", "tests.support.record_writer", str(path), "100000"],
                  env=python_env(), cwd=ROOT)
    try:
        wait_until(lambda: child.output().count("written ") >= 200, 60, "record writer", child.process)
        child.signal(signal.SIGKILL)
        child.process.wait(10)
    finally:
        child.stop()
    lines = child.output().splitlines(keepends=True)
    answered = [line.split()[1] for line in lines if line.startswith("written ") and line.endswith("\n")]
    assert len(answered) >= 200 and "done" not in child.output(), "killed while writing"
    conn = sqlite3.connect(path)
    try:
        stored = {key for (key,) in conn.execute("SELECT key FROM records WHERE kind = ?",
                                                 (record_writer.KIND,))}
    finally:
        conn.close()
    missing = [key for key in answered if key not in stored]
    assert not missing, f"{len(missing)} answered writes lost, first {missing[:3]}"
    assert len(stored) <= len(answered) + 1, "at most the write in flight beyond the last answer"


# Redis -----------------------------------------------------------------------------------


def redis_store(port: int, **options: Any) -> RedisRecords:
    options.setdefault("prefix", f"t{next(_prefixes)}:")
    return RedisRecords("127.0.0.1", port, reactor, **options)


async def until_available(store: IRecords) -> Any:
    async def probe() -> Any:
        try:
            return await store.get("vm", "k")
        except StoreUnavailable as e:
            return e

    return await eventually(probe, lambda v: not isinstance(v, StoreUnavailable), 10, "store back")


@pytest_twisted.ensureDeferred
async def test_redis_key_layout(shared_redis: RedisServer) -> None:
    store = redis_store(shared_redis.port, prefix="layout:")
    await store.open()
    await store.put("vm", "n1/a", {"a": 1})
    await store.put("vm", "n1/b", {"b": 1})
    await store.put("bridge", "n1/x", {})
    client = redis.Redis(port=shared_redis.port, decode_responses=True)
    try:
        assert sorted(client.keys("layout:*")) == ["layout:order:bridge", "layout:order:vm",
                                                   "layout:records:bridge", "layout:records:vm",
                                                   "layout:schema", "layout:seq"]
        assert client.hgetall("layout:records:vm") == {"n1/a": '{"a":1}', "n1/b": '{"b":1}'}
        assert client.zrange("layout:order:vm", 0, -1, withscores=True) == [("n1/a", 1.0), ("n1/b", 2.0)]
        assert client.get("layout:schema") == str(LAYOUT_VERSION)
    finally:
        client.close()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_redis_unreachable_at_open() -> None:
    port = free_port()
    message = await open_error(redis_store(port, timeout=2))
    assert message.startswith(f"record store redis://127.0.0.1:{port}/0: cannot connect"), message


@pytest_twisted.ensureDeferred
async def test_redis_password_and_database() -> None:
    server = RedisServer(password="s3cret").start()
    try:
        store = open_store(f"redis://:s3cret@127.0.0.1:{server.port}/3?prefix=p:", "/", reactor)
        await store.open()
        await store.put("vm", "k", {"a": 1})
        await store.close()
        client = redis.Redis(port=server.port, password="s3cret", db=3, decode_responses=True)
        assert client.hget("p:records:vm", "k") == '{"a":1}'
        client.close()
        message = await open_error(redis_store(server.port, password="hunter2-xyz"))
        assert "auth" in message.lower() and "hunter2" not in message, message
        message = await open_error(redis_store(server.port))
        assert "NOAUTH" in message
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_redis_newer_layout_is_refused(shared_redis: RedisServer) -> None:
    client = redis.Redis(port=shared_redis.port)
    client.set("future:schema", LAYOUT_VERSION + 1)
    client.set("odd:schema", "banana")
    client.close()
    message = await open_error(redis_store(shared_redis.port, prefix="future:"))
    assert f"layout version {LAYOUT_VERSION + 1} is newer" in message
    message = await open_error(redis_store(shared_redis.port, prefix="odd:"))
    assert "not a layout version" in message


@pytest_twisted.ensureDeferred
async def test_redis_stopped_then_back(redis_server: RedisServer) -> None:
    store = redis_store(redis_server.port, timeout=2)
    await store.open()
    await store.put("vm", "k", {"v": 1})
    redis_server.stop()
    started = time.monotonic()
    for call in (store.get("vm", "k"), store.put("vm", "k", {"v": 2}), store.list("vm")):
        e = await failure_of(call)
        assert isinstance(e, StoreUnavailable), repr(e)
        assert e.status == 503 and "redis://127.0.0.1" in str(e)
    assert time.monotonic() - started < 3 * store.timeout
    redis_server.start()
    # No persistence: the server comes back empty; the store works without being opened again.
    assert await until_available(store) is None
    await store.put("vm", "k", {"v": 3})
    assert await store.get("vm", "k") == {"v": 3}
    await store.close()


@pytest_twisted.ensureDeferred
async def test_redis_watchers_hear_again_after_an_outage(redis_server: RedisServer) -> None:
    store = redis_store(redis_server.port, timeout=0.5)
    heard: list[str | None] = []
    store.watch("vm", heard.append)
    await store.open()
    await wait_for(lambda: heard == [None], "subscribed", 10)
    redis_server.stop()
    redis_server.start()
    # Back: told that anything may have changed, then hearing writes again.
    await wait_for(lambda: heard == [None, None], "subscribed again", 20)
    other = redis_store(redis_server.port, prefix=store.prefix)
    await other.open()
    await other.put("vm", "k", {"v": 1})
    await wait_for(lambda: heard[-1:] == ["k"], "heard", 10)
    await other.close()
    await store.close()


@pytest_twisted.ensureDeferred
async def test_redis_that_does_not_answer_times_out(redis_server: RedisServer) -> None:
    store = redis_store(redis_server.port, timeout=0.5)
    await store.open()
    await store.put("vm", "k", {"v": 1})
    assert redis_server.child is not None
    redis_server.child.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        calls = [store.get("vm", "k"), store.replace("vm", "k", {"v": 1}, {"v": 2})]
        first = await failure_of(calls[0])
        assert isinstance(first, StoreUnavailable) and "no answer within 0.5 s" in str(first), repr(first)
        assert isinstance(await failure_of(calls[1]), StoreUnavailable)
        elapsed = time.monotonic() - started
        assert elapsed < 4 * store.timeout, elapsed
        e = await failure_of(store.get("vm", "k"))
        assert isinstance(e, StoreUnavailable), "a new connection to a stopped server: no answer either"
    finally:
        redis_server.child.signal(signal.SIGCONT)
    assert await until_available(store) in ({"v": 1}, {"v": 2})
    await store.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_hears_of_another_connections_writes(tmp_path: Path) -> None:
    """Workers (or daemons) sharing a file: a write through one is heard by the other's watchers."""
    from twisted.internet.task import deferLater

    path = str(tmp_path / "records.db")
    writer, watcher = SQLiteRecords(path, reactor), SQLiteRecords(path, reactor, change_poll=0.05)
    heard: list[str | None] = []
    watcher.watch("forgotten_node", heard.append)
    await writer.open()
    await watcher.open()
    try:
        await deferLater(reactor, 0.2, lambda: None)
        assert heard == []  # nothing written by another connection yet
        await watcher.put("forgotten_node", "own", {})
        assert heard == ["own"]
        await writer.put("forgotten_node", "n1", {})
        deadline = reactor.seconds() + 5
        while None not in heard:
            assert reactor.seconds() < deadline, heard
            await deferLater(reactor, 0.02, lambda: None)
        assert heard[:2] == ["own", None]
    finally:
        await watcher.close()
        await writer.close()
