"""
Records in one SQLite file (``sqlite:///PATH``): they survive the daemon,
and the daemons of one machine can share them.

Threading.  Every SQLite call (open, each statement, the commit and its
``fsync``, close) runs in one thread owned by the store, a Twisted
``ThreadPool`` of exactly one worker, and the Deferred fires on the reactor
once the call has returned there; the reactor thread never touches the
file.  One thread serialises the calls of a store, so its one connection is
never used by two threads at once.  ``twisted.enterprise.adbapi`` would run
the statements in a pool thread too, but its ``close`` closes the
connections in the calling thread, and closing SQLite's last connection to
a WAL file checkpoints the log into the database: disk I/O on the reactor.
Here the close runs in the worker as well; ``close`` then joins a worker
that has nothing left to do.

The file.  Write-ahead logging (readers do not block the writer), and
``synchronous=FULL``: the log is synced at every commit, so a write whose
Deferred has fired survives a crash of the process and a power loss alike
(``NORMAL`` would lose the last commits on a power loss).  The connection is
in autocommit mode: a single statement is its own transaction, and a
compare-and-set is one explicit ``BEGIN IMMEDIATE`` transaction, which takes
the write lock before reading, so that two stores on the same file (two
daemons) cannot both win.  A store waiting for another's write lock waits at
most ``busy_timeout`` seconds, then the call fails with ``StoreUnavailable``.

The schema: one table of records, ``records(seq, kind, key, value)`` with
``seq`` the rowid (a new key gets a larger one than every key present, an
overwrite keeps it: the order of first writes) and ``value`` the record as
canonical JSON text; and ``rpoold_schema(version)``, one row.  ``open``
creates both in an empty file, and migrates an older file to this code's
version (``MIGRATIONS``, in one transaction); a newer file, a file that is
not SQLite, or an SQLite database that is not a record store are each a
``StoreError`` naming the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from rpoold.events import Event, EventList, IEventLog, TailListener, event_from, now
from rpoold.records import IRecords, Record, StoreError, StoreUnavailable, Watchers
from rpoold.stores.encoding import decode, encode, normal

log = Logger()

T = TypeVar("T")

#: The table that says a file is a record store, and at which version.
VERSION_TABLE = "rpoold_schema"

#: Each entry takes the schema from the version of its index to the next
#: one: ``MIGRATIONS[0]`` makes version 1 in an empty file.  A change of the
#: schema appends an entry and never edits one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE records ("
        " seq INTEGER PRIMARY KEY,"
        " kind TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " UNIQUE (kind, key))",
    ),
    # The event log: ids from AUTOINCREMENT are never reused, even once
    # the oldest events are trimmed away.
    (
        "CREATE TABLE events ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " time REAL NOT NULL,"
        " event TEXT NOT NULL)",
        "CREATE INDEX events_time ON events (time)",
    ),
)

#: Most events read in one go by the tail.
TAIL_BATCH = 1000

_SQLITE_HEADER = b"SQLite format 3\x00"

_UPSERT = ("INSERT INTO records (kind, key, value) VALUES (?, ?, ?)"
           " ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, its lock taken at once; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@implementer(IRecords, IEventLog)
class SQLiteRecords:
    """
    Records and events in the SQLite file at ``path`` (created when missing).

    Events are appended in batches: the appends made while one batch is
    being committed go together in the next transaction (one ``fsync`` for
    them all).  The tail reads the events after the last one it delivered
    every ``event_poll`` seconds, and at once after an append of its own.

    :param path: the file; its directory must exist.
    :param reactor: where the Deferreds fire.
    :param busy_timeout: seconds a call may wait for another connection's
        write lock on the file.
    :param event_poll: seconds between two looks for other daemons' events.
    :param change_poll: seconds between two looks at whether another
        connection (another worker or daemon on the file) committed since
        (``PRAGMA data_version``); when one did, every watcher hears that
        anything may have changed (``IRecords.watch``).  Looked at only
        while something watches.
    """

    #: The schema's history; ``len(migrations)`` is this code's version.
    migrations: Sequence[Sequence[str]] = MIGRATIONS

    def __init__(self, path: str, reactor: Any, busy_timeout: float = 5.0,
                 event_poll: float = 0.1, change_poll: float = 1.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.event_poll = event_poll
        self.change_poll = change_poll
        self._others: LoopingCall | None = None
        self._data_version: int | None = None
        #: Appends waiting for the next batch, and whether one is being committed.
        self._batch: list[tuple[float, str, Deferred[Event]]] = []
        self._committing = False
        #: The tail: its listeners, the last id delivered, the next look.
        self._tails: list[TailListener] = []
        self._polling = False
        self._poll_again = False
        self._next_poll: Any = None
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self._conn: sqlite3.Connection | None = None
        self._shutdown_trigger: Any = None
        self._watchers = Watchers()
        #: Who waits for the close under way.
        self._closing: list[Deferred[None]] | None = None

    @property
    def version(self) -> int:
        """The schema version this code writes."""
        return len(self.migrations)

    # Opening and closing -----------------------------------------------------------------

    def open(self) -> Deferred[None]:
        if self._pool is not None:
            return succeed(None) if self._conn is not None else fail(
                StoreError(f"record store {self.path}: being opened or closed already"))
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=f"records {self.path}")
        self._pool.start()
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            "during", "shutdown", self._close_at_shutdown)
        opened: Deferred[tuple[sqlite3.Connection, int]] = deferToThreadPool(
            self._reactor, self._pool, self._connect)

        def ready(result: tuple[sqlite3.Connection, int]) -> None:
            self._conn, found = result
            self._watch_others()
            if found == 0:
                log.info("record store {path}: created (schema version {version})",
                         path=self.path, version=self.version)
            elif found < self.version:
                log.info("record store {path}: schema migrated from version {found} to {version}",
                         path=self.path, found=found, version=self.version)

        def failed(failure: Failure) -> Failure:
            self._stop_pool()
            if not failure.check(StoreError):
                return Failure(StoreError(f"record store {self.path}: {failure.getErrorMessage()}"))
            return failure

        return opened.addCallbacks(ready, failed)

    def check_at_start(self) -> None:
        """Before the reactor runs: open the file, check it, create or migrate its schema."""
        conn, _ = self._connect()
        conn.close()

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        """In the worker: open the file, check it, create or migrate the schema."""
        self._check_file()
        try:
            # The one worker thread makes, uses and closes the connection, one
            # call at a time; not checking the thread only spares relying on
            # the pool never replacing its worker.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"record store {self.path}: cannot open: {e}") from e
        try:
            self._identify(conn)  # before changing anything in a file that may be someone else's
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"record store {self.path}: cannot use write-ahead logging "
                                 f"(journal mode stays {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            found = self._migrate(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"record store {self.path}: not a usable SQLite database ({e})") from e
        except BaseException:
            conn.close()
            raise
        return conn, found

    def _check_file(self) -> None:
        if os.path.isdir(self.path):
            raise StoreError(f"record store {self.path}: is a directory")
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            raise StoreError(f"record store {self.path}: directory {directory} does not exist")
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreError(f"record store {self.path}: cannot read: {e.strerror}") from e
        if header and header != _SQLITE_HEADER:
            raise StoreError(f"record store {self.path}: not an SQLite database")

    def _identify(self, conn: sqlite3.Connection) -> int | None:
        """
        :returns: the schema version of the file, ``None`` when it is empty.
        :raises StoreError: it is someone else's database, or newer than this code.
        """
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if VERSION_TABLE not in tables:
            if tables:
                raise StoreError(
                    f"record store {self.path}: an SQLite database but not a record store "
                    f"(no {VERSION_TABLE} table; tables: {', '.join(sorted(tables))})")
            return None
        rows = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall()
        if len(rows) != 1 or not isinstance(rows[0][0], int):
            raise StoreError(f"record store {self.path}: {VERSION_TABLE} does not hold one version")
        found: int = rows[0][0]
        if found > self.version:
            raise StoreError(
                f"record store {self.path}: schema version {found} is newer than this "
                f"rpoold's ({self.version}); run the rpoold that wrote it")
        return found

    def _migrate(self, conn: sqlite3.Connection) -> int:
        """:returns: the version the file had (0: it was empty)."""
        with _transaction(conn):
            # Again, under the write lock: another daemon may have been quicker.
            found = self._identify(conn)
            if found is None:
                conn.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
                found = 0
                conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
            for step in self.migrations[found:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"UPDATE {VERSION_TABLE} SET version = ?", (self.version,))
        return found

    def _watch_others(self) -> None:
        if self._others is None and self._watchers.kinds() and self._conn is not None:
            self._others = LoopingCall(self._look_at_others)
            self._others.clock = self._reactor
            self._others.start(self.change_poll, now=True).addErrback(
                lambda failure: log.failure("record store {path}: watching other writers failed",
                                            failure, path=self.path))

    def _look_at_others(self) -> Deferred[None] | None:
        if self._conn is None or self._closing is not None:
            return None

        def seen(version: int) -> None:
            if self._data_version is not None and version != self._data_version:
                self._watchers.tell_all(None)
            self._data_version = version

        def away(failure: Failure) -> None:
            failure.trap(StoreUnavailable)

        return self._run(_data_version).addCallbacks(seen, away)

    def close(self) -> Deferred[None]:
        self._tails.clear()
        if self._next_poll is not None and self._next_poll.active():
            self._next_poll.cancel()
        self._next_poll = None
        others, self._others = self._others, None
        if others is not None and others.running:
            others.stop()
        done: Deferred[None] = Deferred()
        if self._closing is not None:
            self._closing.append(done)
            return done
        conn, self._conn = self._conn, None
        if conn is None or self._pool is None:
            self._stop_pool()
            return succeed(None)
        self._closing = [done]

        def stopped(result: Failure | None) -> None:
            self._stop_pool()
            if isinstance(result, Failure):
                log.failure("record store {path}: closing failed", result, path=self.path)
            waiting, self._closing = self._closing or [], None
            for waiter in waiting:
                waiter.callback(None)

        # After every call already queued; the worker then has nothing left to do.
        deferToThreadPool(self._reactor, self._pool, conn.close).addBoth(stopped)
        return done

    def _close_at_shutdown(self) -> Deferred[None]:
        self._shutdown_trigger = None
        return self.close()

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None

    # Calls -------------------------------------------------------------------------------

    def _run(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run ``work(connection, *args)`` in the worker; SQLite's errors become ``StoreUnavailable``."""
        conn, pool = self._conn, self._pool
        if conn is None or pool is None or self._closing is not None:
            return fail(StoreUnavailable(f"record store {self.path}: not open"))
        return deferToThreadPool(self._reactor, pool, work, conn, *args).addErrback(self._unavailable)

    def _unavailable(self, failure: Failure) -> Failure:
        if failure.check(sqlite3.Error):
            log.warn("record store {path}: {error}", path=self.path, error=failure.getErrorMessage())
            return Failure(StoreUnavailable(f"record store {self.path}: {failure.getErrorMessage()}"))
        return failure

    def watch(self, kind: str, changed: Callable[[str | None], None]) -> None:
        """
        Hear of this store object's writes at once, and within
        ``change_poll`` seconds that another connection wrote (``None``).
        """
        self._watchers.add(kind, changed)
        self._watch_others()

    def _told(self, result: T, kind: str, key: str, when: object) -> T:
        """Tell the watchers of ``kind`` of a write that answered ``when`` (``None``: any answer)."""
        if when is None or result == when:
            self._watchers.tell(kind, key)
        return result

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        return self._run(_get, kind, key)

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        try:
            text = encode(record)
        except (TypeError, ValueError) as e:
            return fail(e)
        return self._run(_put, kind, key, text).addCallback(self._told, kind, key, None)

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        return self._run(_delete, kind, key).addCallback(self._told, kind, key, True)

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        try:
            text = encode(record)
        except (TypeError, ValueError) as e:
            return fail(e)
        return self._run(_add, kind, key, text).addCallback(self._told, kind, key, True)

    def replace(self, kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        # Both are copied now: the caller may change its dicts while the worker runs.
        try:
            was = normal(expected)
            text = encode(record) if record is not None else None
        except (TypeError, ValueError) as e:
            return fail(e)
        return self._run(_replace, kind, key, was, text).addCallback(self._told, kind, key, True)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        return self._run(_list, kind, prefix)

    # IEventLog ---------------------------------------------------------------------------

    def append(self, event_type: str, resource: str, data: Mapping[str, Any]) -> Deferred[Event]:
        try:
            text = encode({"type": event_type, "resource": resource, "data": dict(data)})
        except (TypeError, ValueError) as e:
            return fail(e)
        done: Deferred[Event] = Deferred()
        self._batch.append((now(), text, done))
        if not self._committing:
            self._commit_batch()
        return done

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._committing = True

        def committed(result: EventList | Failure) -> None:
            self._committing = False
            for index, (_, _, done) in enumerate(batch):
                if isinstance(result, Failure):
                    done.errback(result)
                else:
                    done.callback(result[index])
            if self._batch:
                self._commit_batch()
            if isinstance(result, list):
                self._poll_now()

        self._run(_append_events, [(when, text) for when, text, _ in batch]).addBoth(committed)

    def read(self, after: int, limit: int) -> Deferred[EventList]:
        return self._run(_read_events, after, limit)

    def bounds(self) -> Deferred[tuple[int, int]]:
        return self._run(_event_bounds)

    def trim(self, max_age: float, max_count: int) -> Deferred[int]:
        return self._run(_trim_events, now() - max_age, max_count)

    def tail(self, after: int, deliver: Callable[[Event], None]) -> None:
        self._tails.append(TailListener(after, deliver))
        self._poll_now()

    def _poll_now(self) -> None:
        if not self._tails:
            return
        if self._polling:
            self._poll_again = True
            return
        if self._next_poll is not None and self._next_poll.active():
            self._next_poll.cancel()
        self._next_poll = None
        self._polling = True
        after = min(t.after for t in self._tails)
        self._run(_read_events, after, TAIL_BATCH).addBoth(self._polled)

    def _polled(self, result: EventList | Failure) -> None:
        self._polling = False
        if isinstance(result, list):
            for event in result:
                for tail in list(self._tails):
                    tail.offer(event)
            full = len(result) == TAIL_BATCH
        else:
            full = False
        if not self._tails or self._closing is not None or self._conn is None:
            return
        if full or self._poll_again:
            self._poll_again = False
            self._poll_now()
        else:
            self._next_poll = self._reactor.callLater(self.event_poll, self._poll_now)


# What runs in the worker ------------------------------------------------------------------

def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _get(conn: sqlite3.Connection, kind: str, key: str) -> Record | None:
    row = conn.execute("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return None if row is None else decode(row[0])


def _put(conn: sqlite3.Connection, kind: str, key: str, text: str) -> None:
    conn.execute(_UPSERT, (kind, key, text))


def _delete(conn: sqlite3.Connection, kind: str, key: str) -> bool:
    return conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key)).rowcount > 0


