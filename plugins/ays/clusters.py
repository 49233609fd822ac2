"""
The block storage families on AYS: storage clusters (``storage_cluster``
services, their storage servers ``ardb`` services) and vdisks (``vdisk``).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import FirstError, ensureDeferred, gatherResults
from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.changes import Changes
from plugins.ays.client import AysClient
from plugins.ays.lookups import Lookups
from plugins.ays.node_facts import NodeFacts
from plugins.ays.readiness import Guard, operation
from plugins.ays.runs import Finisher, Write, Writer
from rpoold import conventions
from rpoold.contract.wire import (
    Cluster,
    ClusterCreate,
    Vdisk,
    VdiskCreate,
    VdiskListItem,
    VdiskResize,
    VdiskRollback,
)
from rpoold.errors import BadRequest, NotFound
from rpoold.interfaces import IStorageClusters, IVdisks


@implementer(IStorageClusters)
class StorageClusters:
    """
    ``IStorageClusters``' operations.

    :param guarded: the readiness guard.
    :param client: the AYS client.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param facts: what the nodes say (the free disks pre-check).
    """

    def __init__(self, guarded: Guard, client: AysClient, lookups: Lookups, changes: Changes,
                 facts: NodeFacts) -> None:
        self.guarded = guarded
        self.client = client
        self.lookups = lookups
        self.changes = changes
        self.facts = facts

    async def _check_disks(self, nodes: list[tuple[str, dict[str, Any]]], drive_type: str,
                           per_node: int) -> None:
        for nodeid, node in nodes:
            disks = await self.facts.disks(nodeid, node)
            if disks is None:
                return
            free = [d for d in disks.values()
                    if conventions.disk_type(d) == drive_type and not d.get("children")]
            if len(free) < per_node:
                raise BadRequest(
                    f"node '{nodeid}' has {len(free)} free {drive_type} disk(s), "
                    f"{per_node} needed")

    @operation
    async def deploy_new_cluster(self, body: ClusterCreate) -> None:
        label = body["label"]
        node_ids = list(dict.fromkeys(body["nodes"]))
        if int(body["servers"]) % len(node_ids):
            raise BadRequest(
                f"servers ({body['servers']}) must be a multiple of the number of "
                f"nodes ({len(node_ids)})")
        nodes = [(n, await self.lookups.node(n)) for n in node_ids]
        await self._check_disks(nodes, body["driveType"], int(body["servers"]) // len(node_ids))
        await self.changes.create("storage_cluster", label,
                                  blueprints.storage_cluster(body, node_ids),
                                  "storage cluster", undo=self.undeploy(label),
                                  undo_spec={"undeploy": label})

    def undeploy(self, label: str) -> Finisher:
        """Undo a failed deployment: what the cluster made goes with it."""
        async def undeploy() -> None:
            if await self.lookups.service("storage_cluster", label) is None:
                return
            try:
                await self.changes.act("storage_cluster", label, "delete", force=True)
            finally:
                await self.client.delete_service("storage_cluster", label)

        return undeploy

    @operation
    async def list_all_clusters(self) -> list[str]:
        items = await self.client.list_services("storage_cluster", ("label",))
        return sorted(str((i.get("data") or {}).get("label") or i.get("name")) for i in items)

    async def _cluster(self, label: str) -> dict[str, Any]:
        return await self.lookups.existing("storage_cluster", label, "storage cluster")

    @operation
    async def get_cluster_info(self, label: str) -> Cluster:
        data = (await self._cluster(label)).get("data") or {}
        names = [str(n) for n in data.get("ardbs") or []]
        try:
            services = await gatherResults(
                [ensureDeferred(self.lookups.service("ardb", n)) for n in names],
                consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
        ardbs = [(n, s) for n, s in zip(names, services, strict=True) if s is not None]
        view = views.storage_cluster(data, ardbs)
        view["label"] = view["label"] or label
        return view

    @operation
    async def kill_cluster(self, label: str) -> None:
        await self._cluster(label)
        await self.changes.act("storage_cluster", label, "delete", then_forget="storage_cluster")


@implementer(IVdisks)
class Vdisks:
    """
    ``IVdisks``' operations.

    :param guarded: the readiness guard.
    :param client: the AYS client.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param writer: the write sequence (resizes are judged by the data).
    """

    def __init__(self, guarded: Guard, client: AysClient, lookups: Lookups, changes: Changes,
                 writer: Writer) -> None:
        self.guarded = guarded
        self.client = client
        self.lookups = lookups
        self.changes = changes
        self.writer = writer

    @operation
    async def list_vdisks(self) -> list[VdiskListItem]:
        items = await self.client.list_services("vdisk", ("storageCluster", "type", "status"))
        return [views.vdisk_item(str(i["name"]), i.get("data") or {})
                for i in sorted(items, key=lambda i: str(i.get("name", "")))]

    @operation
    async def create_new_vdisk(self, body: VdiskCreate) -> None:
        for key in ("storagecluster", "tlogStoragecluster"):
            if body.get(key) and await self.lookups.service("storage_cluster", body[key]) is None:
                raise NotFound(f"storage cluster '{body[key]}' ({key}) does not exist")
        template = body.get("templatevdisk") or ""
        if (template and not template.startswith("ardb://")
                and await self.lookups.service("vdisk", template) is None):
            raise NotFound(f"template vdisk '{template}' does not exist")
        await self.changes.create("vdisk", body["id"], blueprints.vdisk(body), "vdisk")

    async def _vdisk(self, vdiskid: str) -> dict[str, Any]:
        return await self.lookups.existing("vdisk", vdiskid, "vdisk")

    @operation
    async def get_vdisk_info(self, vdiskid: str) -> Vdisk:
        return views.vdisk(vdiskid, (await self._vdisk(vdiskid)).get("data") or {})

    @operation
    async def delete_vdisk(self, vdiskid: str) -> None:
        await self._vdisk(vdiskid)
        # The vdisk template has no delete action: nothing to run on the cluster.
        if not await self.client.delete_service("vdisk", vdiskid):
            raise NotFound(f"vdisk '{vdiskid}' does not exist")

    @operation
    async def resize_vdisk(self, vdiskid: str, body: VdiskResize) -> None:
        data = (await self._vdisk(vdiskid)).get("data") or {}
        size, new_size = int(data.get("size") or 0), int(body["newSize"])
        if new_size < size:
            raise BadRequest(f"newSize {new_size} is smaller than the current size {size}")
        if new_size == size:
            return
        write = Write("vdisk", vdiskid, "resize", blueprints.vdisk_resize(vdiskid, new_size))
        await self.writer.post_alone(write)
        await self.writer.wait_for_data(
            "vdisk", vdiskid, lambda now: int(now.get("size") or 0) >= new_size,
            f"the resize of vdisk '{vdiskid}' to {new_size} GiB")

    @operation
    async def rollback_vdisk(self, vdiskid: str, body: VdiskRollback) -> None:
        await self._vdisk(vdiskid)
        await self.changes.act("vdisk", vdiskid, "rollback")
