"""
The AYS backend: the resource families the original server ran through the
AYS orchestrator (nodes, bridges, storage pools, filesystems, ZeroTier,
containers, VMs, storage clusters, vdisks).

``AysBackend`` is the Twisted service the web app and the core0 backend
see; it assembles the parts, and serves each family's operations through
one-line delegates to the family's object (``rpoold.delegation.serve``,
from the interfaces each family class declares):

- ``plugins.ays.readiness``: the start-up attempts, the guard every
  operation runs under (503 until AYS is ready; a lost repository sends
  the backend back to start-up), the health report;
- ``plugins.ays.lookups`` and ``plugins.ays.changes``: the service lookups
  and the writes the families share (on ``plugins.ays.runs``);
- ``plugins.ays.node_facts``: what the nodes themselves say (``INodeAgents``);
- the families: ``nodes``, ``network`` (bridges, ZeroTier), ``storage``
  (storage pools, filesystems, snapshots), ``containers``, ``vms``,
  ``clusters`` (storage clusters, vdisks);
- ``plugins.ays.registry``: AYS as the core0 backend's node registry.

The backend is built from its options by ``plugins.ays.factory``.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.ays.changes import Changes
from plugins.ays.client import AysClient
from plugins.ays.clusters import StorageClusters, Vdisks
from plugins.ays.containers import Containers
from plugins.ays.lookups import Lookups
from plugins.ays.network import Bridges, Zerotiers
from plugins.ays.node_facts import NodeFacts
from plugins.ays.nodes import Nodes
from plugins.ays.readiness import Readiness
from plugins.ays.registry import AysNodeRegistry
from plugins.ays.runs import Finisher, Timing, Writer
from plugins.ays.storage import Filesystems, StoragePools
from plugins.ays.vms import REQUEST_BOUNDS, VMs
from rpoold.delegation import serve
from rpoold.interfaces import IHealthCheck, IRequestBounds
from rpoold.nodes import INodeAgents, INodeRegistryProvider
from rpoold.operations import IOperationResumer

log = Logger()


@implementer(IHealthCheck, IService, INodeRegistryProvider, IOperationResumer, IRequestBounds)
class AysBackend(Service):
    """
    The AYS families (``INodes``, ``IBridges``, ... ``IVdisks``: the
    interfaces of ``PARTS``, served by ``serve`` below), the health check
    and the core0 backend's node registry.

    :param client: the AYS client (its repository is the one served).
    :param clock: the reactor.
    :param timing: run timeout and poll pacing.
    :param agents: the nodes' agents, asked for their disks (pre-checks of
        storage pool devices and storage clusters) and for the containers
        they run; without them the checks are left to AYS and container
        status is AYS's alone.
    :param live_status_timeout: seconds to wait for a node's container
        list before showing AYS's status instead (0: never ask).
    :param retry_interval: first pause between two start-up attempts.
    :param retry_max_interval: longest pause between them.
    :param registry_ttl: seconds the node registry reuses a node's address.
    :param health_timeout: seconds the health check gives AYS to answer.
    :param connections: the HTTP connection pool of ``client`` (closed
        when the service stops), if any.
    """

    name = "ays"
    #: What the AYS templates hold in fewer bits than the contract allows.
    request_bounds = REQUEST_BOUNDS

    def __init__(
        self,
        client: AysClient,
        clock: Any,
        timing: Timing,
        agents: INodeAgents | None = None,
        live_status_timeout: float = 1.0,
        retry_interval: float = 0.2,
        retry_max_interval: float = 10.0,
        registry_ttl: float = 10.0,
        health_timeout: float = 2.0,
        connections: Any = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.connections = connections
        self.timing = timing
        self.registry_ttl = registry_ttl
        self.writer = Writer(client, clock, timing)
        self.readiness = Readiness(client, clock, self.writer.runs, retry_interval,
                                   retry_max_interval, health_timeout)
        guarded = self.readiness.guarded
        lookups = Lookups(client)
        changes = self.changes = Changes(client, self.writer, lookups)
        self.facts = NodeFacts(agents, lookups, live_status_timeout)
        self.nodes = Nodes(guarded, client, lookups, changes, self.writer)
        self.bridges = Bridges(guarded, lookups, changes)
        self.zerotiers = Zerotiers(guarded, lookups, changes, self.writer)
        self.storage_pools = StoragePools(guarded, lookups, changes, self.writer, self.facts)
        self.filesystems = Filesystems(guarded, lookups, changes)
        self.containers = Containers(guarded, lookups, changes, self.facts)
        self.vms = VMs(guarded, lookups, changes, self.writer)
        self.storage_clusters = StorageClusters(guarded, client, lookups, changes, self.facts)
        self.vdisks = Vdisks(guarded, client, lookups, changes, self.writer)
        self._registry: AysNodeRegistry | None = None

    @property
    def ready(self) -> bool:
        """Whether AYS answered and has the repository (operations run)."""
        return self.readiness.ready

    def node_registry(self) -> AysNodeRegistry:
        """The core0 backend's node source: the nodes of AYS (``INodeRegistryProvider``)."""
        if self._registry is None:
            self._registry = AysNodeRegistry(self.client, self.clock, self.readiness.guarded,
                                             self.nodes.delete_node, ttl=self.registry_ttl)
            self.nodes.deleted.append(self._registry.dropped)
        return self._registry

    # The service --------------------------------------------------------------------------

    def startService(self) -> None:
        """Start the start-up attempts (operations answer 503 until AYS is ready)."""
        super().startService()
        self.readiness.start()

    def stopService(self) -> Deferred[None]:
        """
        Stop the start-up attempts and the runs followed in the
        background, close the connections to AYS and to the nodes.

        :returns: Deferred firing once they are closed.
        """
        self.readiness.stop()
        self.writer.stop()
        closing: list[Deferred[Any]] = [self.facts.close()]
        if self.connections is not None:
            closing.append(self.connections.closeCachedConnections())
        super().stopService()

        def closed(_: Any) -> None:
            log.info("ays: closed the connections to AYS and the nodes")

        return DeferredList(closing, consumeErrors=True).addCallback(closed)

    def check_health(self) -> Deferred[dict[str, Any]]:
        """The health report (``IHealthCheck``): ``Readiness.check_health``."""
        return self.readiness.check_health()

    # Operations a restarted daemon follows again ------------------------------------------

    def finisher(self, spec: dict[str, Any]) -> Finisher:
        """What a finisher written down (``Write.on_success_spec``, ...) stands for."""
        if "undeploy" in spec:
            return self.storage_clusters.undeploy(str(spec["undeploy"]))
        role, name = spec["forget"]
        return self.changes.forget(str(role), str(name))

    def resume_operation(self, spec: dict[str, Any]) -> Deferred[Any]:
        """
        Follow again the AYS run of an operation this backend began before
        the daemon restarted (``IOperationResumer``), once AYS is ready.

        :returns: Deferred firing with ``None`` once the run ended for the write.
        :raises BackendError: the run failed it.
        """
        async def follow() -> None:
            await self.readiness.ready_now()
            await self.writer.resume(spec, self.finisher)

        return ensureDeferred(follow())


#: The families' parts, by the attribute ``AysBackend`` holds each under:
#: ``serve`` gives the backend a one-line delegate for every method of the
#: interfaces each part declares (``rpoold.delegation``).
PARTS: dict[str, type] = {
    "nodes": Nodes,
    "bridges": Bridges,
    "zerotiers": Zerotiers,
    "storage_pools": StoragePools,
    "filesystems": Filesystems,
    "containers": Containers,
    "vms": VMs,
    "storage_clusters": StorageClusters,
    "vdisks": Vdisks,
}

serve(AysBackend, PARTS)
