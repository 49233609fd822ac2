"""
Records in Redis (``redis://HOST:PORT/DB``): shared by the daemons of a
pool, as durable as that Redis is made (``appendonly yes``).

The layout, every key under the store's ``prefix`` (``rpoold:``):

- ``<prefix>records:<kind>``, a hash: record key -> the record as canonical
  JSON text;
- ``<prefix>order:<kind>``, a sorted set: record key -> its sequence number,
  so that ``list`` answers in the order of first writes (an overwrite keeps
  the number, a delete drops it);
- ``<prefix>seq``, the counter the sequence numbers come from;
- ``<prefix>schema``, the version of this layout (``open`` writes it into an
  empty Redis and refuses a newer one).

Atomicity: every write and ``list`` is one Lua script (``EVAL``, then
``EVALSHA``), which Redis runs alone, so the hash and the sorted set never
disagree, ``add`` is a ``HSETNX`` and ``replace`` compares and writes with
no other client in between.  ``replace`` compares records as values (as
``MemoryRecords`` does): the script compares texts and, when they differ,
answers the text it found; if that text reads as the expected record (the
same value spelled otherwise, ``1.0`` for ``1``) the script runs again
against that text.  One hash per kind keeps a kind's records under two
keys; the scripts name every key they touch, but the store is not made for
Redis Cluster (a kind's two keys would need one hash slot).

Connection: one connection at a time, opened when a call needs one and
shared by every call (Redis answers in order; the calls are pipelined).
Every call has one deadline, ``timeout`` seconds for connecting and
answering together; a call that misses it fails with ``StoreUnavailable``
and closes the connection (a server that does not answer in time is not
trusted with the next command).  There is no reconnection loop: the next
call after a lost connection opens a new one, so the store works again at
the first call after Redis comes back.  A write that fails with
``StoreUnavailable`` may or may not have been applied.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import txredisapi
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.error import ConnectError
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from rpoold.errors import TIMEOUTS
from rpoold.events import Event, EventList, IEventLog, TailListener, event_from, now
from rpoold.records import IRecords, Record, StoreError, StoreUnavailable, Watchers
from rpoold.stores.encoding import decode, encode, normal

log = Logger()

T = TypeVar("T")

#: The version of the key layout above.
LAYOUT_VERSION = 1

#: How often ``replace`` runs again when it finds the expected record spelled otherwise.
_REPLACE_ATTEMPTS = 5

# KEYS: schema. ARGV: this code's version. Writes the version into an empty
# store; answers the one found.
_SCHEMA = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

# Every write publishes the key it changed on the kind's channel (the
# last ARGV), for the daemons that watch the kind.

# KEYS: records, order, seq. ARGV: key, value, channel.
_PUT = """
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"""

# KEYS: records, order, seq. ARGV: key, value, channel.
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"""

# KEYS: records, order. ARGV: key, channel.
_DELETE = """
redis.call('ZREM', KEYS[2], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return removed
"""

# KEYS: records, order, seq. ARGV: key, expected value ('' for none), new
# value ('' to delete), channel.  Answers {1, ''} when written, {0, found} when the
# value found ('' for none) is not the expected text.
_REPLACE = """
local found = redis.call('HGET', KEYS[1], ARGV[1])
if not found then
  found = ''
end
if found ~= ARGV[2] then
  return {0, found}
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return {1, ''}
"""

# KEYS: records, order. ARGV: prefix. Answers key, value, key, value, ...
# in the order of first writes.
_LIST = """
local out = {}
local prefix = ARGV[1]
for _, key in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if string.sub(key, 1, #prefix) == prefix then
    out[#out + 1] = key
    out[#out + 1] = redis.call('HGET', KEYS[1], key)
  end
end
return out
"""


# The event log: a stream whose entry ids are ``<event id>-0``, the event
# ids coming from a counter in the same script, so that they are integers
# with no gap.  KEYS: stream, counter. ARGV: time, event JSON.
_APPEND = """
local n = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], string.format('%d-0', n), 't', ARGV[1], 'e', ARGV[2])
return n
"""

