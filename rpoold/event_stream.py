"""
Server-Sent Events (``text/event-stream``): ``GET /events`` and the
streamed output of a job.

``SSEWriter`` writes events to one request and is the request's streaming
producer: when the client does not read fast enough the transport pauses
it, and what is sent meanwhile waits in its buffer, up to ``buffer``
events; beyond that the subscriber has fallen behind and is disconnected
with a last event (``stream.overflow``), so that a slow subscriber never
holds the daemon back.  A comment line every ``keepalive`` seconds keeps
proxies from closing an idle stream; a stream whose credentials expire
ends with ``stream.expired``.

``EventStream`` is one subscriber of the pool's events: it listens to the
hub first, then sends what the log holds after the ``Last-Event-ID`` it
was given (a page at a time, at the client's pace), then the live events,
skipping any it sent already, so that a client that reconnects misses
nothing and sees nothing twice.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from rpoold.errors import RpoolError
from rpoold.events import Event, EventFilter, EventHub, now

log = Logger()

#: Events read from the log at a time while catching up.
PAGE = 500
#: Seconds a stream that has sent its last event waits for the client to
#: read it before its connection is cut.
LINGER = 5.0


class StreamEnded(Exception):
    """The stream was ended (by the daemon: overflow, expiry, shutdown)."""


@implementer(IPushProducer)
class SSEWriter:
    """
    :param request: the request answered with the stream (an ``IRequest``
        that takes a producer: ``twisted.web.server.Request``).
    :param clock: an ``IReactorTime``.
    :param keepalive: seconds between two comment lines (0: none).
    :param buffer: most events kept while the client does not read.
    :param expires: when the credentials expire (seconds since the
        epoch), or ``None``.
    """

    def __init__(self, request: Any, clock: Any, keepalive: float = 15.0, buffer: int = 1000,
                 expires: float | None = None) -> None:
        self.request = request
        self.clock = clock
        self.keepalive = keepalive
        self.buffer = buffer
        self.expires = expires
        self.paused = False
        self.ended = False
        #: Why the stream ended, when the daemon ended it.
        self.reason: str | None = None
        self._held: deque[bytes] = deque()
        self._waiting: list[Deferred[None]] = []
        self._timers: list[Any] = []
        self._wrote_at = 0.0

    # Producer (the transport pauses and resumes it) ------------------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self._held and not self.paused:
            self._write(self._held.popleft())
        self._wake()

    def stopProducing(self) -> None:
        self.ended = True
        self._wake()

    # Writing ---------------------------------------------------------------------------

    def begin(self) -> None:
        request = self.request
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")
        request.registerProducer(self, True)
        self._write(b"retry: 2000\n\n")
        if self.keepalive > 0:
            self._timers.append(self.clock.callLater(self.keepalive, self._keep_alive))
        if self.expires is not None:
            self._timers.append(self.clock.callLater(max(0.0, self.expires - now()), self._expired))

    def _write(self, data: bytes) -> None:
        if self.ended:
            return
        self._wrote_at = self.clock.seconds()
        self.request.write(data)

    def _keep_alive(self) -> None:
        if self.ended:
            return
        if not self.paused and self.clock.seconds() - self._wrote_at >= self.keepalive * 0.9:
            self._write(b": keepalive\n\n")
        self._timers.append(self.clock.callLater(self.keepalive, self._keep_alive))

    def _expired(self) -> None:
        self.end("stream.expired", {"message": "the credentials of this stream expired; "
                                               "reconnect with new ones (Last-Event-ID resumes)"})

    def send(self, name: str, data: Mapping[str, Any], event_id: int | None = None) -> bool:
        """
        Send one event (held while the client does not read).

        :returns: whether it was taken; ``False`` when the buffer is full
            (the caller ends the stream) or the stream has ended.
        """
        if self.ended:
            return False
        lines = []
        if event_id is not None:
            lines.append(f"id: {event_id}")
        lines.append(f"event: {name}")
        lines.append("data: " + json.dumps(data, separators=(",", ":")))
        chunk = ("\n".join(lines) + "\n\n").encode("utf-8")
        if self.paused:
            if len(self._held) >= self.buffer:
                return False
            self._held.append(chunk)
        else:
            self._write(chunk)
        return True

    @property
    def held(self) -> int:
        """Events written but held back (the client does not read)."""
        return len(self._held)

    def writable(self) -> Deferred[None]:
        """:returns: Deferred firing once the client reads again (at once when it does)."""
        d: Deferred[None] = Deferred(lambda d: self._waiting.remove(d) if d in self._waiting else None)
        if not self.paused or self.ended:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    def changed(self) -> Deferred[None]:
        """:returns: Deferred firing at the next wake-up (``wake``, resume, end)."""
        d: Deferred[None] = Deferred(lambda d: self._waiting.remove(d) if d in self._waiting else None)
        if self.ended:
            d.callback(None)
        else:
            self._waiting.append(d)
        return d

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def wake(self) -> None:
        """Wake whoever waits in ``changed`` (something happened)."""
        self._wake()

    def end(self, name: str | None = None, data: Mapping[str, Any] | None = None) -> None:
        """
        End the stream (the daemon's decision), with a last event ``name``:
        it goes after what is held, then the connection is cut once the
        client has read it or after ``LINGER`` seconds.
        """
        if self.ended:
            return
        if name is not None:
            self.reason = name
            chunk = (f"event: {name}\ndata: " + json.dumps(dict(data or {}), separators=(",", ":"))
                     + "\n\n").encode("utf-8")
            self._held.append(chunk)
            # Written to the transport whatever the pause: it holds it with the rest.
            while self._held:
                self._write(self._held.popleft())
        self.ended = True
        channel = getattr(self.request, "channel", None)
        if channel is not None:
            # The connection closes once the answer is out: no request follows on it.
            channel.persistent = False
            transport = getattr(channel, "transport", None)
            if transport is not None and self.paused:
                self.clock.callLater(LINGER, _abort, transport)
        self._wake()

    def close(self) -> None:
        """Let go of the request (its handler then returns; Klein finishes it)."""
        self.ended = True
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()
        if getattr(self.request, "producer", None) is self:
            if getattr(self.request, "channel", None) is not None:
                self.request.unregisterProducer()
            else:
                # The client went away first: its connection is gone with its producer.
                self.request.producer = None
        self._wake()


def _abort(transport: Any) -> None:
    if getattr(transport, "connected", True):
        transport.abortConnection()


class EventStream:
    """
    One ``GET /events`` subscriber.

    :param writer: its ``SSEWriter`` (begun by ``run``).
    :param hub: the daemon's events.
    :param chosen: which events it wants.
    :param last_event_id: the last event it saw (``Last-Event-ID``), or
        ``None`` for the live events only.
    """

    def __init__(self, writer: SSEWriter, hub: EventHub, chosen: EventFilter,
                 last_event_id: int | None) -> None:
        self.writer = writer
        self.hub = hub
        self.chosen = chosen
        self.last_event_id = last_event_id
        self.position = 0
        self._live: deque[Event] = deque()
        self._overflow = False

    def _heard(self, event: Event) -> None:
        if self._overflow:
            return
        self._live.append(event)
        if len(self._live) > self.writer.buffer:
            self._overflow = True
        self.writer.wake()

    def _send(self, event: Event) -> bool:
        self.position = event.id
        if not self.chosen(event):
            return True
        return self.writer.send(event.type, event.view(), event.id)

    def _overflowed(self) -> None:
        self.writer.end("stream.overflow", {
            "message": "this subscriber fell behind the events and was disconnected; "
                       "reconnect with Last-Event-ID to resume",
            "last_event_id": self.position})

    async def run(self) -> None:
        """Send until the client goes away or the stream is ended; then let go of the request."""
        writer = self.writer
        stop: Callable[[], None] = self.hub.listen(self._heard)
        writer.begin()
        try:
            try:
                await self._catch_up()
            except RpoolError as e:
                writer.end("stream.error", {"message": e.message, "last_event_id": self.position})
            while not writer.ended:
                while self._live and not writer.ended:
                    event = self._live.popleft()
                    if event.id <= self.position:
                        continue
                    if not self._send(event):
                        self._overflowed()
                        break
                if self._overflow and not writer.ended:
                    self._overflowed()
                if writer.ended:
                    break
                await writer.changed()
        except CancelledError:
            raise
        finally:
            stop()
            writer.close()

    async def _catch_up(self) -> None:
        writer = self.writer
        if self.last_event_id is None:
            self.position = self.hub.position
            return
        first, _ = await self.hub.bounds()
        self.position = self.last_event_id
        if self.last_event_id < first - 1:
            writer.send("stream.truncated", {
                "message": f"events {self.last_event_id + 1} to {first - 1} are no longer kept; "
                           f"the stream goes on from {first}",
                "last_event_id": self.last_event_id, "first_kept": first})
            self.position = first - 1
        while not writer.ended:
            page = await self.hub.read(self.position, PAGE)
            for event in page:
                if writer.paused:
                    await writer.writable()
                if writer.ended:
                    return
                self._send(event)
                if self._overflow:
                    return
            if len(page) < PAGE:
                return
