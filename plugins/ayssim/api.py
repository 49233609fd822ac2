"""
The simulator's HTTP surface: the AYS 8.2 REST API the resource pool uses
(statuses and bodies as AYS 8.2 answers them) and the test controls under
``/_sim/``.

AYS errors are ``{"error": message}``, except the two AYS 8.2 answers
that are not: a request body that fails the schema gets the plain text
``Bad Request Body...`` and an unknown ``fields`` name a JSON *string*.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from klein import Klein
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from plugins.ayssim.blueprints import BlueprintError
from plugins.ayssim.controls import ActionFault, ControlError, EndpointFault
from plugins.ayssim.simulator import Exists, Simulator
from plugins.ayssim.store import Blueprint, FieldError, Repository
from plugins.ayssim.templates import SchemaError

log = Logger()

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
TRUE = ("1", "true", "yes", "on")

Route = Callable[..., Awaitable[Any]]


class HttpError(Exception):
    """An answer other than success: status and body (JSON unless ``text``)."""

    def __init__(self, status: int, body: Any, text: bool = False) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.text = text


def _error(status: int, message: str) -> HttpError:
    return HttpError(status, {"error": message})


def _bad_body(detail: str = "") -> HttpError:
    return HttpError(400, f"Bad Request Body{' :' + detail if detail else ''}", text=True)


def _gated(f: Route) -> Route:
    """Apply injected endpoint faults before an AYS route runs."""
    @functools.wraps(f)
    async def route(self: AysSimulatorApi, request: IRequest, **kwargs: Any) -> Any:
        early = await self._gate(request)
        if early is not None:
            return early
        return await f(self, request, **kwargs)
    return route


class AysSimulatorApi:
    """The Klein app of one simulator."""

    app = Klein()

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._stalled: list[Deferred[None]] = []

    def resource(self) -> Any:
        return self.app.resource()

    # Plumbing ----------------------------------------------------------------------

    @staticmethod
    def _json(request: IRequest, value: Any, status: int = 200) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", JSON)
        return json.dumps(value).encode("utf-8")

    @staticmethod
    def _body(request: IRequest) -> Any:
        """The JSON body; an empty body or ``null`` is ``None``."""
        raw = request.content.read() if request.content is not None else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _bad_body("not JSON") from None

    @staticmethod
    def _arg(request: IRequest, name: str) -> str | None:
        values = request.args.get(name.encode())
        return values[0].decode("utf-8", "replace") if values else None

    def _repository(self, name: str) -> Repository:
        repository = self.sim.repositories.get(name)
        if repository is None:
            raise _error(404, f"Repository {name} doesn't exists")
        return repository

    @staticmethod
    def _blueprint(repository: Repository, name: str, archived: bool = False) -> Blueprint:
        """The active blueprint of that name (or, with ``archived``, else the latest archived one)."""
        blueprint = repository.any_blueprint(name) if archived else repository.active_blueprint(name)
        if blueprint is None:
            raise _error(404, f"No blueprint found with this name '{name}'")
        return blueprint

    async def _gate(self, request: IRequest) -> bytes | None:
        method = request.method.decode()
        path = request.path.decode("utf-8", "replace")
        fault = self.sim.faults.take_endpoint(method, path)
        if fault is None:
            return None
        log.info("injected fault on {method} {path}", method=method, path=path)
        if fault.stall:
            await self._stall(fault)
        if fault.drop:
            request.channel.transport.abortConnection()  # type: ignore[attr-defined]
            await Deferred()  # cancelled when the connection is gone
        if fault.status is not None:
            body = fault.body if fault.body is not None else {"error": "simulated failure"}
            return self._json(request, body, fault.status)
        return None

    async def _stall(self, fault: EndpointFault) -> None:
        d: Deferred[None] = Deferred()
        self._stalled.append(d)
        timer = None

        def release() -> None:
            if not d.called:
                d.callback(None)
        if fault.stall is not True:
            timer = self.sim.clock.callLater(float(fault.stall), release)
        try:
            await d
        finally:
            if d in self._stalled:
                self._stalled.remove(d)
            if timer is not None and timer.active():
                timer.cancel()

    def release_stalled(self) -> None:
        """Let every stalled request go on."""
        stalled, self._stalled = self._stalled, []
        for d in stalled:
            if not d.called:
                d.callback(None)

    @app.handle_errors(HttpError)
    def _http_error(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        assert isinstance(error, HttpError)
        if error.text:
            request.setResponseCode(error.status)
            request.setHeader(b"Content-Type", TEXT)
            return str(error.body).encode("utf-8")
        return self._json(request, error.body, error.status)

    @app.handle_errors(NotFound)
    def _not_found(self, request: IRequest, failure: Failure) -> bytes:
        return self._json(request, {"error": "Not Found"}, 404)

    @app.handle_errors(MethodNotAllowed)
    def _not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        return self._json(request, {"error": "Method Not Allowed"}, 405)

    @app.handle_errors(Exception)
    def _unexpected(self, request: IRequest, failure: Failure) -> bytes | None:
        if failure.check(CancelledError):
            return None
        log.failure("unexpected error on {path}", failure, path=request.path)
        return self._json(request, {"error": "internal error of the simulator"}, 500)

    # Liveness and repositories ---------------------------------------------------

    @app.route("/", methods=["GET"])
    @_gated
    async def index(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return b"<html><body><h1>AYS API (simulated)</h1></body></html>"

    @app.route("/ays/repository", methods=["GET"])
    @_gated
    async def list_repositories(self, request: IRequest) -> bytes:
        return self._json(request, [r.view() for r in self.sim.repositories.values()])

    @app.route("/ays/repository", methods=["POST"])
    @_gated
    async def create_repository(self, request: IRequest) -> bytes:
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
                or not isinstance(body.get("git_url"), str) or not body["name"]:
            raise _bad_body("name and git_url (strings) are required")
        try:
            repository = self.sim.create_repository(body["name"], body["git_url"])
        except Exists:
            raise _error(409, f'AYS Repository "{body["name"]}" already exsits') from None
        return self._json(request, repository.view(), 201)

    @app.route("/ays/repository/<repo>", methods=["GET"])
    @_gated
    async def get_repository(self, request: IRequest, repo: str) -> bytes:
        return self._json(request, self._repository(repo).view())

    @app.route("/ays/repository/<repo>", methods=["DELETE"])
    @_gated
    async def delete_repository(self, request: IRequest, repo: str) -> bytes:
        self._repository(repo)
        del self.sim.repositories[repo]
        request.setResponseCode(204)
        return b""

    # Blueprints -----------------------------------------------------------------------

    @app.route("/ays/repository/<repo>/blueprint", methods=["GET"])
    @_gated
    async def list_blueprints(self, request: IRequest, repo: str) -> bytes:
        repository = self._repository(repo)
        archived = self._arg(request, "archived")
        blueprints = repository.blueprints
        if archived is not None and archived.lower() not in TRUE:
            blueprints = [b for b in blueprints if not b.archived]
        return self._json(request, [{"name": b.name} for b in blueprints])

    @app.route("/ays/repository/<repo>/blueprint", methods=["POST"])
    @_gated
    async def create_blueprint(self, request: IRequest, repo: str) -> bytes:
        repository = self._repository(repo)
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise _bad_body("'name' is required and must be a string")
        if not isinstance(body.get("content"), str):
            raise _bad_body("'content' is required and must be a string")
        if repository.active_blueprint(body["name"]) is not None:
            raise _error(409, f"Blueprint with the name {body['name']}' already exists")
        blueprint = Blueprint(body["name"], body["content"])
        repository.blueprints.append(blueprint)
        return self._json(request, blueprint.view(repository), 201)

    @app.route("/ays/repository/<repo>/blueprint/<bp>", methods=["GET"])
    @_gated
    async def get_blueprint(self, request: IRequest, repo: str, bp: str) -> bytes:
        repository = self._repository(repo)
        blueprint = self._blueprint(repository, bp, archived=True)
        return self._json(request, blueprint.view(repository))

    @app.route("/ays/repository/<repo>/blueprint/<bp>", methods=["POST"])
    @_gated
    async def execute_blueprint(self, request: IRequest, repo: str, bp: str) -> bytes:
        repository = self._repository(repo)
        blueprint = self._blueprint(repository, bp)
        try:
            await self.sim.execute_blueprint(repository, blueprint.content)
        except BlueprintError as e:
            raise _error(500, f"Error during execution of the blueprint:\n {e}") from None
        return self._json(request, {"msg": f"Blueprint {bp} executed"})

    @app.route("/ays/repository/<repo>/blueprint/<bp>", methods=["DELETE"])
    @_gated
    async def delete_blueprint(self, request: IRequest, repo: str, bp: str) -> bytes:
        repository = self._repository(repo)
        blueprint = self._blueprint(repository, bp, archived=True)
        repository.blueprints.remove(blueprint)
        request.setResponseCode(204)
        return b""

    @app.route("/ays/repository/<repo>/blueprint/<bp>/archive", methods=["PUT"])
    @_gated
    async def archive_blueprint(self, request: IRequest, repo: str, bp: str) -> bytes:
        repository = self._repository(repo)
        blueprint = self._blueprint(repository, bp)
        blueprint.archived = True
        return self._json(request, {"msg": f"Blueprint {bp} archived"})

    @app.route("/ays/repository/<repo>/blueprint/<bp>/restore", methods=["PUT"])
    @_gated
    async def restore_blueprint(self, request: IRequest, repo: str, bp: str) -> bytes:
        repository = self._repository(repo)
        blueprint = repository.any_blueprint(bp)
        if blueprint is None or not blueprint.archived:
            raise _error(404, f"No archived blueprint found with this name '{bp}'")
        blueprint.archived = False
        return self._json(request, {"msg": f"Blueprint {bp} restored"})

    # Runs ------------------------------------------------------------------------------------

    @app.route("/ays/repository/<repo>/aysrun", methods=["POST"])
    @_gated
    async def create_run(self, request: IRequest, repo: str) -> bytes:
        repository = self._repository(repo)
        simulate = (self._arg(request, "simulate") or "").lower() in TRUE
        try:
            run = await self.sim.create_run(repository, simulate)
        except Exception as e:
            raise _error(500, f"Can't create run: {e}") from None
        return self._json(request, run.view())

    @app.route("/ays/repository/<repo>/aysrun", methods=["GET"])
    @_gated
    async def list_runs(self, request: IRequest, repo: str) -> bytes:
        repository = self._repository(repo)
        return self._json(request, [{"key": r.key, "state": r.state, "epoch": r.epoch}
                                    for r in repository.runs.values()])

    @app.route("/ays/repository/<repo>/aysrun/<key>", methods=["GET"])
    @_gated
    async def get_run(self, request: IRequest, repo: str, key: str) -> bytes:
        run = self._repository(repo).runs.get(key)
        if run is None:
            raise _error(404, f"No run with key {key} found")
        return self._json(request, run.view())

    # Services ------------------------------------------------------------------------------

    @app.route("/ays/repository/<repo>/service", methods=["GET"])
    @_gated
    async def list_all_services(self, request: IRequest, repo: str) -> bytes:
        services = sorted(self._repository(repo).services, key=lambda s: s.role)
        return self._json(request, [{"role": s.role, "name": s.name} for s in services])

    @app.route("/ays/repository/<repo>/service/<role>", methods=["GET"])
    @_gated
    async def list_services(self, request: IRequest, repo: str, role: str) -> bytes:
        repository = self._repository(repo)
        services = repository.by_role(role)
        parent = self._arg(request, "parent")
        if parent is not None:
            actor, sep, name = parent.partition("!")
            if not sep or not actor or not name:
                raise _error(400, f"parent must be '<actor>!<name>', not {parent!r}")
            services = [s for s in services
                        if s.parent is not None and s.parent.actor == actor and s.parent.name == name]
        fields = [f.strip() for f in (self._arg(request, "fields") or "").split(",") if f.strip()]
        try:
            items = [s.item(fields) for s in sorted(services, key=lambda s: s.role)]
        except FieldError as e:
            raise HttpError(400, str(e)) from None
        return self._json(request, items)

    @app.route("/ays/repository/<repo>/service/<role>/<name>", methods=["GET"])
    @_gated
    async def get_service(self, request: IRequest, repo: str, role: str, name: str) -> bytes:
        service = self._repository(repo).find(role, name)
        if service is None:
            raise _error(404, "Service not found")
        return self._json(request, service.view())

    @app.route("/ays/repository/<repo>/service/<role>/<name>", methods=["DELETE"])
    @_gated
    async def delete_service(self, request: IRequest, repo: str, role: str, name: str) -> bytes:
        repository = self._repository(repo)
        service = repository.find(role, name)
        if service is None:
            raise _error(404, f"Service role:{role} name:{name} not found in the repo {repo}")
        repository.remove(service)
        request.setResponseCode(204)
        return b""

    # Test controls -----------------------------------------------------------------------------

    def _sim_repository(self, request: IRequest) -> Repository:
        name = self._arg(request, "repo") or self.sim.default_repository
        if not name:
            raise _error(400, "name the repository with ?repo=")
        return self._repository(name)

    @app.route("/_sim/reset", methods=["POST"])
    async def reset(self, request: IRequest) -> bytes:
        self.release_stalled()
        self.sim.reset()
        request.setResponseCode(204)
        return b""

    @app.route("/_sim/nodes", methods=["POST"])
    async def seed_nodes(self, request: IRequest) -> bytes:
        body = self._body(request)
        entries = body if isinstance(body, list) else [body]
        repository = self._sim_repository(request)
        seeded = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                    or not isinstance(entry.get("redisAddr"), str):
                raise _error(400, "each node needs name and redisAddr (strings)")
            try:
                service = self.sim.seed_node(
                    repository, entry["name"], entry["redisAddr"],
                    redis_port=entry.get("redisPort", 6379), hostname=entry.get("hostname", ""),
                    status=entry.get("status", "running"), password=entry.get("redisPassword", ""),
                    db=int(entry.get("db", 0)))
            except (SchemaError, BlueprintError, TypeError, ValueError) as e:
                raise _error(400, str(e)) from None
            seeded.append(service.view())
        return self._json(request, seeded, 201)

    @app.route("/_sim/blueprints", methods=["GET"])
    async def sim_blueprints(self, request: IRequest) -> bytes:
        repository = self._sim_repository(request)
        return self._json(request, [{**b.view(repository), "epoch": b.epoch} for b in repository.blueprints])

    @app.route("/_sim/runs", methods=["GET"])
    async def sim_runs(self, request: IRequest) -> bytes:
        repository = self._sim_repository(request)
        return self._json(request, [r.view() for r in repository.runs.values()])

    @app.route("/_sim/changes", methods=["GET"])
    async def sim_changes(self, request: IRequest) -> bytes:
        return self._json(request, self.sim.changes)

    @app.route("/_sim/faults", methods=["GET"])
    async def list_faults(self, request: IRequest) -> bytes:
        faults = self.sim.faults
        return self._json(request, {"actions": [f.view() for f in faults.actions],
                                    "endpoints": [f.view() for f in faults.endpoints]})

    @app.route("/_sim/faults", methods=["DELETE"])
    async def clear_faults(self, request: IRequest) -> bytes:
        self.sim.faults.clear()
        self.release_stalled()
        request.setResponseCode(204)
        return b""

    @app.route("/_sim/faults/actions", methods=["POST"])
    async def add_action_fault(self, request: IRequest) -> bytes:
        try:
            fault = ActionFault.from_spec(self._body(request))
        except ControlError as e:
            raise _error(400, str(e)) from None
        self.sim.faults.actions.append(fault)
        return self._json(request, fault.view(), 201)

    @app.route("/_sim/faults/actions", methods=["DELETE"])
    async def clear_action_faults(self, request: IRequest) -> bytes:
        self.sim.faults.actions.clear()
        request.setResponseCode(204)
        return b""

    @app.route("/_sim/faults/endpoints", methods=["POST"])
    async def add_endpoint_fault(self, request: IRequest) -> bytes:
        try:
            fault = EndpointFault.from_spec(self._body(request))
        except ControlError as e:
            raise _error(400, str(e)) from None
        self.sim.faults.endpoints.append(fault)
        return self._json(request, fault.view(), 201)

    @app.route("/_sim/faults/endpoints", methods=["DELETE"])
    async def clear_endpoint_faults(self, request: IRequest) -> bytes:
        self.sim.faults.endpoints.clear()
        self.release_stalled()
        request.setResponseCode(204)
        return b""
