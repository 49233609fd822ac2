"""
The nodes of a registry, each reached through one command client, and
what ``GET /nodes`` shows of a node besides its status (hostname and
address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, DeferredList, FirstError, ensureDeferred, fail, gatherResults
from twisted.python.failure import Failure

from plugins.core0 import shapes
from rpoold.errors import NotFound, RpoolError
from rpoold.nodes import ICommandClient, INodeRegistry, NodeAddress

#: The kind of command client a directory holds.
C = TypeVar("C", bound=ICommandClient)


def gather(*ds: Deferred[Any]) -> Deferred[list[Any]]:
    """All results of several calls, or the first failure (the others are consumed)."""
    def first(failure: Failure) -> Failure:
        error = failure.value
        return error.subFailure if isinstance(error, FirstError) else failure

    return gatherResults(list(ds), consumeErrors=True).addErrback(first)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class NodeDirectory(Generic[C]):
    """
    :param registry: where the nodes and their addresses come from; one
        with a synchronous ``lookup(nodeid)`` (the built-in registries)
        spares a coroutine per call.
    :param connect: makes the command client of an address (a new one
        when a node's address changes; the old one is closed).
    :param ping_timeout: seconds a node has to answer the questions behind
        its facts.
    """

    def __init__(self, registry: INodeRegistry, connect: Callable[[NodeAddress], C],
                 ping_timeout: float) -> None:
        self.registry = registry
        self.connect = connect
        self.ping_timeout = ping_timeout
        self._lookup: Callable[[str], NodeAddress] | None = getattr(registry, "lookup", None)
        self._clients: dict[str, tuple[NodeAddress, C]] = {}
        #: node id -> (hostname, ip address) as the node reported them.
        self._facts: dict[str, tuple[str, str]] = {}

    # Clients ---------------------------------------------------------------------------------

    def client_of(self, address: NodeAddress) -> C:
        """The client of the node at ``address`` (made on first use)."""
        known = self._clients.get(address.id)
        if known is not None and (known[0] is address or known[0] == address):
            return known[1]
        if known is not None:
            self.drop(address.id)
        client = self.connect(address)
        self._clients[address.id] = (address, client)
        return client

    def clients(self) -> list[C]:
        """The clients made so far."""
        return [client for _, client in self._clients.values()]

    async def client(self, nodeid: str) -> C:
        """
        :raises NotFound: the registry does not know the node.
        """
        if self._lookup is not None:
            address = self._lookup(nodeid)
        else:
            address = await self.registry.get_node(nodeid)
        return self.client_of(address)

    def call(self, nodeid: str, command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        """
        Run a command on a node (no coroutine in between when the registry
        answers at once: the hot path of node facts).

        :returns: Deferred firing with its decoded payload.
        :raises NotFound: unknown node.
        :raises CommandFailed: the command failed.
        """
        if self._lookup is None:
            return ensureDeferred(self._call_later(nodeid, command, arguments))
        try:
            client = self.client_of(self._lookup(nodeid))
        except NotFound as e:
            return fail(e)
        return client.call(command, arguments)

    async def _call_later(self, nodeid: str, command: str, arguments: dict[str, Any] | None) -> Any:
        return await (await self.client(nodeid)).call(command, arguments)

    def address_of(self, client: C) -> NodeAddress:
        """The address ``client`` was made for."""
        return self._clients[client.node][0]

    # The pool --------------------------------------------------------------------------------

    async def addresses(self) -> list[NodeAddress]:
        """Every node of the registry; clients of nodes it no longer lists are closed."""
        nodes = await self.registry.list_nodes()
        known = {n.id for n in nodes}
        for gone in [nodeid for nodeid in self._clients if nodeid not in known]:
            self.drop(gone)
        return list(nodes)

    async def forget(self, nodeid: str) -> None:
        """
        Drop a node from the registry and close its client.

        :raises NotFound: unknown node.
        """
        await self.registry.forget_node(nodeid)
        self.drop(nodeid)

    def drop(self, nodeid: str) -> None:
        """Close a node's client (a new one is made on next use)."""
        known = self._clients.pop(nodeid, None)
        if known is not None:
            known[1].close()
        self._facts.pop(nodeid, None)

    def close(self) -> Deferred[Any]:
        """Close every client; fires once they are closed."""
        clients, self._clients = [c for _, c in self._clients.values()], {}
        return DeferredList([c.close() for c in clients], consumeErrors=True)

    # Facts -----------------------------------------------------------------------------------

    def known_facts(self, nodeid: str) -> tuple[str, str] | None:
        """The facts of a node asked already (see ``facts``), if any."""
        return self._facts.get(nodeid)

    def status_and_facts(self, client: C) -> Deferred[tuple[bool, tuple[str, str]]]:
        """
        Whether a node answers a ping within ``ping_timeout``, and its facts
        (``facts``): a client that can run commands together
        (``execute_together``: core0's) asks the ping and the facts it
        lacks in one round trip on one connection; another asks them side
        by side.  Never fails: a node that does not answer is not alive,
        with the registry's values.
        """
        address = self.address_of(client)
        known = self._facts.get(address.id)
        if known is not None:
            return client.ping(self.ping_timeout).addCallback(lambda alive: (alive, known))
        together = getattr(client, "execute_together", None)
        asks = self._missing(address)
        if not asks or together is None:
            both = gather(client.ping(self.ping_timeout), ensureDeferred(self.facts(client)))
            return both.addCallback(tuple)
        commands = ["core.ping", *asks]

        def answered(results: list[Any]) -> tuple[bool, tuple[str, str]]:
            found = dict(zip(commands, results, strict=True))
            values = {c: r.value() for c, r in found.items() if r.state == "SUCCESS"}
            facts = self._facts_from(address, values)
            if len(values) == len(commands):
                self._facts[address.id] = facts
            return "core.ping" in values, facts

        def down(failure: Failure) -> tuple[bool, tuple[str, str]]:
            failure.trap(RpoolError)
            return False, (address.hostname, address.host)

        d: Deferred[list[Any]] = together(commands, timeout=self.ping_timeout)
        return d.addCallbacks(answered, down)

    @staticmethod
    def _missing(address: NodeAddress) -> list[str]:
        """The commands that tell the facts the registry does not."""
        asks = []
        if not address.hostname:
            asks.append("info.os")
        if is_loopback(address.host):
            asks.append("info.nic")
        return asks

    @staticmethod
    def _facts_from(address: NodeAddress, values: dict[str, Any]) -> tuple[str, str]:
        hostname, ip = address.hostname, address.host
        if "info.os" in values:
            hostname = str((values["info.os"] or {}).get("hostname") or "")
        if "info.nic" in values:
            ip = shapes.first_address(values["info.nic"] or []) or ip
        return hostname, ip

    async def facts(self, client: C) -> tuple[str, str]:
        """
        What ``GET /nodes`` shows of a node besides its status: the
        hostname (from the registry, else ``info.os``) and the address
        (the registry's host, unless it is a loopback address as with a
        local simulator: then the node's first IPv4 address, ``info.nic``).
        Asked once per node and kept; the registry's values when the node
        does not answer.
        """
        address = self.address_of(client)
        known = self._facts.get(address.id)
        if known is not None:
            return known
        hostname, ip = address.hostname, address.host
        asks: dict[str, Deferred[Any]] = {}
        if not hostname:
            asks["os"] = client.call("info.os", timeout=self.ping_timeout)
        if is_loopback(ip):
            asks["nic"] = client.call("info.nic", timeout=self.ping_timeout)
        if not asks:
            self._facts[address.id] = (hostname, ip)
            return hostname, ip
        answers = await DeferredList(list(asks.values()), consumeErrors=True)
        got = dict(zip(asks, answers, strict=True))
        complete = all(ok for ok, _ in answers)
        if "os" in got and got["os"][0]:
            hostname = str((got["os"][1] or {}).get("hostname") or "")
        if "nic" in got and got["nic"][0]:
            ip = shapes.first_address(got["nic"][1] or []) or ip
        if complete:
            self._facts[address.id] = (hostname, ip)
        return hostname, ip
