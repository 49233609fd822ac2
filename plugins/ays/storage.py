"""
The storage families on AYS: a node's storage pools (``storagepool``
services) and their devices, the pools' filesystems (``filesystem``) and
the filesystems' snapshots (``fssnapshot``).
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE
from plugins.ays.changes import Changes
from plugins.ays.lookups import Lookups
from plugins.ays.node_facts import NodeFacts
from plugins.ays.readiness import Guard, operation
from plugins.ays.runs import Write, Writer
from rpoold.contract.wire import (
    Filesystem,
    FilesystemCreate,
    Snapshot,
    SnapshotCreate,
    StoragePool,
    StoragePoolCreate,
    StoragePoolDevice,
    StoragePoolListItem,
)
from rpoold.errors import BadRequest, NotFound
from rpoold.interfaces import IFilesystems, IStoragePools


async def pool(lookups: Lookups, nodeid: str, name: str) -> dict[str, Any]:
    """
    A storage pool of the node.

    :raises NotFound: no such node, or no such pool on it.
    """
    return await lookups.on_node("storagepool", name, nodeid, "storage pool")


async def filesystem(lookups: Lookups, nodeid: str, pool_name: str, name: str) -> dict[str, Any]:
    """
    A filesystem of a storage pool of the node (the whole chain checked).

    :raises NotFound: a link of the chain does not exist.
    """
    await pool(lookups, nodeid, pool_name)
    return await lookups.child("filesystem", name, "storagepool", pool_name,
                               "filesystem", f"in storage pool '{pool_name}'")


async def snapshot(lookups: Lookups, nodeid: str, pool_name: str, fs: str,
                   name: str) -> dict[str, Any]:
    """
    A snapshot of a filesystem (the whole chain checked).

    :raises NotFound: a link of the chain does not exist.
    """
    await filesystem(lookups, nodeid, pool_name, fs)
    return await lookups.child("fssnapshot", name, "filesystem", fs,
                               "snapshot", f"of filesystem '{fs}'")


@implementer(IStoragePools)
class StoragePools:
    """
    ``IStoragePools``' operations.

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param writer: the write sequence (device changes are judged by the
        pool's data, AYS applies them outside runs).
    :param facts: what the nodes say (the device pre-checks).
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes, writer: Writer,
                 facts: NodeFacts) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes
        self.writer = writer
        self.facts = facts

    @operation
    async def list_storage_pools(self, nodeid: str) -> list[StoragePoolListItem]:
        await self.lookups.node(nodeid)
        items = await self.lookups.children("storagepool", NODE, nodeid, ("status", "freeCapacity"))
        return [views.storage_pool_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def create_storage_pool(self, nodeid: str, body: StoragePoolCreate) -> None:
        node = await self.lookups.node(nodeid)
        await self.facts.check_devices(node, nodeid, list(dict.fromkeys(body["devices"])))
        await self.changes.create("storagepool", body["name"],
                                  blueprints.storage_pool(nodeid, body), "storage pool")

    @operation
    async def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> StoragePool:
        service = await pool(self.lookups, nodeid, storagepoolname)
        return views.storage_pool(storagepoolname, service.get("data") or {})

    @operation
    async def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> None:
        await pool(self.lookups, nodeid, storagepoolname)
        await self.changes.act("storagepool", storagepoolname, "delete", then_forget="storagepool")

    @operation
    async def list_storage_pool_devices(self, nodeid: str,
                                        storagepoolname: str) -> list[StoragePoolDevice]:
        service = await pool(self.lookups, nodeid, storagepoolname)
        return [views.storage_pool_device(d) for d in views.pool_devices(service.get("data") or {})]

    async def _post_devices(self, pool_name: str, devices: list[dict[str, str]], verb: str) -> None:
        await self.writer.post_alone(
            Write("storagepool", pool_name, verb, blueprints.storage_pool_devices(pool_name, devices)))

    @operation
    async def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                          body: list[str]) -> None:
        node = await self.lookups.node(nodeid)
        service = await pool(self.lookups, nodeid, storagepoolname)
        current = views.pool_devices(service.get("data") or {})
        present = {d.get("device") for d in current}
        new = [d for d in dict.fromkeys(body) if d not in present]
        if not new:
            return
        await self.facts.check_devices(node, nodeid, new)
        devices = current + [{"device": d, "partUUID": ""} for d in new]
        await self._post_devices(storagepoolname, devices, "addDevices")

        def applied(data: dict[str, Any]) -> bool:
            known = {d.get("device"): d for d in views.pool_devices(data)}
            return all(d in known and known[d].get("partUUID") for d in new)

        await self.writer.wait_for_data(
            "storagepool", storagepoolname, applied,
            f"adding {', '.join(new)} to storage pool '{storagepoolname}'")

    @operation
    async def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                           deviceuuid: str) -> StoragePoolDevice:
        service = await pool(self.lookups, nodeid, storagepoolname)
        for device in views.pool_devices(service.get("data") or {}):
            if device.get("partUUID") == deviceuuid:
                return views.storage_pool_device(device)
        raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")

    @operation
    async def delete_storage_pool_device(self, nodeid: str, storagepoolname: str,
                                         deviceuuid: str) -> None:
        service = await pool(self.lookups, nodeid, storagepoolname)
        current = views.pool_devices(service.get("data") or {})
        kept = [{"device": d.get("device") or "", "partUUID": d.get("partUUID") or ""}
                for d in current if d.get("partUUID") != deviceuuid]
        if len(kept) == len(current):
            raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")
        if not kept:
            raise BadRequest(
                f"device '{deviceuuid}' is the last device of storage pool "
                f"'{storagepoolname}'; delete the pool instead")
        await self._post_devices(storagepoolname, kept, "removeDevices")

        def applied(data: dict[str, Any]) -> bool:
            return all(d.get("partUUID") != deviceuuid for d in views.pool_devices(data))

        await self.writer.wait_for_data(
            "storagepool", storagepoolname, applied,
            f"removing device '{deviceuuid}' from storage pool '{storagepoolname}'")