def _add(conn: sqlite3.Connection, kind: str, key: str, text: str) -> bool:
    cursor = conn.execute("INSERT INTO records (kind, key, value) VALUES (?, ?, ?)"
                          " ON CONFLICT (kind, key) DO NOTHING", (kind, key, text))
    return cursor.rowcount == 1


def _replace(conn: sqlite3.Connection, kind: str, key: str, expected: Record | None,
             text: str | None) -> bool:
    with _transaction(conn):
        row = conn.execute("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if (decode(row[0]) if row is not None else None) != expected:
            return False
        if text is None:
            conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
        else:
            conn.execute(_UPSERT, (kind, key, text))
    return True


def _list(conn: sqlite3.Connection, kind: str, prefix: str) -> list[tuple[str, Record]]:
    rows = conn.execute("SELECT key, value FROM records WHERE kind = ? AND substr(key, 1, ?) = ?"
                        " ORDER BY seq", (kind, len(prefix), prefix))
    return [(key, decode(value)) for key, value in rows]


def _append_events(conn: sqlite3.Connection, rows: list[tuple[float, str]]) -> list[Event]:
    events = []
    with _transaction(conn):
        for when, text in rows:
            cursor = conn.execute("INSERT INTO events (time, event) VALUES (?, ?)", (when, text))
            assert cursor.lastrowid is not None
            events.append(event_from(cursor.lastrowid, when, decode(text)))
    return events


def _read_events(conn: sqlite3.Connection, after: int, limit: int) -> list[Event]:
    rows = conn.execute("SELECT id, time, event FROM events WHERE id > ? ORDER BY id LIMIT ?",
                        (after, max(0, limit)))
    return [event_from(event_id, when, decode(text)) for event_id, when, text in rows]


def _event_bounds(conn: sqlite3.Connection) -> tuple[int, int]:
    first, last = conn.execute("SELECT MIN(id), MAX(id) FROM events").fetchone()
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    appended = int(row[0]) if row is not None else 0
    last = max(int(last or 0), appended)
    return (int(first) if first is not None else last + 1), last


def _trim_events(conn: sqlite3.Connection, cutoff: float, max_count: int) -> int:
    with _transaction(conn):
        gone = conn.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
        gone += conn.execute(
            "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (max_count,)).rowcount
    return int(gone)
