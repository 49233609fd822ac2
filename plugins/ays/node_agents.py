"""
The nodes' core0 agents, reached with the core0 backend's client at the
address AYS has for each node (its ``node.g8os`` service), for what the AYS
backend must ask a node itself: its disks (storage pool and storage
cluster pre-checks, as the original did) and which containers it really
runs (so container status follows the node, not only AYS's last action).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from zope.interface import implementer

from plugins.ays.registry import address_of
from plugins.core0 import shapes
from plugins.core0.client import NodeClient
from rpoold.nodes import INodeAgents


@implementer(INodeAgents)
class NodeAgents:
    """
    One small core0 client per node address.

    :param reactor: the reactor.
    :param timeout: seconds a command may take unless told otherwise.
    """

    def __init__(self, reactor: Any, timeout: float) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.clients: dict[tuple[str, str, int, str], NodeClient] = {}

    def _client(self, nodeid: str, data: dict[str, Any]) -> NodeClient:
        address = address_of(nodeid, data)
        key = (address.id, address.host, address.port, address.password)
        client = self.clients.get(key)
        if client is None:
            for old in [k for k in self.clients if k[0] == nodeid]:
                self.clients.pop(old).close()
            client = NodeClient(address, pool_size=2, timeout=self.timeout, reactor=self.reactor)
            self.clients[key] = client
        return client

    def disk_list(self, nodeid: str, data: dict[str, Any]) -> Deferred[dict[str, Any]]:
        async def ask() -> dict[str, Any]:
            listing = await self._client(nodeid, data).call("disk.list")
            return listing if isinstance(listing, dict) else {"blockdevices": []}

        return ensureDeferred(ask())

    def running_containers(self, nodeid: str, data: dict[str, Any],
                           timeout: float) -> Deferred[set[str]]:
        async def ask() -> set[str]:
            listing = await self._client(nodeid, data).call("corex.list", timeout=timeout)
            return set(shapes.container_names(listing if isinstance(listing, dict) else {}))

        return ensureDeferred(ask())

    def close(self) -> Deferred[Any]:
        clients, self.clients = list(self.clients.values()), {}
        return DeferredList([c.close() for c in clients], consumeErrors=True)
