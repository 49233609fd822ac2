"""
AYS as the core0 backend's node registry: the nodes are the ``node.g8os``
services of the repository, each reached at its ``redisAddr``,
``redisPort`` and ``redisPassword`` (as the original server did).

Configuration::

    [backends.core0]
    plugin = "core0"
    registry = "ays:ays"      # <kind>:<backend instance providing INodeRegistry>

The AYS backend provides ``INodeRegistryProvider`` and hands out one
``AysNodeRegistry``.  A node's address is kept for
``ttl`` seconds, so direct calls do not each ask AYS; when AYS cannot be
reached, the last address known is used (and logged once), so the nodes
stay reachable through a short AYS outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.ays.blueprints import NODE, NODE_ROLE
from plugins.ays.client import AysClient
from plugins.ays.readiness import Guard
from rpoold.errors import BackendTimeout, BackendUnavailable, NotFound, ServiceUnavailable
from rpoold.nodes import INodeRegistry, NodeAddress

log = Logger()

#: AYS failures during which the last known address is used.
OUTAGE = (BackendUnavailable, BackendTimeout, ServiceUnavailable)


def address_of(name: str, data: dict[str, Any]) -> NodeAddress:
    """Where node ``name``'s core0 agent is, from its ``node.g8os`` service data."""
    return NodeAddress(id=name, host=str(data.get("redisAddr") or ""),
                       port=int(data.get("redisPort") or 6379),
                       password=str(data.get("redisPassword") or ""),
                       hostname=str(data.get("hostname") or ""))


@implementer(INodeRegistry)
class AysNodeRegistry:
    """
    :param client: the AYS client.
    :param clock: the reactor.
    :param guarded: runs a coroutine using the client if AYS is ready
        (``ServiceUnavailable`` otherwise): the backend's readiness.
    :param forget: uninstalls a node in AYS and forgets it (the backend's
        ``delete_node``).
    :param ttl: seconds a node's address is used without asking AYS again.
    """

    def __init__(self, client: AysClient, clock: Any,
                 guarded: Guard,
                 forget: Callable[[str], Deferred[None]], ttl: float = 10.0) -> None:
        self.client = client
        self.clock = clock
        self.guarded = guarded
        self.forget = forget
        self.ttl = ttl
        #: Last known address of each node, and when AYS said so.
        self.known: dict[str, tuple[NodeAddress, float]] = {}
        self._outage_told = False

    def _now(self) -> float:
        return float(self.clock.seconds())

    def _remember(self, node: NodeAddress) -> NodeAddress:
        self.known[node.id] = (node, self._now())
        self._outage_told = False
        return node

    def _stale(self, error: Exception) -> None:
        if not self._outage_told:
            log.warn("AYS unreachable, using the last known node addresses: {error}",
                     error=getattr(error, "message", str(error)))
            self._outage_told = True

    async def _list(self) -> list[NodeAddress]:
        try:
            items = await self.guarded(self.client.list_services(
                NODE, ("hostname", "redisAddr", "redisPort", "redisPassword")))
        except OUTAGE as e:
            if not self.known:
                raise
            self._stale(e)
            return sorted((n for n, _ in self.known.values()), key=lambda n: n.id)
        nodes = sorted((address_of(str(i["name"]), i.get("data") or {}) for i in items),
                       key=lambda n: n.id)
        self.known = {}
        return [self._remember(n) for n in nodes]

    async def _get(self, nodeid: str) -> NodeAddress:
        cached = self.known.get(nodeid)
        if cached is not None and self._now() - cached[1] < self.ttl:
            return cached[0]
        try:
            service = await self.guarded(self.client.get_service(NODE_ROLE, nodeid))
        except OUTAGE as e:
            if cached is None:
                raise
            self._stale(e)
            return cached[0]
        if service is None:
            self.known.pop(nodeid, None)
            raise NotFound(f"node '{nodeid}' does not exist")
        return self._remember(address_of(nodeid, service.get("data") or {}))

    def list_nodes(self) -> Deferred[list[NodeAddress]]:
        return ensureDeferred(self._list())

    def get_node(self, nodeid: str) -> Deferred[NodeAddress]:
        return ensureDeferred(self._get(nodeid))

    def forget_node(self, nodeid: str) -> Deferred[None]:
        """Forget the node in AYS (uninstall, then delete its service)."""
        async def forget() -> None:
            await self.forget(nodeid)
            self.known.pop(nodeid, None)

        return ensureDeferred(forget())

    def dropped(self, nodeid: str) -> None:
        """The AYS backend deleted this node."""
        self.known.pop(nodeid, None)
