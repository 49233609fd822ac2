"""
Storage clusters and vdisks of the mock (``IStorageClusters``,
``IVdisks``): what the original kept in AYS, kept here as records (kinds
``storage_cluster`` and ``vdisk``).  A cluster takes free disks of its
nodes (read with ``disk.list``); its storage servers are described, not
started.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0.kit.directory import NodeDirectory
from rpoold.contract.wire import (
    Cluster,
    ClusterCreate,
    Vdisk,
    VdiskCreate,
    VdiskListItem,
    VdiskResize,
    VdiskRollback,
)
from rpoold.conventions import disk_type
from rpoold.errors import BadRequest, Conflict, NotFound
from rpoold.interfaces import IStorageClusters, IVdisks
from rpoold.records import IRecords

log = Logger()

CLUSTER = "storage_cluster"
VDISK = "vdisk"


@implementer(IStorageClusters)
class StorageClusters:
    """
    :param nodes: the nodes and their clients.
    :param records: the backend's records (the clusters).
    """

    def __init__(self, nodes: NodeDirectory[Any], records: IRecords) -> None:
        self.nodes = nodes
        self.records = records

    async def _cluster(self, label: str) -> Cluster:
        cluster = await self.records.get(CLUSTER, label)
        if cluster is None:
            raise NotFound(f"storage cluster '{label}' does not exist")
        return cast(Cluster, cluster)

    async def deploy_new_cluster(self, body: ClusterCreate) -> None:
        label = body["label"]
        if await self.records.get(CLUSTER, label) is not None:
            raise Conflict(f"storage cluster '{label}' exists")
        clients = [await self.nodes.client(n) for n in dict.fromkeys(body["nodes"])]
        per_node = body["servers"] // len(clients)
        data: list[dict[str, Any]] = []
        metadata: list[dict[str, Any]] = []
        for client in clients:
            listing = await client.call("disk.list") or {}
            disks = [d for d in listing.get("blockdevices") or []
                     if disk_type(d) == body["driveType"] and not d.get("children")]
            if len(disks) < per_node:
                raise BadRequest(
                    f"node '{client.node}' has {len(disks)} free {body['driveType']} disk(s), "
                    f"{per_node} needed")
            ip = self.nodes.address_of(client).host
            for disk in disks[:per_node]:
                index = len(data)
                data.append({"id": index, "ip": ip, "port": 2000 + index,
                             "container": f"cluster_{client.node}_{label}_{disk['name']}_data_{index}",
                             "status": "ready"})
        last = clients[-1]
        metadata.append({"id": len(data), "ip": self.nodes.address_of(last).host, "port": 2000 + len(data),
                         "container": f"cluster_{last.node}_{label}_metadata_{len(data)}",
                         "status": "ready"})
        await self.records.put(CLUSTER, label, {
            "label": label, "status": "ready", "driveType": body["driveType"],
            "nodes": [c.node for c in clients], "dataStorage": data, "metadataStorage": metadata})

    async def list_all_clusters(self) -> list[str]:
        return sorted(label for label, _ in await self.records.list(CLUSTER))

    async def get_cluster_info(self, label: str) -> Cluster:
        return await self._cluster(label)

    async def kill_cluster(self, label: str) -> None:
        await self._cluster(label)
        await self.records.delete(CLUSTER, label)


@implementer(IVdisks)
class Vdisks:
    """
    :param records: the backend's records (the vdisks, and the clusters
        they name).
    :param clock: an ``IReactorTime``.
    :param transition_seconds: how long a rollback takes.
    """

    def __init__(self, records: IRecords, clock: Any, transition_seconds: float) -> None:
        self.records = records
        self.clock = clock
        self.transition_seconds = transition_seconds

    async def _vdisk(self, vdiskid: str) -> dict[str, Any]:
        vdisk = await self.records.get(VDISK, vdiskid)
        if vdisk is None:
            raise NotFound(f"vdisk '{vdiskid}' does not exist")
        return vdisk

    async def list_vdisks(self) -> list[VdiskListItem]:
        return [{"id": v["id"], "status": v["status"], "type": v["type"],
                 "storageCluster": v["storagecluster"]} for _, v in await self.records.list(VDISK)]

    async def create_new_vdisk(self, body: VdiskCreate) -> None:
        if await self.records.get(VDISK, body["id"]) is not None:
            raise Conflict(f"vdisk '{body['id']}' exists")
        for key in ("storagecluster", "tlogStoragecluster"):
            if body[key] and await self.records.get(CLUSTER, body[key]) is None:
                raise NotFound(f"storage cluster '{body[key]}' ({key}) does not exist")
        template = body["templatevdisk"]
        if (template and not template.startswith("ardb://")
                and await self.records.get(VDISK, template) is None):
            raise NotFound(f"template vdisk '{template}' does not exist")
        await self.records.put(VDISK, body["id"], {
            "id": body["id"], "status": "halted", "size": body["size"],
            "blocksize": body["blocksize"], "type": body["type"], "readOnly": body["readOnly"],
            "storagecluster": body["storagecluster"],
            "tlogStoragecluster": body["tlogStoragecluster"], "instance": uuid.uuid4().hex,
        })

    async def get_vdisk_info(self, vdiskid: str) -> Vdisk:
        return cast(Vdisk, await self._vdisk(vdiskid))

    async def delete_vdisk(self, vdiskid: str) -> None:
        await self._vdisk(vdiskid)
        await self.records.delete(VDISK, vdiskid)

    async def resize_vdisk(self, vdiskid: str, body: VdiskResize) -> None:
        vdisk = await self._vdisk(vdiskid)
        if body["newSize"] < vdisk["size"]:
            raise BadRequest(f"newSize {body['newSize']} is smaller than the current size {vdisk['size']}")
        vdisk["size"] = body["newSize"]
        await self.records.put(VDISK, vdiskid, vdisk)

    async def rollback_vdisk(self, vdiskid: str, body: VdiskRollback) -> None:
        vdisk = await self._vdisk(vdiskid)
        before = vdisk["status"]
        if before == "rollingback":
            return
        vdisk["status"] = "rollingback"
        await self.records.put(VDISK, vdiskid, vdisk)

        async def rolled_back() -> None:
            now = await self.records.get(VDISK, vdiskid)
            if now is not None and now["instance"] == vdisk["instance"] and now["status"] == "rollingback":
                now["status"] = before
                await self.records.put(VDISK, vdiskid, now)

        def fire() -> None:
            ensureDeferred(rolled_back()).addErrback(
                lambda failure: log.failure("vdisk rollback failed", failure))

        self.clock.callLater(self.transition_seconds, fire)
