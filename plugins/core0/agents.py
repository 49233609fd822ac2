"""
core0's side of ``rpoold.nodes.INodeAgents``: what another backend (the
AYS backend) asks of nodes themselves, over the core0 client, at the
address it has for each node.  The answers are already in the pool's
shapes (``plugins.core0.shapes``), so the asking backend parses no core0
data.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.client import NodeClient
from rpoold.nodes import INodeAgents, NodeAddress


@implementer(INodeAgents)
class NodeAgents:
    """
    One small core0 client per node address (a node whose address changes
    gets a new one; the old one is closed).

    :param reactor: the reactor.
    :param timeout: seconds a command may take unless told otherwise.
    """

    def __init__(self, reactor: Any, timeout: float) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.clients: dict[NodeAddress, NodeClient] = {}

    def _client(self, node: NodeAddress) -> NodeClient:
        client = self.clients.get(node)
        if client is None:
            for old in [a for a in self.clients if a.id == node.id]:
                self.clients.pop(old).close()
            client = NodeClient(node, pool_size=2, timeout=self.timeout, reactor=self.reactor)
            self.clients[node] = client
        return client

    def disks(self, node: NodeAddress) -> Deferred[dict[str, dict[str, Any]]]:
        async def ask() -> dict[str, dict[str, Any]]:
            listing = await self._client(node).call("disk.list")
            return shapes.block_devices(listing if isinstance(listing, dict) else {})

        return ensureDeferred(ask())

    def running_containers(self, node: NodeAddress, timeout: float) -> Deferred[set[str]]:
        async def ask() -> set[str]:
            listing = await self._client(node).call("corex.list", timeout=timeout)
            return set(shapes.container_names(listing if isinstance(listing, dict) else {}))

        return ensureDeferred(ask())

    def close(self) -> Deferred[Any]:
        clients, self.clients = list(self.clients.values()), {}
        return DeferredList([c.close() for c in clients], consumeErrors=True)
