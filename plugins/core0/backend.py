"""
The core0 backend: every resource family a node's core0 agent can answer
itself, over the agent's Redis protocol.  Not storage clusters and vdisks
(they need more than one node's agent).

The families live in their own modules; this class puts them together,
stops the connections with the daemon and reports health.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from zope.interface import implementer

from plugins.core0.containers import ContainerFamilies
from plugins.core0.network import NetworkFamilies
from plugins.core0.storage import StorageFamilies
from plugins.core0.vms import VMFamilies
from rpoold.interfaces import (
    IBridges,
    IContainerFiles,
    IContainerInfo,
    IContainerJobs,
    IContainerProcesses,
    IContainers,
    IFilesystems,
    IHealthCheck,
    INodeInfo,
    INodeJobs,
    INodeProcesses,
    INodes,
    IStoragePools,
    IVMInfo,
    IVMs,
    IZerotiers,
)


@implementer(
    INodes, INodeInfo, INodeJobs, INodeProcesses, IBridges, IStoragePools, IFilesystems,
    IZerotiers, IContainers, IContainerInfo, IContainerJobs, IContainerProcesses,
    IContainerFiles, IVMs, IVMInfo, IHealthCheck, IService,
)
class Core0Backend(ContainerFamilies, StorageFamilies, NetworkFamilies, VMFamilies, Service):
    """
    :param options: the ``[backends.<instance>]`` options (see
        ``plugins.backend_core0``), checked and with defaults filled in.
    :param context: the ``IBackendContext``.
    """

    def stopService(self) -> Deferred[None]:
        super().stopService()
        clients, self.clients = list(self.clients.values()), {}
        return DeferredList([c.close() for c in clients]).addCallback(lambda _: None)

    def check_health(self) -> Deferred[dict[str, Any]]:
        """
        :returns: Deferred firing with ``ok`` (the registry answers), the
            number of nodes and of open Redis connections.
        """
        def summary(nodes: Any) -> dict[str, Any]:
            connections = sum(c.pool.ready for c in self.clients.values())
            return {"ok": True, "nodes": len(nodes), "connections": connections}

        def broken(failure: Any) -> dict[str, Any]:
            return {"ok": False, "error": failure.getErrorMessage()}

        d = self.registry.list_nodes()
        return d.addCallbacks(summary, broken) if isinstance(d, Deferred) else succeed(summary(d))
