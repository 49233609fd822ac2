"""
The web app's side of long work: every write as an operation, the
``/operations`` endpoints, ``GET /events`` and the streamed output of jobs
(rpoold's own endpoints of ``types.json``).

A write accepts ``Prefer: respond-async`` (RFC 7240): it answers ``202``
at once with ``Preference-Applied: respond-async``, ``Location:
/operations/{id}`` and the operation.  Without it the write answers as it
always did when its work ends within the wait (``server.request_timeout``,
shorter with ``Prefer: wait=N`` or when the backend says so: the AYS
backend after ``run_timeout``), and ``202`` with the operation when its
work goes on after that.  A write whose operation goes on after its answer
(a VM on its way to its target state, a reboot, a process's job) says
where in ``Operation-Location``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from rpoold import errors, writes
from rpoold.auth import ADMIN, REQUIRED_ROLE, Authenticator, Identity
from rpoold.contract import Operation
from rpoold.event_stream import EventStream, SSEWriter
from rpoold.events import EventFilter, EventHub, EventSettings, IEventLog, now
from rpoold.followers import Followers, NodeStatus, NodeWatcher
from rpoold.interfaces import IJobOutput
from rpoold.operations import (
    ENDED,
    SCOPE,
    STATUSES,
    Answer,
    Operations,
    Settings,
    Tracked,
    shown,
)
from rpoold.records import IRecords, MemoryRecords, ScopedRecords
from rpoold.references import ReferenceCheck

JSON = b"application/json"
#: Most operations one ``GET /operations`` lists.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class App(Protocol):
    """What this module uses of the web app (``rpoold.app.RpoolApi``)."""

    backends: dict[str, object]
    request_timeout: float
    auth: Authenticator
    references: ReferenceCheck

    def _arguments(self, request: IRequest, op: Operation,
                   params: dict[str, str]) -> tuple[dict[str, Any], Any]: ...

    def _created(self, request: IRequest, op: Operation, location: str | None,
                 params: dict[str, str]) -> Deferred[bytes | None]: ...

    def _location_of(self, op: Operation, params: dict[str, str], body: Any, result: Any) -> str: ...

    def _shaped_body(self, op: Operation, result: Any) -> Any: ...


def _json(request: IRequest, value: Any, status: int = 200) -> bytes:
    body = json.dumps(value).encode()
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def preferences(request: IRequest) -> dict[str, str]:
    """The ``Prefer`` header's preferences (RFC 7240), names in lower case."""
    found: dict[str, str] = {}
    for header in request.requestHeaders.getRawHeaders(b"Prefer", []):
        for item in header.decode("latin-1").split(","):
            first = item.split(";", 1)[0].strip()
            if not first:
                continue
            name, _, value = first.partition("=")
            found.setdefault(name.strip().lower(), value.strip().strip('"'))
    return found