@implementer(IFilesystems)
class Filesystems:
    """
    ``IFilesystems``' operations (filesystems and their snapshots).

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes

    @operation
    async def list_filesystems(self, nodeid: str, storagepoolname: str) -> list[str]:
        await pool(self.lookups, nodeid, storagepoolname)
        items = await self.lookups.children("filesystem", "storagepool", storagepoolname)
        return [str(i["name"]) for i in items]

    @operation
    async def create_filesystem(self, nodeid: str, storagepoolname: str,
                                body: FilesystemCreate) -> None:
        await pool(self.lookups, nodeid, storagepoolname)
        await self.changes.create("filesystem", body["name"],
                                  blueprints.filesystem(storagepoolname, body), "filesystem")

    @operation
    async def get_filesystem_info(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> Filesystem:
        service = await filesystem(self.lookups, nodeid, storagepoolname, filesystemname)
        return views.filesystem(filesystemname, storagepoolname, service.get("data") or {})

    @operation
    async def delete_filesystem(self, nodeid: str, storagepoolname: str,
                                filesystemname: str) -> None:
        await filesystem(self.lookups, nodeid, storagepoolname, filesystemname)
        await self.changes.act("filesystem", filesystemname, "delete", then_forget="filesystem")

    @operation
    async def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                        filesystemname: str) -> list[str]:
        await filesystem(self.lookups, nodeid, storagepoolname, filesystemname)
        items = await self.lookups.children("fssnapshot", "filesystem", filesystemname)
        return [str(i["name"]) for i in items]

    @operation
    async def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                              body: SnapshotCreate) -> None:
        await filesystem(self.lookups, nodeid, storagepoolname, filesystemname)
        await self.changes.create("fssnapshot", body["name"],
                                  blueprints.snapshot(filesystemname, body), "snapshot")

    @operation
    async def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> Snapshot:
        service = await snapshot(self.lookups, nodeid, storagepoolname, filesystemname,
                                 snapshotname)
        return views.snapshot(snapshotname, service.get("data") or {})

    @operation
    async def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                         filesystemname: str, snapshotname: str) -> None:
        await snapshot(self.lookups, nodeid, storagepoolname, filesystemname, snapshotname)
        await self.changes.act("fssnapshot", snapshotname, "delete", then_forget="fssnapshot")

    @operation
    async def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> None:
        await snapshot(self.lookups, nodeid, storagepoolname, filesystemname, snapshotname)
        await self.changes.act("fssnapshot", snapshotname, "rollback", label="snapshot")
