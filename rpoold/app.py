"""
The Klein web app: every contract operation, routed to the backend that
configuration assigned to its resource family.

Each request takes one path (``RpoolApi._operate``): validate the path
parameters, query and body (``rpoold.request_validation``), call one method
of the family's interface with them, shape the answer as the contract says
(``rpoold.response_shaping``).  Every error is turned into ``{"error": ...}``
in ``_answer_error``; nothing else writes error bodies.

Writes run as operations, and rpoold's own endpoints (``/operations``,
``/events``, the streamed output of jobs) are served, by
``rpoold.operations_api``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlencode

from klein import Klein
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound

import rpoold.contract
from rpoold import errors, metrics
from rpoold.auth import ANONYMOUS, DISABLED, REQUIRED_ROLE, Authenticator, Identity, Role, Unauthenticated
from rpoold.console_page import POLICY as CONSOLE_POLICY
from rpoold.console_page import ConsoleAssets
from rpoold.contract import Operation
from rpoold.cors import CorsPolicy
from rpoold.deadlines import Deadlines
from rpoold.docs_page import PAGE, POLICY, Asset, DocsAssets
from rpoold.errors import TIMEOUTS
from rpoold.events import EventSettings
from rpoold.health import HealthReport
from rpoold.interfaces import FAMILIES_BY_NAME, IFileReader, IRequestBounds
from rpoold.json_schemas import NARROWABLE, ContractSchemas, narrowed
from rpoold.listing import ListQuery, PoolListing, page
from rpoold.logs import REQUEST_ID, Audit, new_request_id
from rpoold.openapi import openapi_document, with_servers
from rpoold.operations import Settings as OperationSettings
from rpoold.operations_api import OperationsApi
from rpoold.references import ReferenceCheck
from rpoold.request_validation import RequestValidator
from rpoold.response_shaping import ResponseShaper
from rpoold.routing import CompiledRoutes, RoutedResource

log = Logger()

JSON = b"application/json"
UPLOAD_BLOCK = 512 * 1024

#: A ``Host`` header that may name the server in ``/openapi.json``.
_HOST = re.compile(r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")


def _klein_path(path: str) -> str:
    return re.sub(r"{(\w+)}", r"<\1>", path)


class RpoolApi:
    """
    The HTTP API.

    :param backends: the backend serving each family, by family name;
        families missing from it answer 501.
    :param request_timeout: seconds a backend call may take before the
        request is answered 504.
    :param max_body: largest JSON request body, in bytes (413 above); the
        site enforces it while the body arrives, this is a second check.
    :param auth: checks credentials and roles; ``None``: no authentication.
    :param instances: backend instance name -> (plugin name, backend), for
        ``/health``; ``None``: one entry per distinct backend of ``backends``.
    :param health_timeout: seconds each backend's health check may take.
    :param metrics_enabled: serve ``/metrics``.
    :param metrics_public: ``/metrics`` needs no credentials even when
        authentication is on (else it needs the ``read`` role).
    :param schemas: the contract's JSON Schemas, which requests are
        validated and answers shaped by; ``None``: the shipped contract's,
        with the narrower bounds of the backends that declare some
        (``IRequestBounds``) on the families they serve.
    :param store: the daemon's record store, where operations and events
        are kept (the daemon starts ``long.services``); ``None``: a store in
        memory, events delivered at once (an app without a daemon).
    :param operation_settings: the ``[operations]`` section.
    :param event_settings: the ``[events]`` section.
    :param worker: ``"INDEX/COUNT"`` when this process is one of
        ``server.workers`` (``/health`` says which).
    :param cors_origins: the origins whose pages may call the API from a
        browser (``rpoold.cors``); empty: none (no CORS header at all).
    """

    app = Klein()

    def __init__(
        self,
        backends: Mapping[str, object],
        request_timeout: float = 30.0,
        max_body: int = 1024 * 1024,
        clock: Any = None,
        auth: Authenticator | None = None,
        instances: Mapping[str, tuple[str, object]] | None = None,
        health_timeout: float = 5.0,
        metrics_enabled: bool = True,
        metrics_public: bool = True,
        schemas: ContractSchemas | None = None,
        store: Any = None,
        operation_settings: OperationSettings | None = None,
        event_settings: EventSettings | None = None,
        worker: str | None = None,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        from twisted.internet import reactor

        self.backends = dict(backends)
        self.request_timeout = request_timeout
        self.max_body = max_body
        self.clock = clock if clock is not None else reactor
        self.deadlines = Deadlines(request_timeout, self.clock)
        self.schemas = schemas if schemas is not None else contract_for(self.backends)
        self.requests = RequestValidator(self.schemas)
        self.responses = ResponseShaper(self.schemas)
        self.references = ReferenceCheck(self.backends, self._call, self.requests.path_arguments)
        self.auth = auth or DISABLED
        if instances is None:
            distinct: dict[int, object] = {id(b): b for b in self.backends.values()}
            instances = {
                f"{type(b).__name__}-{n}": (type(b).__name__, b) for n, b in enumerate(distinct.values())
            }
        self.health_report = HealthReport(instances, self.backends, health_timeout, self.clock,
                                          worker=worker)
        self.metrics_enabled = metrics_enabled
        self.metrics_public = metrics_public
        self._openapi: bytes | None = None
        self.docs_assets = DocsAssets()
        self.console_assets = ConsoleAssets()
        self.cors = CorsPolicy(cors_origins) if cors_origins else None
        #: Operations, events and streams (rpoold's own endpoints).
        self.long = OperationsApi(self, store, self.clock, operation_settings, event_settings,
                                  instances={name: b for name, (_, b) in instances.items()})
        if store is None:
            self.long.start_in_process()

    def resource(self) -> Any:
        """The web resource: Klein's, with the contract's routes compiled (``rpoold.routing``)."""
        app = self.app

        def handler_of(endpoint: str) -> Any:
            route = getattr(app.endpoints.get(endpoint), "operation_route", None)
            if route is None:
                return None
            op, template = route

            def handle(request: IRequest, params: dict[str, str]) -> Deferred[bytes | None]:
                return Deferred.fromCoroutine(self._handle(request, op, template, params))

            return handle

        return _DecodedUrls(app, CompiledRoutes(app, handler_of), self.cors)

    # Service routes ------------------------------------------------------

    @app.route("/", methods=["GET"])
    def index(self, request: IRequest) -> bytes:
        """What the daemon serves besides the operations: a small JSON index."""
        _set_route(request, "/")
        index = {
            "name": "G8OS Resource Pool API (rpoold)",
            "openapi": "/openapi.json",
            "docs": "/docs",
            "console": "/ui",
            "health": "/health",
        }
        if self.metrics_enabled:
            index["metrics"] = "/metrics"
        return _json_answer(request, json.dumps(index).encode())

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        _set_route(request, "/openapi.json")
        if self._openapi is None:
            credentials = (("static tokens",) if self.auth.tokens else ()) + (
                ("JWTs",) if self.auth.jwt is not None else ())
            document = openapi_document(self.schemas, secured=self.auth.enabled, credentials=credentials)
            self._openapi = json.dumps(document).encode()
        return _json_answer(request, with_servers(self._openapi, _server_url(request)))

    @app.route("/docs", methods=["GET"])
    def docs(self, request: IRequest) -> bytes:
        """Swagger UI on ``/openapi.json`` (``rpoold.docs_page``): public, as the document."""
        _set_route(request, "/docs")
        request.setHeader(b"Content-Security-Policy", POLICY)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return _answer(request, PAGE, b"text/html; charset=utf-8")

    @app.route("/docs/assets/<name>", methods=["GET"])
    def docs_asset(self, request: IRequest, name: str) -> bytes:
        _set_route(request, "/docs/assets/{name}")
        return self._asset(request, self.docs_assets.get(name), b"public, max-age=3600")

    @app.route("/ui", methods=["GET"])
    def console(self, request: IRequest) -> bytes:
        """The web console (``rpoold.console_page``): public to load; its calls need credentials."""
        _set_route(request, "/ui")
        request.setHeader(b"Content-Security-Policy", CONSOLE_POLICY)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-cache")
        return _answer(request, self.console_assets.page(), b"text/html; charset=utf-8")

    @app.route("/ui/assets/<name>", methods=["GET"])
    def console_asset(self, request: IRequest, name: str) -> bytes:
        _set_route(request, "/ui/assets/{name}")
        return self._asset(request, self.console_assets.get(name), b"no-cache")

    def _asset(self, request: IRequest, asset: Asset | None, cache_control: bytes) -> bytes:
        """Answer a file of a page (``None``: a JSON 404)."""
        if asset is None:
            return self._answer_error(request, 404, "no such resource")
        request.setHeader(b"Cache-Control", cache_control)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return _answer(request, asset.body, asset.media_type)

    @app.route("/ui/session", methods=["GET"])
    def console_session(self, request: IRequest) -> bytes:
        """
        Who the request's credentials are, for the console: ``{"auth":
        bool, "subject": str, "role": "read"|"operate"|"admin"}``; 401 when
        authentication is on and they are missing or refused.
        """
        _set_route(request, "/ui/session")
        try:
            identity = self.auth.identify(request.getHeader(b"Authorization"))
        except errors.RpoolError as e:
            return self._answer_rpool_error(request, e)
        request.setHeader(b"Cache-Control", b"no-store")
        session = {"auth": self.auth.enabled, "subject": identity.subject, "role": identity.role.name}
        return _json_answer(request, json.dumps(session).encode())

    @app.route("/health", methods=["GET"])
    async def health(self, request: IRequest) -> bytes:
        _set_route(request, "/health")
        report = await self.health_report.report()
        if request.args.get(b"ready") and report["status"] != "ok":
            request.setResponseCode(503)
        request.setHeader(b"Cache-Control", b"no-store")
        return _json_answer(request, json.dumps(report).encode())

    @app.route("/metrics", methods=["GET"])
    def metrics(self, request: IRequest) -> Any:
        _set_route(request, "/metrics")
        if not self.metrics_enabled:
            return self._answer_error(request, 404, "no such resource")
        if not self.metrics_public:
            try:
                identity = self.auth.identify(request.getHeader(b"Authorization"))
                self.auth.authorize(identity, Role.read, "read the metrics")
            except errors.RpoolError as e:
                return self._answer_rpool_error(request, e)
        from prometheus_client.twisted import MetricsResource

        return MetricsResource(metrics.served_registry())

    # Contract operations ---------------------------------------------------

    async def _handle(
        self, request: IRequest, op: Operation, template: str, params: dict[str, str]
    ) -> bytes | None:
        request_id: str = getattr(request, "request_id", "")
        if not request_id:  # not an ``ApiRequest`` (which sets it with its headers)
            request_id = new_request_id()
            request.setHeader(b"X-Request-Id", request_id.encode())
        REQUEST_ID.set(request_id)
        _set_route(request, template)
        audit = Audit(op.name, op.role != "read")
        request.audit = audit  # type: ignore[attr-defined]  # read by the site's access log
        try:
            if self.auth.enabled:
                identity = self.auth.identify(request.getHeader(b"Authorization"))
                audit.caller, audit.issuer = identity.subject, identity.issuer
                self.auth.authorize(identity, REQUIRED_ROLE[op.name], f"call {op.name}")
            else:
                identity = ANONYMOUS
                audit.caller = ANONYMOUS.subject
            if op.own or op.is_write:
                return await self._operate_long(request, op, params, identity)
            return await self._operate(request, op, params)
        except CancelledError:
            raise
        except errors.RpoolError as e:
            if e.status >= 500:
                # No request_id argument: the log output takes it from REQUEST_ID.
                log.warn(
                    "{method} {template}: {status} {error}",
                    method=op.method,
                    template=template,
                    status=e.status,
                    error=e.message,
                )
            return self._answer_rpool_error(request, e)
        except Exception:
            log.failure(
                "request {request_id} ({method} {path}) failed",
                request_id=request_id,
                method=op.method,
                path=request.path.decode("utf-8", "replace"),
            )
            return self._answer_error(
                request, 500, f"internal error (request id {request_id})"
            )

    def _operate(
        self, request: IRequest, op: Operation, params: dict[str, str]
    ) -> Deferred[Any]:
        """
        Validate, call the family's backend, answer: one request's whole
        path (plain callbacks, below the request's one coroutine).

        :raises errors.RpoolError: the request is refused before the call.
        """
        backend = self.backends.get(op.family)
        args, listing = self._arguments(request, op, params)
        if backend is None:
            raise errors.NotServed(
                f"no backend serves the '{op.family}' resources in this configuration"
            )
        method = getattr(backend, op.interface_method)
        d = self._call(method, args)
        if op.response_media_type == "application/octet-stream":
            return d.addCallback(lambda reader: Deferred.fromCoroutine(self._stream_file(request, reader)))
        body = args.get("body")
        return d.addCallback(lambda result: self._answer(request, op, params, body, result, listing))

    async def _operate_long(
        self, request: IRequest, op: Operation, params: dict[str, str], identity: Identity
    ) -> bytes | None:
        """A write (as an operation) or one of rpoold's own endpoints."""
        long = self.long
        if op.family == "operations":
            operationid = self.requests.path_arguments(params).get("operationid", "")
            if op.name == "ListOperations":
                return await long.list_operations(request)
            if op.name == "GetOperation":
                return await long.get_operation(request, operationid)
            return await long.cancel_operation(request, operationid, identity)
        if op.family == "events":
            await long.stream_events(request, identity)
            return None
        if op.response_media_type == "text/event-stream":
            await long.stream_job_output(request, op, params, identity)
            return None
        return await long.write(request, op, params)

    def _location_of(self, op: Operation, params: dict[str, str], body: Any, result: Any) -> str:
        """The ``Location`` a write answers with."""
        assert op.location is not None
        return _location(op.location, params, body, result)

    def _shaped_body(self, op: Operation, result: Any) -> Any:
        """
        The body a write's backend call gives its answer (``None``: none; a
        201's resource is read back at its answer, ``_created``).
        """
        if op.response is None or op.created is not None:
            return None
        if op.response == "JobReference":
            result = {"id": str(result)}
        return self.responses.shape(op.response, result)

    def _arguments(
        self, request: IRequest, op: Operation, params: dict[str, str]
    ) -> tuple[dict[str, Any], ListQuery | None]:
        """
        :returns: the interface method's keyword arguments (``op.arguments``),
            validated, and a list's paging and filters (``None``: not a list).
        :raises errors.RpoolError: the request is refused (400, 413, 415).
        """
        args = self.requests.path_arguments(params)
        query, listing = self.requests.query(op, request.args)
        args.update(query)
        if "path" in op.query:
            args["path"] = self.requests.container_path(request.args.get(b"path", [b""])[0])
        if op.multipart:
            args["blocks"] = self._upload_blocks(request)
        elif op.request is not None:
            args["body"] = self._json_body(request, op)
        return args, listing

    def _call(self, method: Any, args: dict[str, Any]) -> Deferred[Any]:
        """:returns: the backend call's Deferred, within the request's deadline."""
        return self.deadlines.limit(_as_deferred(method(**args))).addErrback(self._timed_out)

    def _timed_out(self, failure: Failure) -> Failure:
        if failure.check(*TIMEOUTS):
            raise errors.BackendTimeout(
                f"the backend did not answer within {self.request_timeout:g} s"
            )
        return failure

    def _read_body(self, request: IRequest) -> bytes:
        content: BinaryIO = request.content
        content.seek(0)
        raw = content.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise errors.PayloadTooLarge(
                f"request body is larger than {self.max_body} bytes"
            )
        return raw

    def _json_body(self, request: IRequest, op: Operation) -> Any:
        ctype = request.getHeader(b"Content-Type")
        raw = self._read_body(request)
        if ctype is not None and raw.strip():
            media = ctype.split(b";")[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                raise errors.UnsupportedMediaType(
                    f"request body must be application/json, not {media.decode('latin-1')}"
                )
        return self.requests.body(op.name, raw)

    def _upload_blocks(self, request: IRequest) -> Iterator[bytes]:
        from rpoold.multipart import file_part_blocks

        return file_part_blocks(request, "file", UPLOAD_BLOCK)

    async def _stream_file(self, request: IRequest, reader: Any) -> None:
        reader = IFileReader(reader)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        try:
            while True:
                block = await _deferred(reader.read_block())
                if not block:
                    break
                request.write(block)
        finally:
            await _deferred(reader.close())

    def _answer(
        self,
        request: IRequest,
        op: Operation,
        params: dict[str, str],
        body: Any,
        result: Any,
        listing: ListQuery | None = None,
    ) -> bytes | None:
        """
        Answer a read's result: its status, and the body the contract says,
        paged when it is a list (writes answer through their operation,
        ``OperationsApi.write``).
        """
        request.setResponseCode(op.success)
        if op.location is not None:
            request.setHeader(b"Location", _location(op.location, params, body, result).encode())
        if op.response is None:
            return None
        if isinstance(result, PoolListing):
            if op.fan_out is not None and result.unreachable:
                request.setHeader(op.fan_out.encode(), ", ".join(sorted(result.unreachable)).encode())
            result = result.items
        shaped = self.responses.shape(op.response, result)
        if op.listing is not None and listing is not None:
            shaped, cursor = page(op.listing, listing, shaped)
            if cursor is not None:
                request.setHeader(b"Link", _next_link(request, cursor).encode())
        return _json_answer(request, json.dumps(shaped).encode())

    def _created(
        self, request: IRequest, op: Operation, location: str | None, params: dict[str, str]
    ) -> Deferred[bytes | None]:
        """
        Answer a 201 with the resource at ``location`` (without one: the
        resource the request's own path names), as its GET operation
        (``op.created``) answers it; an error of that read is the
        request's error (the write itself was done).
        """
        read = rpoold.contract.OPERATIONS_BY_NAME[str(op.created)]
        resource = location if location is not None else _fill(read.path, params)
        backend = self.backends.get(read.family)
        if backend is None:
            raise errors.NotServed(
                f"no backend serves the '{read.family}' resources in this configuration"
            )
        args = self.requests.path_arguments(_path_parameters(read.path, resource))
        response = str(read.response)

        def answer(found: Any) -> bytes:
            request.setResponseCode(op.success)
            if op.location is not None:
                request.setHeader(b"Location", resource.encode())
            return _json_answer(request, json.dumps(self.responses.shape(response, found)).encode())

        return self._call(getattr(backend, read.interface_method), args).addCallback(answer)

    def _answer_rpool_error(self, request: IRequest, error: errors.RpoolError) -> bytes:
        if isinstance(error, Unauthenticated):
            request.setHeader(b"WWW-Authenticate", self.auth.challenge(error.code).encode())
        elif isinstance(error, errors.Forbidden):
            challenge = self.auth.challenge("insufficient_scope")
            request.setHeader(b"WWW-Authenticate", challenge.encode())
        return self._answer_error(request, error.status, error.message)

    @staticmethod
    def _answer_error(request: IRequest, status: int, message: str) -> bytes:
        request.setResponseCode(status)
        request.responseHeaders.removeHeader(b"Location")
        return _json_answer(request, json.dumps({"error": message}).encode())

    # Routing errors ----------------------------------------------------------

    @app.handle_errors(WerkzeugNotFound)
    def not_found(self, request: IRequest, failure: Failure) -> bytes:
        return self._answer_error(request, 404, "no such resource")

    @app.handle_errors(WerkzeugMethodNotAllowed)
    def method_not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        allowed = getattr(failure.value, "valid_methods", None) or []
        request.setHeader(b"Allow", ", ".join(allowed).encode())
        method = request.method.decode("latin-1")
        return self._answer_error(
            request, 405, f"method {method} is not allowed here"
        )


def contract_for(backends: Mapping[str, object]) -> ContractSchemas:
    """
    :param backends: the backend serving each family, by family name.
    :returns: the shipped contract's schemas, each family's request types
        narrowed to the bounds its backend declares (``IRequestBounds``).
    """
    shipped = ContractSchemas()
    bounds: dict[str, dict[str, dict[str, int]]] = {}
    for family, backend in backends.items():
        if not IRequestBounds.providedBy(backend) or family not in FAMILIES_BY_NAME:
            continue
        types = shipped.request_types(list(FAMILIES_BY_NAME[family].operations))
        declared: Mapping[str, Mapping[str, int]] = IRequestBounds(backend).request_bounds
        for key, limits in declared.items():
            type_name, field_name = key.split(".", 1)
            if type_name not in types:
                continue
            merged = bounds.setdefault(type_name, {}).setdefault(field_name, {})
            for bound, value in limits.items():
                merged[bound] = NARROWABLE[bound](merged[bound], value) if bound in merged else value
    if not bounds:
        return shipped
    return ContractSchemas(narrowed(shipped.document, bounds))


class _DecodedUrls(RoutedResource):
    """
    The compiled routes, and before Klein's routing of the rest a check
    that the URL decodes as UTF-8 (Klein answers a bare text 400 otherwise,
    and logs a traceback).  Before any routing, the CORS headers
    (``cors``, when configured) and the answer to a preflight.
    """

    def __init__(self, app: Any, routes: CompiledRoutes, cors: CorsPolicy | None = None) -> None:
        super().__init__(app, routes)
        self.cors = cors

    def render(self, request: IRequest) -> Any:
        if self.cors is not None and self.cors.apply(request):
            _set_route(request, "preflight")
            request.responseHeaders.removeHeader(b"Content-Type")
            setattr(request, "defaultContentType", None)  # noqa: B010 (no text/html label on the 204)
            return b""
        return super().render(request)

    def render_unrouted(self, request: IRequest) -> Any:
        path = b"/".join([*request.prepath, *request.postpath])
        try:
            path.decode("utf-8")
        except UnicodeDecodeError:
            return RpoolApi._answer_error(request, 400, "request path is not UTF-8 once percent-decoded")
        try:
            request.getRequestHostname().decode("utf-8")
        except UnicodeDecodeError:
            return RpoolApi._answer_error(request, 400, "Host header is not UTF-8")
        return super().render_unrouted(request)


def _json_answer(request: IRequest, body: bytes) -> bytes:
    """Label ``body`` as JSON and give its length (so it is not sent chunked)."""
    return _answer(request, body, JSON)


def _answer(request: IRequest, body: bytes, media_type: bytes) -> bytes:
    request.setHeader(b"Content-Type", media_type)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    return body


def _server_url(request: IRequest) -> str:
    """
    :returns: the base URL ``request`` reached the daemon at (its scheme and
        ``Host`` header), for ``servers``; ``/`` (the document's own server)
        when the ``Host`` header is missing or not a host name.
    """
    host = (request.getHeader(b"Host") or b"").decode("latin-1")
    if not _HOST.match(host):
        return "/"
    return f"{'https' if request.isSecure() else 'http'}://{host}"


def _next_link(request: IRequest, cursor: str) -> str:
    """The ``Link`` header of a list's next page: the request's URL with ``cursor`` set."""
    kept = [(name.decode("utf-8"), value.decode("utf-8"))
            for name, values in request.args.items() if name != b"cursor" for value in values]
    query = urlencode([*kept, ("cursor", cursor)])
    return f'<{request.path.decode("ascii", "replace")}?{query}>; rel="next"'


def _location(template: str, params: dict[str, str], body: Any, result: Any) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.startswith("body."):
            return str(body[key[5:]])
        if key in params:
            return params[key]
        return str(result)

    return re.sub(r"{([^}]+)}", substitute, template)


def _fill(template: str, params: dict[str, str]) -> str:
    """:returns: ``template`` with each ``{name}`` replaced by its path parameter."""
    return re.sub(r"{(\w+)}", lambda m: params[m.group(1)], template)


def _path_parameters(template: str, path: str) -> dict[str, str]:
    """
    :returns: the parameters of ``template`` (a contract path) in ``path``,
        a path of that form.
    """
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
    found = re.fullmatch(pattern, path)
    if found is None:
        raise ValueError(f"{path!r} is not a path of the form {template!r}")
    return found.groupdict()


async def _deferred(value: Any) -> Any:
    if isinstance(value, Deferred) or inspect.isawaitable(value):
        return await value
    return value


def _as_deferred(value: Any) -> Deferred[Any]:
    """:returns: what a backend method returned, as a Deferred."""
    if isinstance(value, Deferred):
        return value
    return ensureDeferred(_deferred(value))


def _set_route(request: IRequest, template: str) -> None:
    """Name the route that serves ``request`` (its metrics' ``route`` label)."""
    if hasattr(request, "route_template"):
        request.route_template = template


def _register(op: Operation) -> None:
    for path in (op.path, *op.path_aliases):

        def handler(
            self: RpoolApi, request: IRequest, _template: str = path, **params: str
        ) -> Deferred[bytes | None]:
            return Deferred.fromCoroutine(self._handle(request, op, _template, params))

        handler.__name__ = op.name
        #: What ``resource`` compiles the route into (``rpoold.routing``).
        handler.operation_route = (op, path)  # type: ignore[attr-defined]
        endpoint = op.name if path == op.path else f"{op.name}:{path}"
        RpoolApi.app.route(_klein_path(path), methods=[op.method], endpoint=endpoint)(
            handler
        )


for _op in rpoold.contract.ALL_OPERATIONS:
    _register(_op)
