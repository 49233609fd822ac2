"""
A connection to one Redis endpoint that comes back by itself after the
server goes away (retrying every few tens of milliseconds, at most once a
second), authenticating and selecting the endpoint's database each time.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.core0sim.resp import Chunk, RespProtocol

log = Logger()

#: Writes kept while the server is away; older ones are dropped.
MAX_BUFFERED_WRITES = 100_000

RETRY_INITIAL_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0


@dataclass(frozen=True)
class Endpoint:
    """Where a node's Redis is: host, port, database index, password."""

    host: str
    port: int
    db: int = 0
    password: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


class _LinkProtocol(RespProtocol):
    link: RedisLink

    def connectionMade(self) -> None:
        super().connectionMade()
        self.link._made(self)


class _LinkFactory(Factory):
    noisy = False

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def buildProtocol(self, addr: Any) -> _LinkProtocol:
        protocol = _LinkProtocol()
        protocol.factory = self
        protocol.link = self.link
        return protocol


class RedisLink(Service):
    """
    One connection to an endpoint, reconnected whenever it drops.  A link
    that buffers writes keeps what it could not write, and what the lost
    connection had not acknowledged, and writes it once connected again
    (at least once: a connection lost while Redis itself stays up may
    repeat a write).

    :ivar current: the ready connection (authenticated, database selected),
        or ``None`` while there is none.
    """

    def __init__(self, endpoint: Endpoint, reactor: Any, buffer_writes: bool = False,
                 identify: bool = False) -> None:
        self.endpoint = endpoint
        self.reactor = reactor
        self.buffer_writes = buffer_writes
        self.identify = identify
        self.current: RespProtocol | None = None
        self._buffer: deque[Chunk] = deque()
        self._ready_waiters: list[Deferred[RespProtocol]] = []
        self._client = ClientService(
            TCP4ClientEndpoint(reactor, endpoint.host, endpoint.port, timeout=5),
            _LinkFactory(self),
            retryPolicy=backoffPolicy(
                RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS, 1.5,
                jitter=lambda: random.random() * RETRY_INITIAL_SECONDS,
            ),
            clock=reactor,
        )

    def startService(self) -> None:
        super().startService()
        self._client.startService()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.cancel()
        stopped: Deferred[None] = self._client.stopService()
        return stopped

    def when_ready(self) -> Deferred[RespProtocol]:
        """Fires with the connection once it is ready (at once if it is)."""
        d: Deferred[RespProtocol] = Deferred(lambda d: self._ready_waiters.remove(d))
        if self.current is not None and self.current.connected_:
            d.callback(self.current)
        else:
            self._ready_waiters.append(d)
        return d

    def send(self, chunks: list[Chunk]) -> None:
        """
        Write encoded commands now, or (for a link that buffers writes)
        as soon as the connection is back.

        :param chunks: pairs of encoded commands and their reply count.
        """
        current = self.current
        if current is not None and current.send(chunks):
            return
        if not self.buffer_writes:
            return
        self._buffer.extend(chunks)
        excess = len(self._buffer) - MAX_BUFFERED_WRITES
        if excess > 0:
            log.warn("{endpoint}: Redis away too long, dropping {count} writes",
                     endpoint=str(self.endpoint), count=excess)
            for _ in range(excess):
                self._buffer.popleft()

    # Connection events ----------------------------------------------------

    def _made(self, protocol: RespProtocol) -> None:
        endpoint = self.endpoint
        d = protocol.handshake(endpoint.password, endpoint.db, self.identify)
        d.addCallbacks(lambda _: self._ready(protocol), lambda f: self._refused(protocol, f))
        protocol.lost.addCallback(lambda _: self._lost(protocol))

    def _refused(self, protocol: RespProtocol, failure: Failure) -> None:
        log.warn("{endpoint}: Redis refused AUTH/SELECT: {error}",
                 endpoint=str(self.endpoint), error=str(failure.value))
        if protocol.transport is not None:
            protocol.transport.loseConnection()

    def _ready(self, protocol: RespProtocol) -> None:
        if not protocol.connected_:
            return
        self.current = protocol
        if self._buffer:
            buffered = list(self._buffer)
            self._buffer.clear()
            protocol.send(buffered)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(protocol)

    def _lost(self, protocol: RespProtocol) -> None:
        if self.current is protocol:
            self.current = None
        if self.buffer_writes and protocol.unacknowledged:
            # Written but not answered: Redis may have gone before running
            # them (a restart loses them anyway), so they go again, first.
            self._buffer.extendleft(reversed(protocol.unacknowledged))