def _query(request: IRequest, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


def _number(text: str, what: str, minimum: float = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise errors.BadRequest(f"{what} must be a number, not {text!r}") from None
    if not value >= minimum or value != value or value in (float("inf"), float("-inf")):
        raise errors.BadRequest(f"{what} must be a number of at least {minimum:g}, not {text!r}")
    return value


def _integer(text: str, what: str, minimum: int = 0) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", text.strip()):
        raise errors.BadRequest(f"{what} must be a whole number, not {text!r}")
    value = int(text)
    if value < minimum:
        raise errors.BadRequest(f"{what} must be at least {minimum}, not {value}")
    return value


class _Upload:
    """An upload's body, taken from the request so that it outlives the answer."""

    def __init__(self, request: IRequest) -> None:
        self.content = request.content
        self._headers = request.requestHeaders
        # twisted.web closes the body when the answer is finished.
        request.content = None

    def getHeader(self, name: bytes) -> bytes | None:
        values = self._headers.getRawHeaders(name)
        return values[-1] if values else None

    def close(self) -> None:
        if self.content is not None:
            self.content.close()


class OperationsApi:
    """
    :param app: the web app.
    :param store: the daemon's store (``IRecords`` and ``IEventLog``).
    :param clock: an ``IReactorTime``.
    :param settings: the ``[operations]`` section.
    :param events: the ``[events]`` section.
    :param instances: backend instance name -> backend (to find the
        instance serving a write, and to resume its work).
    """

    def __init__(self, app: App, store: Any, clock: Any, settings: Settings | None = None,
                 events: EventSettings | None = None,
                 instances: Mapping[str, object] | None = None) -> None:
        self.app = app
        self.clock = clock
        self.settings = settings or Settings()
        self.event_settings = events or EventSettings()
        store = store if store is not None else MemoryRecords()
        self.records: IRecords = ScopedRecords(store, SCOPE)
        retention = self.event_settings.retention
        self.hub = EventHub(IEventLog(store), clock, retention=retention,
                            max_events=self.event_settings.max_events,
                            trim_interval=min(10.0, max(0.5, retention)))
        self.node_status = NodeStatus(self.records, self.hub)
        self.followers = Followers(app.backends, self.hub, clock, self.settings, self.node_status)
        self.instances = dict(instances or {})
        self.operations = Operations(self.records, self.hub, clock, self.settings,
                                     follow=self.followers, resumers=self.instances)
        self.watcher = NodeWatcher(app.backends, self.node_status, clock,
                                   self.event_settings.node_interval)
        #: The streams open now (ended when the daemon stops).
        self.streams: set[SSEWriter] = set()

    @property
    def services(self) -> list[Any]:
        """What the daemon starts and stops: the hub first."""
        return [self.hub, self.operations, self.watcher]

    def start_in_process(self) -> None:
        """Without a daemon (an in-memory app): deliver events (the memory store answers at once)."""
        ensureDeferred(self.hub.start())

    def close_streams(self, why: str) -> None:
        """End every open stream (the daemon stops)."""
        for writer in list(self.streams):
            writer.end("stream.closed", {"message": why})

    def _instance_of(self, backend: object) -> str | None:
        for name, candidate in self.instances.items():
            if candidate is backend:
                return name
        return None

    # Writes -----------------------------------------------------------------------------

    async def write(self, request: IRequest, op: Operation, params: dict[str, str]) -> bytes | None:
        """One write, as an operation (see the module docstring)."""
        app = self.app
        backend = app.backends.get(op.family)
        args, _ = app._arguments(request, op, params)
        if backend is None:
            raise errors.NotServed(f"no backend serves the '{op.family}' resources in this configuration")
        wanted = preferences(request)
        asynchronous = "respond-async" in wanted
        upload = None
        if op.multipart:
            upload = _Upload(request)
        body = args.get("body")
        await app.references.check(op, params, body)
        resource = writes.resource_of(op, params, body)
        tracked = self.operations.begin(op, resource, backend=self._instance_of(backend))
        if upload is not None:
            tracked.ended.addBoth(lambda _: upload.close())
        planned = writes.target_of(op, params, body, None)
        if planned is not None and planned["kind"] == "reboot":
            planned["since"] = now()
            planned["boot_time"] = await self.followers.boot_time(planned["nodeid"])
        tracked.record["target_after"] = planned
        if asynchronous:
            await tracked.persist()
        method = getattr(backend, op.interface_method)

        def answer(result: Any) -> Answer:
            location = app._location_of(op, params, body, result) if op.location is not None else None
            return Answer(op.success, location, app._shaped_body(op, result))

        def target(result: Any, shaped: Answer) -> dict[str, Any] | None:
            if op.name == "StartContainerProcess":
                return writes.target_of(op, params, body, shaped.location)
            return planned

        async def done(tracked: Tracked, result: Any, shaped: Answer) -> None:
            for kind, where, data in writes.change_events(op, params, body, resource, shaped.location):
                # The operation, when there is one to read (a write that ends within its answer keeps none).
                self.hub.emit(kind, where, {**data, "operation": tracked.id} if tracked.persisted else data)

        self.operations.start(tracked, lambda: method(**args), answer, target, done)
        if asynchronous:
            return self._accepted(request, tracked, applied=True)
        wait = app.request_timeout
        if "wait" in wanted:
            try:
                wait = min(wait, max(0.0, float(wanted["wait"])))
            except ValueError:
                pass
        [outcome] = await tracked.answer_within(wait)
        if outcome is None:
            await tracked.persist()
            return self._accepted(request, tracked)
        if isinstance(outcome, Failure):
            outcome.raiseException()
        if tracked.status not in ENDED and tracked.persisted:
            request.setHeader(b"Operation-Location", f"/operations/{tracked.id}".encode())
        if op.created is not None:
            return await app._created(request, op, outcome.location, params)
        request.setResponseCode(outcome.status)
        if outcome.location is not None:
            request.setHeader(b"Location", outcome.location.encode())
        if outcome.body is None:
            return None
        return _json(request, outcome.body, outcome.status)

    @staticmethod
    def _accepted(request: IRequest, tracked: Tracked, applied: bool = False) -> bytes:
        request.setHeader(b"Location", f"/operations/{tracked.id}".encode())
        if applied:
            request.setHeader(b"Preference-Applied", b"respond-async")
        return _json(request, shown(tracked.record), 202)

    # /operations ------------------------------------------------------------------------

    async def list_operations(self, request: IRequest) -> bytes:
        statuses = frozenset(s.strip() for s in (_query(request, "status") or "").split(",") if s.strip())
        unknown = sorted(statuses - set(STATUSES))
        if unknown:
            raise errors.BadRequest(f"query parameter 'status': unknown status {unknown[0]!r} "
                                    f"(one of {', '.join(STATUSES)})")
        limit_text = _query(request, "limit")
        limit = DEFAULT_LIMIT if limit_text is None else _integer(limit_text, "query parameter 'limit'", 1)
        found = await self.operations.list(statuses, _query(request, "resource") or "",
                                           _query(request, "operation") or "", min(limit, MAX_LIMIT))
        return _json(request, [shown(r) for r in found])

    async def get_operation(self, request: IRequest, operationid: str) -> bytes:
        wait_text = _query(request, "wait")
        if wait_text is None:
            record = await self.operations.get(operationid)
        else:
            record = await self.operations.wait(operationid, _number(wait_text, "query parameter 'wait'"))
        request.setHeader(b"Cache-Control", b"no-store")
        return _json(request, shown(record))

    async def cancel_operation(self, request: IRequest, operationid: str, identity: Identity) -> bytes:
        record = await self.operations.get(operationid)
        name = str(record.get("operation", ""))
        self.app.auth.authorize(identity, REQUIRED_ROLE.get(name, ADMIN), f"cancel {name}")
        return _json(request, shown(await self.operations.cancel(operationid)))

    # Streams ----------------------------------------------------------------------------

    def _writer(self, request: IRequest, identity: Identity) -> SSEWriter:
        writer = SSEWriter(request, self.clock, keepalive=self.event_settings.keepalive,
                           buffer=self.event_settings.buffer, expires=identity.expires)
        self.streams.add(writer)
        return writer

    async def stream_events(self, request: IRequest, identity: Identity) -> None:
        types = [t.strip() for t in (_query(request, "type") or "").split(",") if t.strip()]
        for pattern in types:
            if not re.fullmatch(r"[A-Za-z0-9_.*?\[\]-]+", pattern):
                raise errors.BadRequest(f"query parameter 'type': {pattern!r} is not a type or pattern")
        node = _query(request, "node") or ""
        given = request.getHeader(b"Last-Event-ID")
        text = given.decode("latin-1").strip() if given else _query(request, "last_event_id")
        last = _integer(text, "Last-Event-ID") if text else None
        writer = self._writer(request, identity)
        try:
            await EventStream(writer, self.hub, EventFilter(types, node), last).run()
        finally:
            self.streams.discard(writer)
        return None

    async def stream_job_output(self, request: IRequest, op: Operation, params: dict[str, str],
                                identity: Identity) -> None:
        app = self.app
        backend = app.backends.get(op.family)
        args, _ = app._arguments(request, op, params)
        if backend is None:
            raise errors.NotServed(f"no backend serves the '{op.family}' resources in this configuration")
        found = getattr(backend, op.interface_method)(**args)
        output = IJobOutput(await found if isinstance(found, Deferred) or hasattr(found, "__await__")
                            else found)
        writer = self._writer(request, identity)
        writer.begin()
        try:
            while not writer.ended:
                try:
                    pieces = await output.read()
                except errors.RpoolError as e:
                    writer.end("error", {"message": e.message})
                    break
                if not pieces:
                    break
                for kind, text in pieces:
                    if writer.paused:
                        await writer.writable()
                    if kind == "end":
                        writer.send("end", {"state": text})
                        writer.ended = True
                        break
                    writer.send(kind, {"text": text})
        finally:
            self.streams.discard(writer)
            writer.close()
            await output.close()
        return None
