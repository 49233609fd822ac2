"""
A small Redis (RESP2) client protocol for the simulator: pipelined
commands, replies matched in order, and commands sent without waiting
for their replies (the publishing side never needs them).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

CRLF = b"\r\n"

Arg = bytes | str | int
#: Encoded commands and how many replies they get.
Chunk = tuple[bytes, int]


class RedisError(Exception):
    """An error reply (``-ERR ...``) from Redis."""


class _Incomplete(Exception):
    """The buffer does not yet hold a whole reply."""


_INCOMPLETE = _Incomplete()


def encode(*args: Arg) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode("utf-8")
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def parse(buffer: bytes, pos: int) -> tuple[Any, int]:
    """
    The reply starting at ``pos`` and the position after it.

    Bulk strings come back as ``bytes``, nil as ``None``, errors as
    ``RedisError`` instances (returned, not raised).

    :raises _Incomplete: the reply is not all there yet.
    """
    end = buffer.find(CRLF, pos)
    if end < 0:
        raise _INCOMPLETE
    kind = buffer[pos]
    line = buffer[pos + 1:end]
    pos = end + 2
    if kind == 0x24:  # $ bulk string
        length = int(line)
        if length < 0:
            return None, pos
        if len(buffer) < pos + length + 2:
            raise _INCOMPLETE
        return buffer[pos:pos + length], pos + length + 2
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x2B:  # + simple string
        return line.decode("utf-8", "replace"), pos
    if kind == 0x2A:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = parse(buffer, pos)
            items.append(item)
        return items, pos
    if kind == 0x2D:  # - error
        return RedisError(line.decode("utf-8", "replace")), pos
    raise ValueError(f"not a RESP reply: {buffer[pos - len(line) - 3:pos]!r}")


class RespProtocol(Protocol):
    """
    One Redis connection.  ``request`` returns a Deferred for the reply;
    ``send`` writes commands whose replies are only checked for errors.
    Everything written on one connection is answered in order, so a batch
    of ``send`` calls made in one reactor turn leaves in one TCP write.

    :ivar unacknowledged: once the connection is lost, the chunks given to
        ``send`` that Redis had not fully answered (they may not have run).
    """

    def __init__(self) -> None:
        self._buffer = b""
        # Per reply: the request's Deferred; for a chunk, None for each
        # reply but its last, where the chunk itself is.
        self._waiting: deque[Deferred[Any] | Chunk | None] = deque()
        self.connected_ = False
        self.lost: Deferred[None] = Deferred()
        self.unacknowledged: list[Chunk] = []
        #: The connection's ``CLIENT ID``, when asked for.
        self.client_id: int | None = None

    def connectionMade(self) -> None:
        self.connected_ = True

    def request(self, *args: Arg) -> Deferred[Any]:
        """Send one command; the Deferred fires with its reply or fails with ``RedisError``."""
        if not self.connected_:
            return fail(ConnectionLost("not connected"))
        d: Deferred[Any] = Deferred()
        self._waiting.append(d)
        assert self.transport is not None
        self.transport.write(encode(*args))
        return d

    def send(self, chunks: list[Chunk]) -> bool:
        """
        Write encoded commands without waiting for their replies (error
        replies are logged).

        :param chunks: pairs of encoded commands and their reply count.
        :returns: ``False`` when the connection is gone (nothing written).
        """
        if not self.connected_:
            return False
        waiting = self._waiting
        for chunk in chunks:
            if chunk[1] > 1:
                waiting.extend([None] * (chunk[1] - 1))
            waiting.append(chunk)
        assert self.transport is not None
        self.transport.write(b"".join([chunk[0] for chunk in chunks]))
        return True

    def dataReceived(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        size = len(buffer)
        waiting = self._waiting
        while pos < size:
            try:
                reply, pos_after = parse(buffer, pos)
            except _Incomplete:
                break
            except ValueError:
                log.error("unparsable reply from Redis; dropping the connection")
                self._buffer = b""
                assert self.transport is not None
                self.transport.loseConnection()
                return
            pos = pos_after
            if not waiting:
                log.warn("unexpected reply from Redis: {reply!r}", reply=reply)
                continue
            d = waiting.popleft()
            if not isinstance(d, Deferred):
                if isinstance(reply, RedisError):
                    log.warn("Redis refused a write: {error}", error=str(reply))
            elif isinstance(reply, RedisError):
                d.errback(reply)
            else:
                d.callback(reply)
        self._buffer = buffer[pos:] if pos < size else b""

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.connected_ = False
        waiting, self._waiting = self._waiting, deque()
        self.unacknowledged = [d for d in waiting if isinstance(d, tuple)]
        self.lost.callback(None)
        for d in waiting:
            if isinstance(d, Deferred):
                d.errback(Failure(ConnectionLost(str(reason.value))))

    def handshake(self, password: str | None, db: int, identify: bool = False) -> Deferred[None]:
        """
        AUTH (when a password is set), SELECT (when db is not 0) and, with
        ``identify``, CLIENT ID (kept in ``client_id``; servers without it
        leave it ``None``).
        """
        steps: list[Deferred[Any]] = []
        if password:
            steps.append(self.request(b"AUTH", password))
        if db:
            steps.append(self.request(b"SELECT", db))
        if identify:
            steps.append(self.request(b"CLIENT", b"ID").addCallbacks(
                self._identified, lambda f: f.trap(RedisError) and None))
        if not steps:
            return succeed(None)
        return gatherResults(steps, consumeErrors=True).addCallback(lambda _: None)

    def _identified(self, client_id: int) -> None:
        self.client_id = client_id
