"""
A client of Server-Sent Events streams (``GET /events``, a job's output),
for tests and benchmarks: events as they come, over real HTTP.

    stream = await EventStreamClient.open("http://127.0.0.1:8080", "/events?type=container.*")
    event = await stream.next(timeout=5)          # an SSEEvent: name, id, data (JSON), ...
    events = await stream.take(3, timeout=5)
    stream.close()
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers


@dataclass(frozen=True)
class SSEEvent:
    """
    One event of a stream.

    :ivar name: its ``event:`` (``message`` when none was given).
    :ivar id: its ``id:``, or ``None``.
    :ivar data: its ``data:`` decoded as JSON (the text when it is not JSON).
    """

    name: str
    id: str | None
    data: Any


class _Reader(Protocol):
    def __init__(self, client: EventStreamClient) -> None:
        self.client = client
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.client.received += len(data)
        self.buffer += data
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            self.client._block(block.decode("utf-8"))

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:
        self.client._ended(reason)


class EventStreamClient:
    """One open stream; build it with ``open``."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, tuple[str, ...]] = {}
        self.events: deque[SSEEvent] = deque()
        #: Comment lines received (``: keepalive``).
        self.comments: list[str] = []
        self.received = 0
        self.closed = False
        self._reader: _Reader | None = None
        self._waiting: list[Deferred[None]] = []
        self._pool: HTTPConnectionPool | None = None

    @classmethod
    async def open(cls, base: str, path: str, headers: Mapping[str, str] | None = None,
                   reactor: Any = None) -> EventStreamClient:
        """
        :returns: the stream once its answer's headers are in (whatever the
            status: a refused stream has its body read as events of nothing).
        """
        reactor = reactor or global_reactor
        client = cls()
        client._pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, pool=client._pool)
        sent = Headers({"Accept": ["text/event-stream"]})
        for name, value in (headers or {}).items():
            sent.setRawHeaders(name, [value])
        response = await agent.request(b"GET", (base.rstrip("/") + path).encode(), sent)
        client.status = response.code
        client.headers = {name.decode("latin-1").lower(): tuple(v.decode("latin-1") for v in values)
                          for name, values in response.headers.getAllRawHeaders()}
        client._reader = _Reader(client)
        response.deliverBody(client._reader)
        return client

    def _block(self, block: str) -> None:
        name, event_id, data = "message", None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
        if data:
            text = "\n".join(data)
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            self.events.append(SSEEvent(name, event_id, parsed))
        self._wake()

    def _ended(self, reason: Failure) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    async def _wait(self, timeout: float) -> None:
        d: Deferred[None] = Deferred()
        self._waiting.append(d)

        def over() -> None:
            if not d.called:
                d.callback(None)

        timer = global_reactor.callLater(timeout, over)
        await d
        if timer.active():
            timer.cancel()

    async def next(self, timeout: float = 10.0, accept: Callable[[SSEEvent], bool] | None = None) -> SSEEvent:
        """
        :param accept: skip the events it refuses.
        :returns: the next event (accepted).
        :raises AssertionError: none within ``timeout`` seconds, or the stream ended.
        """
        deadline = global_reactor.seconds() + timeout
        while True:
            while self.events:
                event = self.events.popleft()
                if accept is None or accept(event):
                    return event
            if self.closed:
                raise AssertionError("the stream ended")
            left = deadline - global_reactor.seconds()
            if left <= 0:
                raise AssertionError(f"no event within {timeout:g} s")
            await self._wait(left)

    async def take(self, count: int, timeout: float = 10.0,
                   accept: Callable[[SSEEvent], bool] | None = None) -> list[SSEEvent]:
        """:returns: the next ``count`` events (accepted), within ``timeout`` seconds in all."""
        deadline = global_reactor.seconds() + timeout
        found = []
        for _ in range(count):
            found.append(await self.next(max(0.0, deadline - global_reactor.seconds()), accept))
        return found

    async def ended(self, timeout: float = 10.0) -> None:
        """Wait until the daemon ends the stream. :raises AssertionError: not within ``timeout``."""
        deadline = global_reactor.seconds() + timeout
        while not self.closed:
            left = deadline - global_reactor.seconds()
            if left <= 0:
                raise AssertionError(f"the stream did not end within {timeout:g} s")
            await self._wait(left)

    def close(self) -> None:
        """Disconnect."""
        transport: Any = self._reader.transport if self._reader is not None else None
        if transport is not None:
            transport.stopProducing()
        self.closed = True
        if self._pool is not None:
            self._pool.closeCachedConnections()
