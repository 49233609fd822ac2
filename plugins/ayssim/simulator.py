"""
The simulator's engine: repositories, blueprint execution (service
creation with input rules, parent and producer links, ``init``;
``processChange`` for changed services; scheduling), runs executed in
the background, and the seeding of node services.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.ayssim.blueprints import ActionEntry, BlueprintError, ServiceBlock, check_name, parse
from plugins.ayssim.context import HANDLERS, NODE_ACTOR, ActionContext, ActionFailed, Handler
from plugins.ayssim.controls import Faults
from plugins.ayssim.handlers import load as load_handlers
from plugins.ayssim.node_commands import CommandFailed, INodeCommands, NodeAddress
from plugins.ayssim.runs import Job, Run, build
from plugins.ayssim.store import Repository, Service
from plugins.ayssim.templates import Catalogue, SchemaError, Template

log = Logger()

#: AYS's action timeout when the template sets none.
JOB_TIMEOUT = 3000.0
#: Bound on every wait inside an action (the templates wait forever or 60 s).
WAIT_TIMEOUT = 60.0

ALWAYS_RESCHEDULED = ("start", "stop")


class Exists(Exception):
    """A repository of that name exists."""


def failure_message(failure: Failure) -> str:
    error = failure.value
    if isinstance(error, (ActionFailed, CommandFailed, BlueprintError)):
        return str(error)
    if isinstance(error, DeferredTimeout):
        return "action timed out"
    return f"{type(error).__name__}: {error}"


class Simulator:
    """
    :param nodes: how actions reach core0 nodes.
    :param default_repository: a repository created at start and on reset.
    :param job_timeout: seconds an action may take in a run.
    :param wait_timeout: bound on the waits inside actions (zerotier
        network up, domain up or down).
    """

    def __init__(
        self,
        nodes: INodeCommands,
        clock: Any = None,
        catalogue: Catalogue | None = None,
        handlers: Mapping[tuple[str, str], Handler] | None = None,
        default_repository: str | None = None,
        job_timeout: float = JOB_TIMEOUT,
        wait_timeout: float = WAIT_TIMEOUT,
        poll_interval: float = 0.2,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.nodes = nodes
        self.catalogue = catalogue or Catalogue()
        if handlers is None:
            load_handlers()
            handlers = HANDLERS
        self.handlers = dict(handlers)
        self.default_repository = default_repository
        self.job_timeout = job_timeout
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.repositories: dict[str, Repository] = {}
        self.faults = Faults()
        #: Redis database of each node service (not part of the node schema).
        self.node_dbs: dict[str, int] = {}
        #: Outcomes of ``processChange`` calls, oldest first.
        self.changes: list[dict[str, Any]] = []
        #: Called after ``reset`` (the node list re-seeds its nodes).
        self.reset_hooks: list[Callable[[], None]] = []
        self._setup()

    def _setup(self) -> None:
        if self.default_repository:
            self.create_repository(self.default_repository)

    def reset(self) -> None:
        """Forget every repository, fault and change; seed again."""
        self.repositories.clear()
        self.faults.clear()
        self.changes.clear()
        self._setup()
        for hook in list(self.reset_hooks):
            hook()

    # Repositories ---------------------------------------------------------------

    def create_repository(self, name: str, git_url: str = "") -> Repository:
        """:raises Exists: when a repository of that name exists."""
        if name in self.repositories:
            raise Exists(name)
        repository = Repository(name, git_url)
        self.repositories[name] = repository
        return repository

    # Blueprints ---------------------------------------------------------------

    async def execute_blueprint(self, repository: Repository, content: str) -> None:
        """
        Create the blueprint's new services, hand changed values of
        existing ones to ``processChange``, schedule its actions.

        :raises BlueprintError: on any error (some services may have been
            created by then, as in AYS).
        """
        await repository.lock.acquire()
        try:
            parsed = parse(content, self.catalogue)
            for block in parsed.services:
                await self._apply(repository, block)
            for entry in parsed.actions:
                self._schedule(repository, entry)
        finally:
            repository.lock.release()

    async def _apply(self, repository: Repository, block: ServiceBlock) -> None:
        template = self._template(block.actor)
        existing = repository.find(template.role, block.instance)
        if existing is None:
            await self.create_service(repository, block.actor, block.instance, block.arguments)
            return
        missing = object()
        changed = any(existing.data.get(k, missing) != v for k, v in block.arguments.items())
        if changed and "processChange" in existing.template.own_actions:
            self.clock.callLater(0, self._process_change, existing, dict(block.arguments))

    def _template(self, actor: str) -> Template:
        template = self.catalogue.get(actor)
        if template is None:
            raise BlueprintError(f"actor {actor!r} does not exist")
        return template

    def _process_change(self, service: Service, arguments: dict[str, Any]) -> None:
        record: dict[str, Any] = {"service": f"{service.actor}!{service.name}",
                                  "arguments": arguments, "state": "running", "message": "",
                                  "epoch": int(time.time())}
        self.changes.append(record)

        def done(result: Any) -> None:
            if isinstance(result, Failure):
                record.update(state="error", message=failure_message(result))
                log.warn("processChange of {service} failed: {message}",
                         service=record["service"], message=record["message"])
            else:
                record["state"] = "ok"

        d = ensureDeferred(self.perform(service, "processChange", arguments, self._service_log(service)))
        d.addTimeout(self.job_timeout, self.clock)
        d.addBoth(done)

    async def create_service(self, repository: Repository, actor: str, name: str,
                             arguments: Mapping[str, Any]) -> Service:
        """
        Create a service: check the given values, run ``input``, resolve
        its parent and producers, store it, run ``init``.

        :raises BlueprintError: on any failure; after a failing ``init``
            the service stays, with ``init`` in state ``error``.
        """
        template = self._template(actor)
        check_name(name)
        label = f"{actor}!{name}"
        if repository.find(template.role, name) is not None:
            raise BlueprintError(f"service {template.role}!{name} exists")
        try:
            data = template.check(arguments)
        except SchemaError as e:
            raise BlueprintError(f"{label}: {e}") from None
        service = Service(repository, template, name, data)
        sink = self._service_log(service)
        try:
            await self.perform(service, "input", dict(arguments), sink)
        except Exception:
            raise BlueprintError(f"input of {label} failed: {failure_message(Failure())}") from None
        parent = self._parent(repository, service)
        producers = self._producers(repository, service)
        repository.add(service)
        service.set_parent(parent)
        for producer in producers:
            service.link_producer(producer)
        service.actions["input"] = "ok"
        try:
            await self.perform(service, "init", {}, sink)
        except Exception:
            service.actions["init"] = "error"
            service.state = "error"
            raise BlueprintError(f"init of {label} failed: {failure_message(Failure())}") from None
        service.actions["init"] = "ok"
        service.state = "ok"
        return service

    @staticmethod
    def _parent(repository: Repository, service: Service) -> Service | None:
        link = service.template.parent
        if link is None:
            return None
        value = service.data.get(link.field) or ""
        parent = repository.find(link.role, value) if value else None
        if parent is None or parent.role != link.role:
            raise BlueprintError(
                f"could not find parent {link.role}!{value} of {service.actor}!{service.name} "
                f"(field {link.field!r})")
        return parent

    @staticmethod
    def _producers(repository: Repository, service: Service) -> list[Service]:
        producers: list[Service] = []
        for link in service.template.consumes:
            value = service.data.get(link.field)
            names = value if isinstance(value, list) else [value] if value else []
            found: list[Service] = []
            for name in names:
                producer = repository.find(link.role, name)
                if producer is not None and producer.role == link.role and producer not in found:
                    found.append(producer)
            if len(found) > link.high:
                raise BlueprintError(
                    f"{service.actor}!{service.name}: at most {link.high} {link.role} producer(s) "
                    f"allowed, {len(found)} given")
            for other in repository.by_role(link.role):
                if len(found) >= link.low:
                    break
                if other.role == link.role and other not in found and other is not service:
                    found.append(other)
            if len(found) < link.low:
                raise BlueprintError(
                    f"{service.actor}!{service.name}: not enough producers of role {link.role} "
                    f"({len(found)} found, {link.low} needed)")
            producers.extend(p for p in found if p not in producers)
        return producers

    def _schedule(self, repository: Repository, entry: ActionEntry) -> None:
        for service in repository.by_actor(entry.actor):
            if entry.service is not None and service.name != entry.service:
                continue
            for action in entry.actions:
                state = service.actions.get(action)
                if state is None:
                    log.info("{service} has no action {action}; ignored",
                             service=f"{service.actor}!{service.name}", action=action)
                    continue
                if state == "ok" and not entry.force and action not in ALWAYS_RESCHEDULED:
                    continue
                if state == "running":
                    service.rescheduled.add(action)
                else:
                    service.actions[action] = "scheduled"

    @staticmethod
    def _service_log(service: Service) -> Callable[..., None]:
        label = f"{service.actor}!{service.name}"

        def sink(text: str, category: str = "msg") -> None:
            log.info("{service}: {category}: {text}", service=label, category=category, text=text)
        return sink

    # Actions -------------------------------------------------------------------------

    async def perform(self, service: Service, action: str, arguments: dict[str, Any],
                      sink: Callable[..., None]) -> None:
        """Run one action: injected faults first, then its handler (if any)."""
        fault = self.faults.take_action(service.actor, action, service.name)
        if fault is not None:
            if fault.delay:
                sink(f"simulated delay of {fault.delay:g} s")
                await deferLater(self.clock, fault.delay, lambda: None)
            if fault.error is not None:
                raise ActionFailed(fault.error)
        handler = self.handlers.get((service.actor, action))
        if handler is not None:
            await handler(ActionContext(self, service, action, arguments, sink))

    def node_address(self, node: Service) -> NodeAddress:
        data = node.data
        if not data.get("redisAddr"):
            raise ActionFailed(f"node {node.name} has no redisAddr")
        return NodeAddress(str(data["redisAddr"]), int(data.get("redisPort") or 6379),
                           str(data.get("redisPassword") or ""), self.node_dbs.get(node.name, 0),
                           name=node.name)

    # Runs ---------------------------------------------------------------------------------

    async def create_run(self, repository: Repository, simulate: bool = False) -> Run:
        """Build (and claim) a run; unless ``simulate``, execute it in the background."""
        await repository.lock.acquire()
        try:
            run = build(repository, simulate)
        finally:
            repository.lock.release()
        repository.runs[run.key] = run
        if not simulate:
            self.clock.callLater(0, self._start, run)
        return run

    def _start(self, run: Run) -> None:
        def crashed(failure: Failure) -> None:
            log.failure("run {key} crashed", failure, key=run.key)

        ensureDeferred(self._execute(run)).addErrback(crashed)

    async def _execute(self, run: Run) -> None:
        run.state = "running"
        run.touch()
        failed = False
        for step in run.steps:
            step.state = "running"
            run.touch()
            await DeferredList([ensureDeferred(self._job(run, job)) for job in step.jobs])
            step.state = "error" if any(j.state == "error" for j in step.jobs) else "ok"
            if step.state == "error":
                failed = True
                break
        for job in run.jobs:
            if job.state == "new":
                self._release(run, job)
        run.state = "error" if failed else "ok"
        run.touch()

    def _release(self, run: Run, job: Job) -> None:
        """
        Drop the run's claim on a job's action: one the job never ran gets
        back its state from before the claim; one scheduled again while
        the run held it goes back to ``scheduled``.
        """
        service, action = job.service, job.action
        previous = run.claims.pop((service.key, action), None)
        if previous is not None and service.actions.get(action) == "running":
            service.actions[action] = previous
        if action in service.rescheduled:
            service.rescheduled.discard(action)
            service.actions[action] = "scheduled"

    async def _job(self, run: Run, job: Job) -> None:
        service, action = job.service, job.action
        job.state = "running"
        run.touch()
        d = ensureDeferred(self.perform(service, action, {}, job.log))
        d.addTimeout(self.job_timeout, self.clock)
        try:
            await d
        except Exception:
            failure = Failure()
            job.state = "error"
            job.log(failure_message(failure), "errormsg")
            job.log(failure.getTraceback(), "trace")
            service.actions[action] = "error"
            service.state = "error"
        else:
            job.state = "ok"
            service.actions[action] = "ok"
            service.state = "ok"
        self._release(run, job)
        run.touch()

    # Seeding ----------------------------------------------------------------------------

    def seed_node(self, repository: Repository, name: str, redis_addr: str, redis_port: int = 6379,
                  hostname: str = "", status: str = "running", password: str = "",
                  db: int = 0) -> Service:
        """
        A ``node.g8os`` service as the bootstrap service would leave it
        (``install`` done), or the existing one with these values.

        :raises SchemaError: for values that do not fit the schema.
        """
        check_name(name, "node name")
        template = self._template(NODE_ACTOR)
        values = {"redisAddr": redis_addr, "redisPort": redis_port, "hostname": hostname,
                  "status": status, "redisPassword": password}
        checked = template.check(values)
        self.node_dbs[name] = db
        existing = repository.find("node", name)
        if existing is not None:
            existing.data.update({k: checked[k] for k in values})
            return existing
        checked["id"] = name
        service = Service(repository, template, name, checked)
        repository.add(service)
        for action in ("input", "init", "install"):
            service.actions[action] = "ok"
        service.state = "ok"
        return service