# KEYS: stream, counter. Answers {first id or 0, last id}.
_BOUNDS = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if #first == 0 then
  return {last + 1, last}
end
return {tonumber(string.match(first[1][1], '^(%d+)')), last}
"""

# KEYS: stream. ARGV: cutoff time, most entries kept. Answers how many went.
_TRIM = """
local gone = redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', ARGV[2])
while true do
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
  if #head == 0 then break end
  local old = nil
  for _, entry in ipairs(head) do
    if tonumber(entry[2][2]) < tonumber(ARGV[1]) then old = entry[1] else break end
  end
  if old == nil then break end
  local n = tonumber(string.match(old, '^(%d+)'))
  gone = gone + redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', n + 1))
  if old ~= head[#head][1] then break end
end
return gone
"""

#: Most events one read of the tail takes; how long it blocks (ms).
_TAIL_COUNT = 1000
_TAIL_BLOCK_MS = 1000


def _events_of(entries: Any) -> list[Event]:
    """The events of XRANGE / XREAD entries (``[[id, [field, value, ...]], ...]``)."""
    events = []
    for entry_id, fields in entries or []:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        events.append(event_from(int(str(entry_id).split("-")[0]), float(values["t"]),
                                 decode(values["e"])))
    return events


class _SetupFailed(Exception):
    """The connection opened but the server refused its password or database."""


class _FactoryStub:
    """What txredisapi's protocol calls on its factory while it sets up a connection."""

    isLazy = False

    def __init__(self) -> None:
        self.error: str | None = None

    def stopTrying(self) -> None:
        pass

    def connectionError(self, why: str) -> None:
        self.error = why


class _ErrorReply(Exception):
    """An error reply to a start-up check's command."""


def _command(args: tuple[str, ...]) -> bytes:
    """One command in the Redis protocol's wire form."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _reply(replies: Any) -> Any:
    """One reply read from a blocking socket file (the start-up check's)."""
    line = replies.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("the connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise _ErrorReply(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else replies.read(size + 2)[:-2].decode("utf-8", "replace")
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_reply(replies) for _ in range(size)]
    return rest.decode("utf-8", "replace")


class _Connection(txredisapi.RedisProtocol):  # type: ignore[misc]
    """The store's connection (txredisapi's protocol, outside of txredisapi's pools)."""


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """The store's connection that hears of the writes to the kinds watched."""

    heard: Callable[[str, str], None] = staticmethod(lambda channel, key: None)

    def messageReceived(self, pattern: Any, channel: str, message: str) -> None:
        self.heard(channel, message)


@implementer(IRecords, IEventLog)
class RedisRecords:
    """
    Records and events in the Redis at ``host:port``, database ``db``.

    Events are a stream, ``<prefix>events``, its entry ids ``<event id>-0``
    (the event ids from the counter ``<prefix>events:seq``); the tail reads
    it with a blocking ``XREAD`` on a connection of its own, so every
    daemon on this Redis hears every event, in order, and goes on from the
    last one it heard after a lost connection.

    :param password: ``AUTH`` with it (and ``username``, Redis 6 ACLs).
    :param prefix: the start of every key the store uses.
    :param timeout: seconds one call may take, connecting included.
    :param reactor: for connecting and for the deadlines.
    """

    def __init__(self, host: str, port: int, reactor: Any, *, db: int = 0, password: str | None = None,
                 username: str | None = None, prefix: str = "rpoold:", timeout: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.db = db
        self.prefix = prefix
        self.timeout = timeout
        self._password = password
        self._username = username
        self._reactor = reactor
        #: Where the store is, for messages (never the password).
        self.where = f"redis://{host if ':' not in host else f'[{host}]'}:{port}/{db}"
        self._connection: _Connection | None = None
        self._connecting: Deferred[_Connection] | None = None
        self._waiting: list[Deferred[_Connection]] = []
        #: The connection being set up, and the attempt to reach the server.
        self._setting_up: tuple[_Connection, Deferred[Any]] | None = None
        self._open = False
        #: Why the last call failed, until one succeeds (a failure is logged when it starts).
        self._down: str | None = None
        #: ``watch``: callbacks by kind, the subscribed connection, the next attempt to make it.
        self._watchers = Watchers()
        self._subscriber: _Subscriber | None = None
        self._listening = False
        self._relisten: Any = None
        #: The event tail: its listeners, the last id heard, its connection, its next attempt.
        self._tails: list[TailListener] = []
        self._tail_conn: _Connection | None = None
        self._tail_running = False
        self._tail_retry: Any = None

    # Keys --------------------------------------------------------------------------------

    def _channel(self, kind: str) -> str:
        """Where the writes of ``kind`` are announced (``watch``)."""
        return f"{self.prefix}changed:{kind}"

    def _keys(self, kind: str) -> list[str]:
        """The records hash, the order set and the sequence counter of ``kind``."""
        return [f"{self.prefix}records:{kind}", f"{self.prefix}order:{kind}", f"{self.prefix}seq"]

    # Opening and closing -----------------------------------------------------------------

    def open(self) -> Deferred[None]:
        self._open = True

        def check(conn: _Connection) -> Deferred[None]:
            return conn.eval(_SCHEMA, [f"{self.prefix}schema"], [str(LAYOUT_VERSION)]).addCallback(
                self._check_version)

        def failed(failure: Failure) -> Failure:
            self._open = False
            self._drop()
            if failure.check(StoreUnavailable):
                return Failure(StoreError(failure.getErrorMessage()))
            return failure

        def opened(_: Any) -> None:
            self._listen()

        return self._call("open", check).addCallbacks(opened, failed)

    def _check_version(self, found: Any) -> None:
        """:raises StoreError: the layout found is not ours, or newer than this code."""
        try:
            version = int(found)
        except (TypeError, ValueError):
            raise StoreError(
                f"record store {self.where}: {self.prefix}schema holds {found!r}, "
                f"not a layout version (is prefix {self.prefix!r} someone else's?)") from None
        if version > LAYOUT_VERSION:
            raise StoreError(f"record store {self.where}: layout version {version} is newer than "
                             f"this rpoold's ({LAYOUT_VERSION}); run the rpoold that wrote it")

    def check_at_start(self) -> None:
        """
        Before the reactor runs (blocking, at most ``timeout`` seconds per
        step): reach the server, log in, choose the database and check the
        layout version, as ``open`` does.
        """
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                replies = sock.makefile("rb")

                def ask(*args: str) -> Any:
                    sock.sendall(_command(args))
                    return _reply(replies)

                if self._password is not None:
                    ask("AUTH", *([self._username] if self._username else []), self._password)
                if self.db:
                    ask("SELECT", str(self.db))
                found = ask("EVAL", _SCHEMA, "1", f"{self.prefix}schema", str(LAYOUT_VERSION))
        except (OSError, _ErrorReply) as e:
            raise StoreError(f"record store {self.where}: cannot be used: {e}") from None
        self._check_version(found)

    # Watching ----------------------------------------------------------------------------

    def watch(self, kind: str, changed: Callable[[str | None], None]) -> None:
        """
        Hear of every write to ``kind``, by any daemon on this Redis (its
        scripts publish the key on ``<prefix>changed:<kind>``).  While the
        subscription is lost nothing is heard; once it is back, ``changed``
        is called with ``None``: anything may have changed meanwhile.
        """
        first = kind not in self._watchers.kinds()
        self._watchers.add(kind, changed)
        if self._subscriber is not None and first:
            self._subscriber.subscribe(self._channel(kind)).addErrback(lambda _: None)
        elif self._subscriber is None and self._open:
            self._listen()

    def _listen(self) -> None:
        """Open the subscribed connection (again, after a loss), unless one is being made."""
        self._relisten = None
        if self._listening or not self._open or not self._watchers.kinds():
            return
        self._listening = True
        conn = _Subscriber(charset="utf-8", password=self._password or None, username=self._username,
                           dbid=None, convertNumbers=False)
        conn.factory = _FactoryStub()
        conn.heard = self._heard
        endpoint = HostnameEndpoint(self._reactor, self.host, self.port,
                                    timeout=max(1, math.ceil(self.timeout)))

        def connected(_: Any) -> Deferred[Any]:
            return conn.whenConnected().addCallback(
                lambda _: conn.subscribe([self._channel(k) for k in self._watchers.kinds()]))

        def subscribed(_: Any) -> None:
            self._listening = False
            self._subscriber = conn
            conn.whenDisconnected().addCallback(lost)
            # What changed before (or while the subscription was lost) was not heard.
            self._watchers.tell_all(None)

        def lost(_: Any) -> None:
            if self._subscriber is conn:
                self._subscriber = None
            self._again()

        def failed(failure: Failure) -> None:
            self._listening = False
            if conn.transport is not None:
                conn.transport.abortConnection()
            self._again()

        connectProtocol(endpoint, conn).addCallback(connected).addCallbacks(subscribed, failed)

    def _again(self) -> None:
        if self._open and self._relisten is None:
            self._relisten = self._reactor.callLater(self.timeout, self._listen)

    def _heard(self, channel: str, key: str) -> None:
        self._watchers.tell(channel[len(f"{self.prefix}changed:"):], key)

    def close(self) -> Deferred[None]:
        self._open = False
        if self._relisten is not None and self._relisten.active():
            self._relisten.cancel()
        self._relisten = None
        self._tails.clear()
        if self._tail_retry is not None and self._tail_retry.active():
            self._tail_retry.cancel()
        self._tail_retry = None
        tail, self._tail_conn = self._tail_conn, None
        if tail is not None and tail.transport is not None:
            tail.transport.abortConnection()
        subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None and subscriber.transport is not None:
            subscriber.transport.loseConnection()
        conn = self._connection
        gone: Deferred[None] = succeed(None)
        if conn is not None and conn.connected:
            gone = conn.whenDisconnected().addCallback(lambda _: None)
        self._drop()
        return gone

    # The connection ----------------------------------------------------------------------

    def _connect(self) -> Deferred[_Connection]:
        """:returns: Deferred firing with the connection, opened now if there is none."""
        if self._connection is not None and self._connection.connected:
            return succeed(self._connection)
        waiter: Deferred[_Connection] = Deferred(self._waiting.remove)
        self._waiting.append(waiter)
        if self._connecting is None:
            self._connecting = self._new_connection()
            self._connecting.addBoth(self._connected)
        return waiter

    def _connected(self, result: _Connection | Failure) -> None:
        self._connecting = None
        if isinstance(result, _Connection):
            if not self._open:
                result.transport.loseConnection()
                result = Failure(StoreUnavailable(f"record store {self.where}: closed"))
            else:
                self._connection = result
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    def _new_connection(self, shared: bool = True) -> Deferred[_Connection]:
        """
        :param shared: it is the connection the calls share (``_drop``
            aborts it while it is set up); else one of the event tail's.
        """
        conn = _Connection(charset="utf-8", password=self._password or None, username=self._username,
                           dbid=self.db or None, convertNumbers=False)
        conn.factory = _FactoryStub()
        endpoint = HostnameEndpoint(self._reactor, self.host, self.port,
                                    timeout=max(1, math.ceil(self.timeout)))
        result: Deferred[_Connection] = Deferred()

        def ready(_: Any) -> None:
            conn.transport.setTcpNoDelay(True)
            if not result.called:
                result.callback(conn)

        def lost(_: Any) -> None:
            if self._connection is conn:
                self._connection = None
            if not result.called:
                result.errback(_SetupFailed(conn.factory.error or "closed while being set up"))

        def failed(failure: Failure) -> None:
            if not result.called:
                if failure.check(CancelledError):
                    failure = Failure(_SetupFailed("connecting was given up"))
                result.errback(failure)

        def done(outcome: Any) -> Any:
            if shared:
                self._setting_up = None
            return outcome

        conn.whenConnected().addCallback(ready)
        conn.whenDisconnected().addCallback(lost)
        attempt = connectProtocol(endpoint, conn)
        attempt.addErrback(failed)
        if shared:
            self._setting_up = (conn, attempt)
        else:
            def give_up(outcome: Any, timeout: float) -> Any:
                if conn.transport is not None:
                    conn.transport.abortConnection()
                else:
                    attempt.cancel()
                return outcome

            # Bounded like a call: a server that does not answer fails the attempt.
            result.addTimeout(self.timeout, self._reactor, onTimeoutCancel=give_up)
        return result.addBoth(done)

    def _drop(self) -> None:
        """Close the connection and any being set up; the calls waiting for either fail."""
        conn, self._connection = self._connection, None
        if conn is not None and conn.transport is not None:
            conn.transport.abortConnection()
        if self._setting_up is not None:
            pending, attempt = self._setting_up
            if pending.transport is not None:
                pending.transport.abortConnection()
            else:
                attempt.cancel()

    # Calls -------------------------------------------------------------------------------

    def _call(self, what: str, command: Callable[[_Connection], Deferred[T]]) -> Deferred[T]:
        """Run ``command`` on the connection within the deadline; failures become ``StoreUnavailable``."""
        if not self._open:
            return fail(StoreUnavailable(f"record store {self.where}: not open"))
        done = self._connect().addCallback(command)
        done.addTimeout(self.timeout, self._reactor)
        return done.addCallbacks(self._available, self._unavailable, errbackArgs=(what,))

    def _available(self, result: T) -> T:
        if self._down is not None:
            log.info("record store {where}: answering again", where=self.where)
            self._down = None
        return result

    def _unavailable(self, failure: Failure, what: str) -> Failure:
        if failure.check(CancelledError):
            return failure
        if failure.check(*TIMEOUTS):
            self._drop()
            why = f"no answer within {self.timeout:g} s"
        elif failure.check(ConnectError):
            why = f"cannot connect: {failure.getErrorMessage()}"
        elif failure.check(_SetupFailed):
            why = failure.getErrorMessage()
        elif failure.check(txredisapi.ConnectionError):
            why = "connection lost"
        elif failure.check(txredisapi.ResponseError):
            why = f"Redis answered {failure.getErrorMessage()}"
        else:
            return failure
        if self._down is None:
            log.warn("record store {where}: unavailable ({what}: {why})", where=self.where, what=what,
                     why=why)
        self._down = why
        return Failure(StoreUnavailable(f"record store {self.where}: {why}"))

    def get(self, kind: str, key: str) -> Deferred[Record | None]:
        def command(conn: _Connection) -> Deferred[Record | None]:
            found: Deferred[str | None] = conn.execute_command("HGET", self._keys(kind)[0], key)
            return found.addCallback(lambda text: decode(text) if text is not None else None)

        return self._call("get", command)

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[None]:
        try:
            text = encode(record)
        except (TypeError, ValueError) as e:
            return fail(e)
        arguments = [key, text, self._channel(kind)]
        return self._call("put", lambda conn: conn.eval(_PUT, self._keys(kind), arguments)
                          .addCallback(lambda _: None))

    def delete(self, kind: str, key: str) -> Deferred[bool]:
        return self._call("delete", lambda conn: conn.eval(_DELETE, self._keys(kind)[:2],
                                                           [key, self._channel(kind)])
                          .addCallback(lambda removed: removed == 1))

    def add(self, kind: str, key: str, record: Mapping[str, Any]) -> Deferred[bool]:
        try:
            text = encode(record)
        except (TypeError, ValueError) as e:
            return fail(e)
        arguments = [key, text, self._channel(kind)]
        return self._call("add", lambda conn: conn.eval(_ADD, self._keys(kind), arguments)
                          .addCallback(lambda added: added == 1))

    def replace(self, kind: str, key: str, expected: Mapping[str, Any] | None,
                record: Mapping[str, Any] | None) -> Deferred[bool]:
        try:
            was = normal(expected)
            expected_text = encode(expected) if expected is not None else ""
            text = encode(record) if record is not None else ""
        except (TypeError, ValueError) as e:
            return fail(e)

        def attempt(against: str, left: int) -> Deferred[bool]:
            def command(conn: _Connection) -> Deferred[list[Any]]:
                return conn.eval(_REPLACE, self._keys(kind), [key, against, text, self._channel(kind)])

            return self._call("replace", command).addCallback(answered, left)

        def answered(reply: list[Any], left: int) -> bool | Deferred[bool]:
            written, found = int(reply[0]), reply[1]
            if written:
                return True
            if not found or was is None or decode(found) != was or left == 0:
                return False
            # The expected record, spelled otherwise: compare against that spelling.
            return attempt(found, left - 1)

        return attempt(expected_text, _REPLACE_ATTEMPTS)

    def list(self, kind: str, prefix: str = "") -> Deferred[list[tuple[str, Record]]]:
        def pairs(flat: list[str | None]) -> list[tuple[str, Record]]:
            return [(str(flat[i]), decode(text)) for i in range(0, len(flat), 2)
                    if (text := flat[i + 1]) is not None]

        return self._call("list", lambda conn: conn.eval(_LIST, self._keys(kind)[:2], [prefix])
                          .addCallback(pairs))

    # IEventLog ---------------------------------------------------------------------------

    def _event_keys(self) -> tuple[str, str]:
        return f"{self.prefix}events", f"{self.prefix}events:seq"

    def append(self, event_type: str, resource: str, data: Mapping[str, Any]) -> Deferred[Event]:
        try:
            text = encode({"type": event_type, "resource": resource, "data": dict(data)})
        except (TypeError, ValueError) as e:
            return fail(e)
        when = now()
        keys = list(self._event_keys())
        return self._call("append", lambda conn: conn.eval(_APPEND, keys, [repr(when), text])
                          .addCallback(lambda n: event_from(int(n), when, decode(text))))

    def read(self, after: int, limit: int) -> Deferred[EventList]:
        if limit <= 0:
            return succeed([])
        key = self._event_keys()[0]
        return self._call("read", lambda conn: conn.execute_command(
            "XRANGE", key, f"({after}-0", "+", "COUNT", str(limit)).addCallback(_events_of))

    def bounds(self) -> Deferred[tuple[int, int]]:
        def pair(reply: list[Any]) -> tuple[int, int]:
            return int(reply[0]), int(reply[1])

        return self._call("bounds", lambda conn: conn.eval(_BOUNDS, list(self._event_keys()), [])
                          .addCallback(pair))

    def trim(self, max_age: float, max_count: int) -> Deferred[int]:
        arguments = [repr(now() - max_age), str(max(0, max_count))]
        return self._call("trim", lambda conn: conn.eval(_TRIM, [self._event_keys()[0]], arguments)
                          .addCallback(int))

    def tail(self, after: int, deliver: Callable[[Event], None]) -> None:
        self._tails.append(TailListener(after, deliver))
        if not self._tail_running:
            self._tail_running = True
            ensureDeferred(self._follow_tail()).addErrback(
                lambda failure: log.failure("record store {where}: the event tail failed", failure,
                                            where=self.where))

    async def _follow_tail(self) -> None:
        """Read the stream after the last event heard, blocking, for as long as the store is open."""
        key = self._event_keys()[0]
        told = False
        try:
            while self._open and self._tails:
                try:
                    if self._tail_conn is None or not self._tail_conn.connected:
                        self._tail_conn = await self._new_connection(shared=False)
                    conn = self._tail_conn
                    reply = await conn.execute_command(
                        "XREAD", "COUNT", str(_TAIL_COUNT), "BLOCK", str(_TAIL_BLOCK_MS),
                        "STREAMS", key, f"{min(t.after for t in self._tails)}-0")
                except Exception as e:
                    if not self._open:
                        return
                    if not told:
                        log.warn("record store {where}: the event tail lost Redis ({why}); retrying",
                                 where=self.where, why=str(e) or type(e).__name__)
                        told = True
                    tail, self._tail_conn = self._tail_conn, None
                    if tail is not None and tail.transport is not None:
                        tail.transport.abortConnection()
                    pause: Deferred[None] = Deferred()
                    self._tail_retry = self._reactor.callLater(self.timeout, pause.callback, None)
                    await pause
                    continue
                if told:
                    log.info("record store {where}: the event tail hears Redis again", where=self.where)
                    told = False
                for _, entries in reply or []:
                    for event in _events_of(entries):
                        for listener in list(self._tails):
                            listener.offer(event)
        finally:
            self._tail_running = False
