"""
The AYS backend: the resource families the original server ran through the
AYS orchestrator (nodes, bridges, storage pools, filesystems, ZeroTier,
containers, VMs, storage clusters, vdisks).

``AysBackend`` is the Twisted service the web app and the core0 backend
see; it assembles the parts and delegates each operation to its family:

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
from twisted.internet.defer import Deferred, DeferredList
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
from plugins.ays.runs import Timing, Writer
from plugins.ays.storage import Filesystems, StoragePools
from plugins.ays.vms import VMs
from rpoold.interfaces import (
    IBridges,
    IContainers,
    IFilesystems,
    IHealthCheck,
    INodes,
    IStorageClusters,
    IStoragePools,
    IVdisks,
    IVMs,
    IZerotiers,
)
from rpoold.nodes import INodeAgents, INodeRegistryProvider

log = Logger()


@implementer(
    INodes, IBridges, IStoragePools, IFilesystems, IZerotiers, IContainers, IVMs,
    IStorageClusters, IVdisks, IHealthCheck, IService, INodeRegistryProvider,
)
class AysBackend(Service):
    """
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
        changes = Changes(client, self.writer, lookups)
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
        return self.readiness.check_health()

    # Nodes ------------------------------------------------------------------------------

    def list_nodes(self) -> Deferred[Any]:
        return self.nodes.list_nodes()

    def get_node(self, nodeid: str) -> Deferred[Any]:
        return self.nodes.get_node(nodeid)

    def delete_node(self, nodeid: str) -> Deferred[Any]:
        return self.nodes.delete_node(nodeid)

    def reboot_node(self, nodeid: str) -> Deferred[Any]:
        return self.nodes.reboot_node(nodeid)

    # Bridges ----------------------------------------------------------------------------

    def create_bridge(self, nodeid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.bridges.create_bridge(nodeid, body)

    def list_bridges(self, nodeid: str) -> Deferred[Any]:
        return self.bridges.list_bridges(nodeid)

    def get_bridge(self, nodeid: str, bridgeid: str) -> Deferred[Any]:
        return self.bridges.get_bridge(nodeid, bridgeid)

    def delete_bridge(self, nodeid: str, bridgeid: str) -> Deferred[Any]:
        return self.bridges.delete_bridge(nodeid, bridgeid)

    # Storage pools-----------------------------------------------------------------------

    def list_storage_pools(self, nodeid: str) -> Deferred[Any]:
        return self.storage_pools.list_storage_pools(nodeid)

    def create_storage_pool(self, nodeid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.storage_pools.create_storage_pool(nodeid, body)

    def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> Deferred[Any]:
        return self.storage_pools.get_storage_pool_info(nodeid, storagepoolname)

    def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> Deferred[Any]:
        return self.storage_pools.delete_storage_pool(nodeid, storagepoolname)

    def list_storage_pool_devices(self, nodeid: str, storagepoolname: str) -> Deferred[Any]:
        return self.storage_pools.list_storage_pool_devices(nodeid, storagepoolname)

    def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                    body: list[str]) -> Deferred[Any]:
        return self.storage_pools.create_storage_pool_devices(nodeid, storagepoolname, body)

    def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                     deviceuuid: str) -> Deferred[Any]:
        return self.storage_pools.get_storage_pool_device_info(nodeid, storagepoolname, deviceuuid)

    def delete_storage_pool_device(self, nodeid: str, storagepoolname: str, deviceuuid: str) -> Deferred[Any]:
        return self.storage_pools.delete_storage_pool_device(nodeid, storagepoolname, deviceuuid)

    # Filesystems ------------------------------------------------------------------------

    def list_filesystems(self, nodeid: str, storagepoolname: str) -> Deferred[Any]:
        return self.filesystems.list_filesystems(nodeid, storagepoolname)

    def create_filesystem(self, nodeid: str, storagepoolname: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.filesystems.create_filesystem(nodeid, storagepoolname, body)

    def get_filesystem_info(self, nodeid: str, storagepoolname: str, filesystemname: str) -> Deferred[Any]:
        return self.filesystems.get_filesystem_info(nodeid, storagepoolname, filesystemname)

    def delete_filesystem(self, nodeid: str, storagepoolname: str, filesystemname: str) -> Deferred[Any]:
        return self.filesystems.delete_filesystem(nodeid, storagepoolname, filesystemname)

    def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> Deferred[Any]:
        return self.filesystems.list_filesystem_snapshots(nodeid, storagepoolname, filesystemname)

    def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str, body: dict[str,
                        Any]) -> Deferred[Any]:
        return self.filesystems.create_snapshot(nodeid, storagepoolname, filesystemname, body)

    def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str, filesystemname: str,
                                     snapshotname: str) -> Deferred[Any]:
        return self.filesystems.get_filesystem_snapshot_info(
            nodeid, storagepoolname, filesystemname, snapshotname)

    def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                                   snapshotname: str) -> Deferred[Any]:
        return self.filesystems.delete_filesystem_snapshot(
            nodeid, storagepoolname, filesystemname, snapshotname)

    def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                                     snapshotname: str) -> Deferred[Any]:
        return self.filesystems.rollback_filesystem_snapshot(
            nodeid, storagepoolname, filesystemname, snapshotname)

    # ZeroTier --------------------------------------------------------------------------

    def list_zerotiers(self, nodeid: str) -> Deferred[Any]:
        return self.zerotiers.list_zerotiers(nodeid)

    def join_zerotier(self, nodeid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.zerotiers.join_zerotier(nodeid, body)

    def get_zerotier(self, nodeid: str, zerotierid: str) -> Deferred[Any]:
        return self.zerotiers.get_zerotier(nodeid, zerotierid)

    def exit_zerotier(self, nodeid: str, zerotierid: str) -> Deferred[Any]:
        return self.zerotiers.exit_zerotier(nodeid, zerotierid)

    # Containers -------------------------------------------------------------------------

    def list_containers(self, nodeid: str) -> Deferred[Any]:
        return self.containers.list_containers(nodeid)

    def create_container(self, nodeid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.containers.create_container(nodeid, body)

    def delete_container(self, nodeid: str, containername: str) -> Deferred[Any]:
        return self.containers.delete_container(nodeid, containername)

    def get_container(self, nodeid: str, containername: str) -> Deferred[Any]:
        return self.containers.get_container(nodeid, containername)

    def start_container(self, nodeid: str, containername: str) -> Deferred[Any]:
        return self.containers.start_container(nodeid, containername)

    def stop_container(self, nodeid: str, containername: str) -> Deferred[Any]:
        return self.containers.stop_container(nodeid, containername)

    # VMs --------------------------------------------------------------------------------

    def list_vms(self, nodeid: str) -> Deferred[Any]:
        return self.vms.list_vms(nodeid)

    def create_vm(self, nodeid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.vms.create_vm(nodeid, body)

    def delete_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.delete_vm(nodeid, vmid)

    def get_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.get_vm(nodeid, vmid)

    def update_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.vms.update_vm(nodeid, vmid, body)

    def start_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.start_vm(nodeid, vmid)

    def stop_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.stop_vm(nodeid, vmid)

    def pause_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.pause_vm(nodeid, vmid)

    def resume_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.resume_vm(nodeid, vmid)

    def shutdown_vm(self, nodeid: str, vmid: str) -> Deferred[Any]:
        return self.vms.shutdown_vm(nodeid, vmid)

    def migrate_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.vms.migrate_vm(nodeid, vmid, body)

    # Storage clusters--------------------------------------------------------------------

    def deploy_new_cluster(self, body: dict[str, Any]) -> Deferred[Any]:
        return self.storage_clusters.deploy_new_cluster(body)

    def list_all_clusters(self) -> Deferred[Any]:
        return self.storage_clusters.list_all_clusters()

    def get_cluster_info(self, label: str) -> Deferred[Any]:
        return self.storage_clusters.get_cluster_info(label)

    def kill_cluster(self, label: str) -> Deferred[Any]:
        return self.storage_clusters.kill_cluster(label)

    # Vdisks -----------------------------------------------------------------------------

    def list_vdisks(self) -> Deferred[Any]:
        return self.vdisks.list_vdisks()

    def create_new_vdisk(self, body: dict[str, Any]) -> Deferred[Any]:
        return self.vdisks.create_new_vdisk(body)

    def get_vdisk_info(self, vdiskid: str) -> Deferred[Any]:
        return self.vdisks.get_vdisk_info(vdiskid)

    def delete_vdisk(self, vdiskid: str) -> Deferred[Any]:
        return self.vdisks.delete_vdisk(vdiskid)

    def resize_vdisk(self, vdiskid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.vdisks.resize_vdisk(vdiskid, body)

    def rollback_vdisk(self, vdiskid: str, body: dict[str, Any]) -> Deferred[Any]:
        return self.vdisks.rollback_vdisk(vdiskid, body)
