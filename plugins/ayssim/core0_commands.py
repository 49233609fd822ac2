"""
``INodeCommands`` on the core0 backend's client (``plugins.core0.client``):
one ``NodeClient`` (a bounded pool of Redis connections) per node
address, its errors translated into ``CommandFailed``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.python.failure import Failure
from zope.interface import implementer

from plugins.ayssim.node_commands import RESULT_TIMEOUT, CommandFailed, INodeCommands, NodeAddress
from plugins.core0 import protocol
from plugins.core0.client import NodeClient
from rpoold.errors import BackendTimeout, BackendUnavailable, RpoolError
from rpoold.nodes import NodeAddress as Core0Address

#: Connections to one node at most (actions of one step run concurrently).
POOL_SIZE = 4


def _translate(failure: Failure, command: str) -> Failure:
    error = failure.value
    if isinstance(error, protocol.CommandFailed):
        raise CommandFailed(command, error.state, error.detail)
    if isinstance(error, BackendUnavailable):
        raise CommandFailed(command, "UNREACHABLE", str(error))
    if isinstance(error, BackendTimeout):
        raise CommandFailed(command, "TIMEOUT", str(error))
    if isinstance(error, RpoolError):
        raise CommandFailed(command, "ERROR", str(error))
    return failure


@implementer(INodeCommands)
class Core0ClientCommands:
    """
    :param timeout: deadline of each command (connection and result).
    :param pool_size: connections per node at most.
    """

    def __init__(self, timeout: float = RESULT_TIMEOUT, pool_size: int = POOL_SIZE,
                 reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.timeout = timeout
        self.pool_size = pool_size
        self.clients: dict[NodeAddress, NodeClient] = {}

    def client(self, address: NodeAddress) -> NodeClient:
        client = self.clients.get(address)
        if client is None:
            client = NodeClient(
                Core0Address(id=address.name or str(address), host=address.host, port=address.port,
                             password=address.password, db=address.db),
                pool_size=self.pool_size, timeout=self.timeout, reactor=self.reactor)
            self.clients[address] = client
        return client

    def execute(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                container: int = 0) -> Deferred[Any]:
        client = self.client(address)
        if container:
            d = client.dispatch(container, command, arguments).addCallback(
                lambda result: protocol.check(result, client.node).value())
        else:
            d = client.call(command, arguments)
        return d.addErrback(_translate, command)

    def spawn(self, address: NodeAddress, command: str, arguments: dict[str, Any],
              container: int = 0) -> Deferred[str]:
        client = self.client(address)
        if container:
            d = client.dispatch(container, command, arguments, wait=False)
        else:
            d = client.submit(command, arguments)
        return d.addCallback(str).addErrback(_translate, command)

    def close(self) -> Deferred[Any]:
        """Close every node's connections."""
        clients, self.clients = list(self.clients.values()), {}
        return DeferredList([c.close() for c in clients])
