"""
The HTTP site serving the API: request ids, limits on the request head and
body, request metrics, access log, and the bookkeeping that lets the
daemon drain on shutdown.

``ApiChannel`` sets twisted.web's limits on the request head explicitly
(``MAX_LINE``, ``MAX_HEAD``, ``MAX_HEADERS``) and answers what breaks them
in the API's error format, where twisted.web would close the connection
or answer a bare 400: a request line too long is ``414``, a header line
too long, too many headers or too large a head ``431``, a malformed head
``400``, each with ``{"error": ...}``; the answer ends the sending side of
the connection, and what the client still sends is read and dropped until
it closes (or ``LINGER`` seconds have passed).

``ApiRequest`` keeps twisted.web from parsing uploads into memory (the
upload route parses them itself, block by block from the spooled body)
and enforces the body limits *while the body arrives*: a request whose
``Content-Length`` is above the limit, or whose body grows past it, is
answered ``413`` at once; the rest of its body is read and thrown away
(never stored), and the connection is closed when it ends or after
``LINGER`` seconds.  JSON bodies have one limit, ``multipart/form-data``
bodies (file uploads, spooled to a temporary file) a larger one.

``ApiRequest`` also works under a plain ``Site`` (with default limits and
no draining), so in-memory test clients can use it.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from rpoold import metrics
from rpoold.logs import new_request_id

log = Logger()

#: Seconds a connection stays open to swallow the rest of a body refused
#: with 413 (so that the client reads the answer instead of a reset).
LINGER = 2.0

#: Route label of requests refused before routing (head or body too large).
UNROUTED = "unrouted"

#: The longest request line, and the longest header line, in bytes
#: (twisted.web's own default, set here explicitly): 414 / 431 above.
MAX_LINE = 16384
#: The longest request head (request line and every header), in bytes: 431 above.
MAX_HEAD = 32768
#: The most header fields of one request: 431 above.
MAX_HEADERS = 100

#: Reason phrases of the answers the site writes itself.
REASONS = {
    400: b"Bad Request",
    413: b"Request Entity Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


def error_answer(status: int, message: str, request_id: str) -> bytes:
    """
    :returns: a whole HTTP answer with ``{"error": message}``, that closes
        the connection: what the site writes itself, before any route.
    """
    body = json.dumps({"error": message}).encode()
    return (
        b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Error"))
        + b"Content-Type: application/json\r\n"
        + b"Content-Length: %d\r\n" % len(body)
        + b"Connection: close\r\n"
        + b"X-Request-Id: " + request_id.encode() + b"\r\n\r\n"
        + body
    )


@dataclass(frozen=True)
class Limits:
    """
    :ivar max_body: largest request body in bytes, except uploads.
    :ivar max_upload: largest ``multipart/form-data`` body in bytes.
    """

    max_body: int = 1024 * 1024
    max_upload: int = 1024**3


class RequestTracker:
    """
    The requests of a site that have begun (request line received) and
    are not answered yet; and, once :meth:`drain` was called, a way to wait
    until there are none.

    :ivar received: requests begun since start.
    :ivar answered: requests whose answer was sent completely.
    :ivar aborted: requests whose connection was lost before that.
    """

    def __init__(self) -> None:
        self.active: set[ApiRequest] = set()
        #: Channels that carried a request, while they live.
        self.channels: weakref.WeakSet[Any] = weakref.WeakSet()
        self.draining = False
        self.received = 0
        self.answered = 0
        self.aborted = 0
        self._waiting: list[Deferred[None]] = []

    def begin(self, request: ApiRequest) -> None:
        self.active.add(request)
        channel: Any = request.channel
        if getattr(channel, "_rpoold_tracked", None) is not self:
            # Once per connection: a WeakSet's add makes a weak reference each time.
            self.channels.add(channel)
            try:
                channel._rpoold_tracked = self
            except AttributeError:
                pass
        self.received += 1
        metrics.HTTP_IN_FLIGHT.inc()

    def end(self, request: ApiRequest, answered: bool) -> None:
        if request not in self.active:
            return
        self.active.discard(request)
        metrics.HTTP_IN_FLIGHT.dec()
        if answered:
            self.answered += 1
        else:
            self.aborted += 1
        if not self.active:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def close_idle_connections(self) -> None:
        """Close the kept-alive connections that carry no request now."""
        for channel in list(self.channels):
            transport = getattr(channel, "transport", None)
            if getattr(channel, "requests", None) or not getattr(transport, "connected", False):
                continue
            try:
                channel.loseConnection()
            except Exception:
                log.failure("closing an idle connection failed")

    def open_connections(self) -> int:
        """:returns: how many connections that carried a request are still open."""
        transports = [getattr(channel, "transport", None) for channel in list(self.channels)]
        return sum(1 for transport in transports if getattr(transport, "connected", False))

    def drain(self) -> Deferred[None]:
        """
        From now on, answers close their connection.

        :returns: Deferred firing when no request is active.
        """
        self.draining = True
        if not self.active:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d


#: Used by requests served under a plain ``Site``.
_DEFAULT_LIMITS = Limits()
_DEFAULT_TRACKER = RequestTracker()


class ApiRequest(Request):
    """
    A request of the API (see the module docstring).

    :ivar request_id: set as soon as the headers are in (empty before).
    :ivar route_template: the contract path that served the request (set
        by the app), the ``route`` label of its metrics.
    """

    def __init__(self, channel: Any, queued: Any = None) -> None:
        super().__init__(channel, parsePOSTFormSubmission=False)
        site = getattr(channel, "site", None)
        self.limits: Limits = getattr(site, "limits", _DEFAULT_LIMITS)
        self.tracker: RequestTracker = getattr(site, "tracker", _DEFAULT_TRACKER)
        self.clock: Callable[[], float] = time.monotonic
        self.started = self.clock()
        self.request_id = ""
        self.route_template = UNROUTED
        self._limit = self.limits.max_body
        self._received = 0
        self._refused = False
        self._ended = False
        self._linger: Any = None
        self.tracker.begin(self)

    # Body, as it arrives ------------------------------------------------

    def gotLength(self, length: int | None) -> None:
        self.request_id = new_request_id(self.getHeader(b"X-Request-Id"))
        self.setHeader(b"X-Request-Id", self.request_id.encode())
        if length != 0:  # a body comes (its length, or chunked): which limit
            ctype = (self.getHeader(b"Content-Type") or b"").split(b";")[0].strip().lower()
            if ctype == b"multipart/form-data":
                self._limit = self.limits.max_upload
        if length is not None and length > self._limit:
            # Answer now; do not invite the body with "100 Continue".
            self.requestHeaders.removeHeader(b"Expect")
            super().gotLength(0)
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            self._close()
            return
        super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        """Answer 413 at once, then drop the rest of the body."""
        self._refused = True
        transport: Any = self.channel.transport
        message = f"request body is larger than {self._limit} bytes"
        transport.write(error_answer(413, message, self.request_id))
        self.code = 413
        method = getattr(self.channel, "_command", b"") or b""
        self._end(answered=True, method=method.decode("latin-1"))
        log.info(
            "request {request_id} refused: body larger than {limit} bytes",
            request_id=self.request_id,
            limit=self._limit,
        )
        from twisted.internet import reactor

        self._linger = reactor.callLater(LINGER, self._close)

    def _close(self) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._linger = None
        if self.channel is not None:
            self.channel.loseConnection()

    # Answer ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.startedWriting and self.tracker.draining and self.channel is not None:
            # The daemon is stopping: this connection carries no more requests.
            self.setHeader(b"Connection", b"close")
            self.channel.persistent = False
        super().write(data)

    def finish(self) -> None:
        super().finish()
        self._end(answered=True)

    def connectionLost(self, reason: Any) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)
        self._end(answered=False)

    def _end(self, answered: bool, method: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.tracker.end(self, answered)
        if method is None:
            method = (getattr(self, "method", b"") or b"").decode("latin-1")
        status = self.code if answered else 499
        metrics.record_request(self.route_template, method, status, self.clock() - self.started)


class ApiChannel(HTTPChannel):
    """
    An HTTP connection with the head limits of the module docstring,
    answered in the API's error format.
    """

    MAX_LENGTH = MAX_LINE
    totalHeadersSize = MAX_HEAD
    maxHeaders = MAX_HEADERS

    #: Lines of the current request's head received so far.
    _head_lines = 0
    _refused = False
    _linger: Any = None

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # what follows an answered refusal is read and dropped
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse_head(431, f"request head is larger than {self.totalHeadersSize} bytes")
            return
        if line or self._head_lines:
            self._head_lines += 1
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._head_lines == 0:
            self._refuse_head(414, f"request line is longer than {self.MAX_LENGTH} bytes")
        else:
            self._refuse_head(431, f"a request header is longer than {self.MAX_LENGTH} bytes")

    def headerReceived(self, line: bytes) -> bool:
        if self._refused:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self._refuse_head(431, f"request has more than {self.maxHeaders} header fields")
            return False
        ok: bool = super().headerReceived(line)
        return ok

    def allContentReceived(self) -> None:
        self._head_lines = 0
        super().allContentReceived()

    def _respondToBadRequestAndDisconnect(self) -> None:
        self._refuse_head(400, "malformed HTTP request")

    def _refuse_head(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message``, then drop what the client still sends."""
        if self._refused:
            return
        self._refused = True
        request = self.requests[-1] if self._head_lines and self.requests else None
        request_id = getattr(request, "request_id", "") or new_request_id()
        transport: Any = self.transport
        transport.write(error_answer(status, message, request_id))
        method = (getattr(self, "_command", b"") or b"").decode("latin-1")
        if isinstance(request, ApiRequest):
            request.code = status
            request._end(answered=True, method=method)
        else:
            metrics.record_request(UNROUTED, method, status, 0.0)
        log.info("request {request_id} refused: {status} {error}", request_id=request_id,
                 status=status, error=message)
        # End of answer for a client that reads until the connection ends;
        # reading goes on, so that what it still sends is not met by a reset.
        half_close = getattr(transport, "loseWriteConnection", None)
        if half_close is not None:
            half_close()
        from twisted.internet import reactor

        self._linger = reactor.callLater(LINGER, self.loseConnection)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)


