"""
The mock backend: every resource family, on a pool of nodes that run in
process.

Everything a node can answer is the core0 command kit's
(``plugins.core0.kit``), the same objects the core0 backend runs, here on
command clients that run the commands in process; storage clusters and
vdisks are records (``plugins.mock.clusters``).  The pool itself comes
from the plugin's factory (the simulated pool, ``plugins.poolsim.mock``):
this module knows it only as a registry and a way to reach each node.

What differs from the core0 backend shows here: a rebooting node is
``halted`` at once in ``GET /nodes`` and direct calls wait for it (bounded
by the request deadline), each interface method is counted in the
backend-call metrics (``command``: its name), and ``/health`` counts the
running nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.families import CommandFamilies, parts_at
from plugins.mock.clusters import StorageClusters, Vdisks
from rpoold.delegation import serve
from rpoold.interfaces import IHealthCheck
from rpoold.metrics import track_backend_call
from rpoold.nodes import ICommandClient, INodeRegistry, NodeAddress
from rpoold.records import IRecords

log = Logger()

#: How long ``ping_node`` waits for a rebooting node: until it is back.
WAIT_FOR_NODES = float("inf")


@implementer(IHealthCheck)
class MockBackend:
    """
    :param options: ``transition_seconds`` (how long a VM, or a vdisk's
        rollback, stays in a passing state such as ``halting``); the
        factory reads the others.
    :param context: the ``IBackendContext``.
    :param registry: the pool's nodes.
    :param connect: the command client of a node of the pool.
    """

    def __init__(self, options: dict[str, Any], context: Any, registry: INodeRegistry,
                 connect: Callable[[NodeAddress], ICommandClient]) -> None:
        self.reactor = context.reactor
        transition_seconds = float(options.get("transition_seconds", 0.1))
        self.records: IRecords = context.records
        self.directory: NodeDirectory[ICommandClient] = NodeDirectory(registry, connect, ping_timeout=0)
        self.families = CommandFamilies(
            self.directory, self.records, self.reactor, timeout=WAIT_FOR_NODES, ping_timeout=0,
            transition_seconds=transition_seconds)
        self.storage_clusters = StorageClusters(self.directory, self.records)
        self.vdisks = Vdisks(self.records, self.reactor, transition_seconds)
        # The containers running at start are recorded, as if made here
        # (in process: done before this returns, with the memory store);
        # VMs a durable store left in a passing state go on.
        ensureDeferred(self._record_containers()).addErrback(
            lambda failure: log.warn("mock: the running containers were not recorded: {why}",
                                     why=failure.getErrorMessage()))
        ensureDeferred(self.families.resume()).addErrback(
            lambda failure: log.warn("mock: the VMs in a passing state were not resumed: {why}",
                                     why=failure.getErrorMessage()))

    async def _record_containers(self) -> None:
        for address in await self.directory.addresses():
            await self.families.index.listing(self.directory.client_of(address))

    def check_health(self) -> Deferred[dict[str, Any]]:
        """
        :returns: Deferred firing with ``ok`` (always: the pool is in
            process), ``nodes`` and ``running`` (how many are not rebooting).
        """
        return ensureDeferred(self._health())

    async def _health(self) -> dict[str, Any]:
        addresses = await self.directory.addresses()
        pings = await DeferredList([self.directory.client_of(a).ping(0) for a in addresses],
                                   consumeErrors=True)
        return {"ok": True, "nodes": len(addresses), "running": sum(1 for ok, up in pings if ok and up)}


def _counted(method: str, d: Deferred[Any]) -> Deferred[Any]:
    """Count each interface method in the backend-call metrics (command: its name)."""
    return track_backend_call("mock", method, d)


serve(MockBackend, {**parts_at("families"), "storage_clusters": StorageClusters, "vdisks": Vdisks},
      wrap=_counted)
