"""
What an action handler gets: the service, the action's arguments, a log,
the other services of the repository and the core0 nodes.

Handlers are plain async callables keyed by (actor, action) in
``HANDLERS``; an action nobody registered is one of AYS's default empty
actions and succeeds without effect.  A handler fails by raising; the
message becomes the job's ``errormsg`` log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from plugins.ayssim.node_commands import INodeCommands, NodeAddress
from plugins.ayssim.store import Repository, Service

T = TypeVar("T")

NODE_ACTOR = "node.g8os"

Handler = Callable[["ActionContext"], Awaitable[None]]
LogSink = Callable[..., None]

#: Action handlers by (actor, action); filled by ``plugins.ayssim.handlers``.
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(actor: str, *actions: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine function for ``actions`` of ``actor``."""
    def register(f: Handler) -> Handler:
        for action in actions:
            HANDLERS[(actor, action)] = f
        return f
    return register


class ActionFailed(Exception):
    """An action handler gives up; the message is what the job log shows."""


class Engine(Protocol):
    """
    What an action context uses of the simulator running the action (a
    ``plugins.ayssim.simulator.Simulator``).  The simulator imports this
    module and the handlers, which import it too; so this module names
    only these, and does not import the simulator back.
    """

    @property
    def clock(self) -> IReactorTime:
        """The simulator's time (the reactor, or a test clock)."""
        ...

    @property
    def nodes(self) -> INodeCommands:
        """How actions reach core0 nodes."""
        ...

    @property
    def handlers(self) -> Mapping[tuple[str, str], Handler]:
        """The action handlers by (actor, action)."""
        ...

    @property
    def wait_timeout(self) -> float:
        """Bound, in seconds, on the waits inside actions."""
        ...

    @property
    def poll_interval(self) -> float:
        """Seconds between the checks of a wait."""
        ...

    async def create_service(self, repository: Repository, actor: str, name: str,
                             arguments: Mapping[str, Any]) -> Service:
        """Create a service as a blueprint would (input, links, init)."""
        ...

    def node_address(self, node: Service) -> NodeAddress:
        """Where the core0 of a ``node.g8os`` service listens."""
        ...


class ActionContext:
    """
    :ivar sim: the simulator running the action.
    :ivar service: the service the action runs for.
    :ivar action: the action's name.
    :ivar arguments: the action's arguments (the given blueprint values
        for ``input`` and ``processChange``; empty in runs).
    """

    def __init__(self, sim: Engine, service: Service, action: str,
                 arguments: dict[str, Any], log: LogSink) -> None:
        self.sim = sim
        self.service = service
        self.action = action
        self.arguments = arguments
        self._log = log

    @property
    def data(self) -> dict[str, Any]:
        return self.service.data

    @property
    def repository(self) -> Repository:
        return self.service.repository

    def now(self) -> int:
        return int(self.sim.clock.seconds())

    def log(self, text: str, category: str = "msg") -> None:
        self._log(text, category)

    # Services ----------------------------------------------------------------

    def find(self, role: str, name: str) -> Service | None:
        return self.repository.find(role, name)

    def require(self, role: str, name: str) -> Service:
        service = self.find(role, name)
        if service is None:
            raise ActionFailed(f"service {role}!{name} not found")
        return service

    def node_of(self, service: Service | None = None) -> Service:
        """The ``node.g8os`` service up the parent chain."""
        start = service or self.service
        for current in (start, *reversed(start.ancestors())):
            if current.actor == NODE_ACTOR:
                return current
        raise ActionFailed(f"{start.actor}!{start.name} has no node.g8os ancestor")

    async def create_service(self, actor: str, name: str, arguments: dict[str, Any]) -> Service:
        """Create a service as a blueprint would (input, links, init)."""
        return await self.sim.create_service(self.repository, actor, name, arguments)

    def remove_service(self, service: Service) -> None:
        """Remove a service and its children (no action runs)."""
        self.repository.remove(service)

    async def call(self, action: str, service: Service | None = None,
                   arguments: dict[str, Any] | None = None) -> None:
        """Run another action's handler inside this one (as templates call ``self.start()``)."""
        target = service or self.service
        handler = self.sim.handlers.get((target.actor, action))
        if handler is not None:
            await handler(ActionContext(self.sim, target, action, arguments or {}, self._log))

    # Nodes --------------------------------------------------------------------------

    def address(self, node: Service | None = None) -> NodeAddress:
        return self.sim.node_address(node or self.node_of())

    async def core0(self, command: str, arguments: dict[str, Any] | None = None, *,
                    node: Service | None = None, container: int = 0) -> Any:
        """Run a core0 command on the node (or in a container) and return its data."""
        address = self.address(node)
        return await self.sim.nodes.execute(address, command, arguments or {}, container)

    async def spawn(self, command: str, arguments: dict[str, Any] | None = None, *,
                    node: Service | None = None, container: int = 0) -> str:
        """Start a core0 command without waiting for its end; returns the job id."""
        address = self.address(node)
        return str(await self.sim.nodes.spawn(address, command, arguments or {}, container))

    # Time ------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> Deferred[None]:
        return deferLater(self.sim.clock, seconds, lambda: None)

    async def poll(self, check: Callable[[], Awaitable[T | None]], what: str,
                   timeout: float | None = None) -> T:
        """
        Call ``check`` until it returns something other than ``None``.

        :raises ActionFailed: after ``timeout`` seconds (the simulator's
            wait timeout by default).
        """
        limit = self.sim.wait_timeout if timeout is None else timeout
        deadline = self.sim.clock.seconds() + limit
        while True:
            value = await check()
            if value is not None:
                return value
            if self.sim.clock.seconds() >= deadline:
                raise ActionFailed(f"{what}: gave up after {limit:g} s")
            await self.sleep(self.sim.poll_interval)