class ApiSite(Site):
    """
    The daemon's site: ``ApiRequest``s on ``ApiChannel``s, no tracebacks,
    limits, in-flight tracking and a structured access log (one event per
    answer, with the request id; off with ``access_log=False``).
    """

    requestFactory = ApiRequest  # type: ignore[assignment]
    protocol = ApiChannel  # type: ignore[assignment]
    displayTracebacks = False

    def __init__(self, resource: Any, limits: Limits | None = None, access_log: bool = True) -> None:
        super().__init__(resource)
        self.limits = limits or Limits()
        self.tracker = RequestTracker()
        self.access_log = access_log

    def log(self, request: Any) -> None:
        if not self.access_log:
            return
        now = time.monotonic()
        line = AccessLine(
            method=(request.method or b"").decode("latin-1"),
            uri=(request.uri or b"").decode("latin-1"),
            status=request.code,
            sent=request.sentLength,
            seconds=now - getattr(request, "started", now),
            request_id=getattr(request, "request_id", None),
        )
        # What ``log.info("{line}", line=line, method=..., ...)`` emits, made
        # directly: Logger.emit's check of the level sorts the levels each time.
        log.observer({
            "line": line,
            "method": line.method,
            "uri": line.uri,
            "status": line.status,
            "bytes": line.sent,
            "seconds": line.seconds,
            "request_id": line.request_id,
            "client": getattr(request.getClientAddress(), "host", None),
            "log_logger": log,
            "log_level": LogLevel.info,
            "log_namespace": log.namespace,
            "log_source": None,
            "log_format": "{line}",
            "log_time": time.time(),
        })


@dataclass(slots=True)
class AccessLine:
    """
    The text of an access-log event, made when an observer formats the
    event (and only then), in one step: Twisted's formatting of a format
    string with a field per value costs about as much as all the rest of
    the event.  The event also carries each value as a field of its own.
    """

    method: str
    uri: str
    status: int
    sent: int
    seconds: float
    request_id: str | None

    def __str__(self) -> str:
        return (
            f"{self.method} {self.uri} {self.status} {self.sent} bytes {self.seconds:.3f} s "
            f"(request {self.request_id})"
        )
