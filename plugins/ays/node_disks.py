"""
A node's disks, asked of its core0 agent with the core0 backend's client,
at the address AYS has for the node: what the storage pool and storage
cluster pre-checks need (``disk.list``), as the original did.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList

from plugins.ays.registry import address_of
from plugins.core0.client import NodeClient


class NodeDisks:
    """
    Reads ``disk.list`` of nodes; keeps one small client per node address.

    :param reactor: the reactor.
    :param timeout: seconds one ``disk.list`` may take.
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
            client = NodeClient(address, pool_size=1, timeout=self.timeout, reactor=self.reactor)
            self.clients[key] = client
        return client

    async def __call__(self, nodeid: str, data: dict[str, Any]) -> dict[str, Any]:
        """
        :param data: the node's ``node.g8os`` service data (its address).
        :returns: the ``disk.list`` result (``{"blockdevices": [...]}``).
        :raises BackendUnavailable, BackendTimeout: the node does not answer.
        """
        listing = await self._client(nodeid, data).call("disk.list")
        return listing if isinstance(listing, dict) else {"blockdevices": []}

    def close(self) -> Deferred[Any]:
        clients, self.clients = list(self.clients.values()), {}
        return DeferredList([c.close() for c in clients], consumeErrors=True)
