"""
Storage pools with their devices (``IStoragePools``), filesystems and
snapshots (``IFilesystems``), made of ``disk.*`` and ``btrfs.*`` commands:
a pool is a btrfs filesystem labelled ``sp_<name>`` over one partition per
disk, mounted at ``/mnt/storagepools/<name>``; a filesystem is the
subvolume ``<mount>/filesystems/<fs>``; a snapshot is
``<mount>/snapshots/<fs>/<snap>``.

The node cannot tell a filesystem's quota and read-only flag, nor when a
snapshot was taken: those are records (``node_records.SUBVOLUME``) for what
was made here (quota 0, writable and timestamp 0 otherwise).
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit import node_records
from plugins.core0.kit.directory import NodeDirectory, gather
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
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
from rpoold.conventions import GIB
from rpoold.errors import BadRequest, Conflict, NotFound
from rpoold.interfaces import IFilesystems, IStoragePools
from rpoold.nodes import ICommandClient
from rpoold.records import IRecords

MIB = 1024**2
#: Directories a size walk may visit before it stops counting.
SIZE_WALK_LIMIT = 1000


class _Pool:
    """A storage pool as the node reports it."""

    def __init__(self, name: str, entry: dict[str, Any], mounts: list[dict[str, Any]]) -> None:
        self.name = name
        self.devices: list[str] = [d["path"] for d in entry.get("devices") or []]
        self.total = sum(int(d.get("size") or 0) for d in entry.get("devices") or [])
        self.used = int(entry.get("used") or 0)
        #: The first ``info.disk`` mount of one of its devices ("" if none is mounted).
        self.mountpoint = next((str(m.get("mountpoint") or "") for m in mounts
                                if m.get("device") in self.devices), "")

    @property
    def capacities(self) -> tuple[int, int]:
        """Total and free size, in GiB."""
        return self.total // GIB, max(0, self.total - self.used) // GIB


# Lookups (containers mount filesystems too) ----------------------------------------------------


async def _pools(client: ICommandClient) -> dict[str, _Pool]:
    entries, mounts = await gather(client.call("btrfs.list"), client.call("info.disk"))
    pools = {}
    for entry in entries or []:
        name = shapes.pool_of_label(entry.get("label"))
        if name is not None:
            pools[name] = _Pool(name, entry, mounts or [])
    return pools


async def _pool(client: ICommandClient, name: str) -> _Pool:
    pool = (await _pools(client)).get(name)
    if pool is None:
        raise NotFound(f"storage pool '{name}' does not exist on node '{client.node}'")
    return pool


async def storage_pool(client: ICommandClient, name: str) -> dict[str, Any] | None:
    """The ``btrfs.list`` entry of the pool labelled for ``name``, if any."""
    for entry in await client.call("btrfs.list") or []:
        if entry.get("label") == shapes.pool_label(name):
            result: dict[str, Any] = entry
            return result
    return None


async def subvolumes(client: ICommandClient, pool: str) -> list[str]:
    """Absolute paths of the subvolumes of a pool (mounted where pools are)."""
    mount = shapes.pool_mount(pool)
    entries = await client.call("btrfs.subvol_list", {"path": mount}) or []
    return sorted(f"{mount}/{e['Path']}" for e in entries)


async def check_filesystems(client: ICommandClient, nodeid: str, entries: list[str]) -> None:
    """
    :param entries: a container's ``pool:filesystem`` mounts.
    :raises BadRequest: one names a pool or a filesystem the node lacks.
    """
    for entry in entries:
        pool, _, filesystem = entry.partition(":")
        if await storage_pool(client, pool) is None:
            raise BadRequest(f"storage pool '{pool}' does not exist on node '{nodeid}'")
        if shapes.filesystem_path(pool, filesystem) not in await subvolumes(client, pool):
            raise BadRequest(f"filesystem '{filesystem}' does not exist in storage pool '{pool}'")


async def _free_disks(client: ICommandClient, devices: list[str]) -> list[dict[str, Any]]:
    """The disks named by ``devices``; each must be a disk of the node with no partition in use."""
    disk_list, mounts, entries = await gather(
        client.call("disk.list"), client.call("info.disk"), client.call("btrfs.list"))
    busy = {m.get("device") for m in mounts or []}
    busy |= {d["path"] for e in entries or [] for d in e.get("devices") or []}
    disks = shapes.block_devices(disk_list or {})
    found = []
    for device in devices:
        if device not in disks:
            raise BadRequest(f"device '{device}' is not a disk of node '{client.node}'")
        for part in disks[device].get("children") or []:
            if f"/dev/{part['kname']}" in busy:
                raise BadRequest(f"device '{device}' is in use")
        found.append(disks[device])
    return found


async def _partition(client: ICommandClient, disk: dict[str, Any]) -> str:
    """Give ``disk`` one partition spanning it; its device path."""
    await client.call("disk.mktable", {"disk": disk["name"], "table_type": "gpt"})
    await client.call("disk.mkpart", {"disk": disk["name"], "start": "1m", "end": "100%",
                                      "part_type": "primary"})
    entry = shapes.block_device(await client.call("disk.list") or {}, f"/dev/{disk['kname']}")
    children = (entry or {}).get("children") or []
    if not children:
        raise BadRequest(f"disk '/dev/{disk['kname']}' has no partition after partitioning")
    return f"/dev/{children[0]['kname']}"


async def _wipe(client: ICommandClient, disk_list: dict[str, Any], partition: str) -> None:
    """Leave the disk of a pool's ``partition`` with an empty partition table."""
    part = shapes.block_device(disk_list, partition)
    if part is not None and part.get("pkname"):
        await client.call("disk.mktable", {"disk": part["pkname"], "table_type": "gpt"})


async def _devices(client: ICommandClient, pool: _Pool) -> list[StoragePoolDevice]:
    disk_list = await client.call("disk.list") or {}
    return [shapes.pool_device(disk_list, path) for path in pool.devices]


async def _device(client: ICommandClient, pool: _Pool, deviceuuid: str) -> tuple[str, StoragePoolDevice]:
    disk_list = await client.call("disk.list") or {}
    for path in pool.devices:
        if (shapes.block_device(disk_list, path) or {}).get("partuuid") == deviceuuid:
            return path, shapes.pool_device(disk_list, path)
    raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")


@implementer(IStoragePools)
class StoragePools:
    """
    ``IStoragePools`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param records: the backend's records (a deleted pool's subvolume
        records go with it).
    """

    def __init__(self, nodes: NodeDirectory[Any], records: IRecords) -> None:
        self.nodes = nodes
        self.records = records

    async def list_storage_pools(self, nodeid: str) -> list[StoragePoolListItem]:
        pools = await _pools(await self.nodes.client(nodeid))
        return [{"name": name, "status": "healthy", "capacity": pools[name].capacities[1]}
                for name in sorted(pools)]

    async def create_storage_pool(self, nodeid: str, body: StoragePoolCreate) -> None:
        client = await self.nodes.client(nodeid)
        name = body["name"]
        if name in await _pools(client):
            raise Conflict(f"storage pool '{name}' exists on node '{nodeid}'")
        disks = await _free_disks(client, list(dict.fromkeys(body["devices"])))
        partitions = [await _partition(client, disk) for disk in disks]
        try:
            await client.call("btrfs.create", {
                "label": shapes.pool_label(name), "devices": partitions,
                "metadata": body["metadataProfile"], "data": body["dataProfile"], "overwrite": True})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        mountpoint = shapes.pool_mount(name)
        await client.call("disk.mount", {"source": partitions[0], "target": mountpoint, "options": ""})
        for directory in ("filesystems", "snapshots"):
            await client.call("filesystem.mkdir", {"path": f"{mountpoint}/{directory}"})

    async def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> StoragePool:
        client = await self.nodes.client(nodeid)
        pool = await _pool(client, storagepoolname)
        total, free = pool.capacities
        data = metadata = "single"
        if pool.mountpoint:
            info = await client.call("btrfs.info", {"mountpoint": pool.mountpoint}) or {}
            data = (info.get("data") or {}).get("profile") or data
            metadata = (info.get("metadata") or {}).get("profile") or metadata
        return {"name": storagepoolname, "status": "healthy", "totalCapacity": total,
                "capacity": free, "dataProfile": data, "metadataProfile": metadata,
                "mountpoint": pool.mountpoint}

    async def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> None:
        client = await self.nodes.client(nodeid)
        pool = await _pool(client, storagepoolname)
        if pool.mountpoint:
            await client.call("disk.umount", {"source": pool.devices[0]})
        disk_list = await client.call("disk.list") or {}
        for device in pool.devices:
            await _wipe(client, disk_list, device)
        prefix = node_records.key(nodeid, shapes.pool_mount(storagepoolname) + "/")
        for key, _ in await self.records.list(node_records.SUBVOLUME, prefix):
            await self.records.delete(node_records.SUBVOLUME, key)

    async def list_storage_pool_devices(self, nodeid: str, storagepoolname: str) -> list[StoragePoolDevice]:
        client = await self.nodes.client(nodeid)
        return await _devices(client, await _pool(client, storagepoolname))

    async def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                          body: list[str]) -> None:
        client = await self.nodes.client(nodeid)
        pool = await _pool(client, storagepoolname)
        present = {d["deviceName"] for d in await _devices(client, pool)}
        new = await _free_disks(client, [d for d in dict.fromkeys(body) if d not in present])
        partitions = [await _partition(client, disk) for disk in new]
        if partitions:
            try:
                await client.call("btrfs.device_add", {"mountpoint": pool.mountpoint, "devices": partitions})
            except CommandFailed as e:
                raise refused_as_bad_request(e) from None

    async def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                           deviceuuid: str) -> StoragePoolDevice:
        client = await self.nodes.client(nodeid)
        _, view = await _device(client, await _pool(client, storagepoolname), deviceuuid)
        return view

    async def delete_storage_pool_device(self, nodeid: str, storagepoolname: str,
                                         deviceuuid: str) -> None:
        client = await self.nodes.client(nodeid)
        pool = await _pool(client, storagepoolname)
        path, _ = await _device(client, pool, deviceuuid)
        try:
            await client.call("btrfs.device_remove", {"mountpoint": pool.mountpoint, "devices": [path]})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        # The disk is free again, as the disks of a deleted pool are.
        await _wipe(client, await client.call("disk.list") or {}, path)


@implementer(IFilesystems)
class Filesystems:
    """
    ``IFilesystems`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param records: the backend's records (quota, read-only flag, snapshot time).
    :param clock: an ``IReactorTime`` (when a snapshot is taken).
    """

    def __init__(self, nodes: NodeDirectory[Any], records: IRecords, clock: Any) -> None:
        self.nodes = nodes
        self.records = records
        self.clock = clock

    async def _subvolumes(self, client: ICommandClient, pool: str) -> list[str]:
        await _pool(client, pool)
        return await subvolumes(client, pool)

    async def _filesystem(self, client: ICommandClient, pool: str, name: str) -> list[str]:
        """The pool's subvolumes, once the filesystem is known to be one of them."""
        found = await self._subvolumes(client, pool)
        if shapes.filesystem_path(pool, name) not in found:
            raise NotFound(f"filesystem '{name}' does not exist in storage pool '{pool}'")
        return found

    async def _snapshot(self, client: ICommandClient, pool: str, filesystem: str, name: str) -> str:
        found = await self._filesystem(client, pool, filesystem)
        path = shapes.snapshot_path(pool, filesystem, name)
        if path not in found:
            raise NotFound(f"snapshot '{name}' of filesystem '{filesystem}' does not exist")
        return path

    @staticmethod
    def _children(found: list[str], prefix: str) -> list[str]:
        names = (p[len(prefix):] for p in found if p.startswith(prefix))
        return sorted(name for name in names if name and "/" not in name)

    @staticmethod
    async def _size_mib(client: ICommandClient, path: str) -> int:
        """What the files under ``path`` hold, in MiB (``filesystem.list``, recursively)."""
        total, todo, visited = 0, [path], 0
        while todo and visited < SIZE_WALK_LIMIT:
            directory = todo.pop()
            visited += 1
            for entry in await client.call("filesystem.list", {"path": directory}) or []:
                if entry.get("is_dir"):
                    todo.append(f"{directory}/{entry['name']}")
                else:
                    total += int(entry.get("size") or 0)
        return total // MIB

    async def _record(self, nodeid: str, path: str) -> dict[str, Any]:
        return await self.records.get(node_records.SUBVOLUME, node_records.key(nodeid, path)) or {}

    async def _drop(self, nodeid: str, path: str) -> None:
        await self.records.delete(node_records.SUBVOLUME, node_records.key(nodeid, path))

    async def list_filesystems(self, nodeid: str, storagepoolname: str) -> list[str]:
        client = await self.nodes.client(nodeid)
        found = await self._subvolumes(client, storagepoolname)
        return self._children(found, shapes.filesystem_path(storagepoolname, ""))

    async def create_filesystem(self, nodeid: str, storagepoolname: str, body: FilesystemCreate) -> None:
        client = await self.nodes.client(nodeid)
        path = shapes.filesystem_path(storagepoolname, body["name"])
        if path in await self._subvolumes(client, storagepoolname):
            raise Conflict(f"filesystem '{body['name']}' exists in storage pool '{storagepoolname}'")
        try:
            await client.call("btrfs.subvol_create", {"path": path})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        await client.call("btrfs.subvol_quota", {"path": path, "limit": body["quota"]})
        await self.records.put(node_records.SUBVOLUME, node_records.key(nodeid, path),
                               {"quota": body["quota"], "readOnly": body["readOnly"]})

    async def get_filesystem_info(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> Filesystem:
        client = await self.nodes.client(nodeid)
        await self._filesystem(client, storagepoolname, filesystemname)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        record = await self._record(nodeid, path)
        return {"name": filesystemname, "parent": storagepoolname,
                "sizeOnDisk": await self._size_mib(client, path),
                "readOnly": bool(record.get("readOnly", False)),
                "quota": int(record.get("quota") or 0), "mountpoint": path}

    async def delete_filesystem(self, nodeid: str, storagepoolname: str, filesystemname: str) -> None:
        client = await self.nodes.client(nodeid)
        found = await self._filesystem(client, storagepoolname, filesystemname)
        prefix = shapes.snapshot_path(storagepoolname, filesystemname, "")
        for snapshot in self._children(found, prefix):
            path = shapes.snapshot_path(storagepoolname, filesystemname, snapshot)
            await client.call("btrfs.subvol_delete", {"path": path})
            await self._drop(nodeid, path)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        await client.call("btrfs.subvol_delete", {"path": path})
        await self._drop(nodeid, path)

    async def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                        filesystemname: str) -> list[str]:
        client = await self.nodes.client(nodeid)
        found = await self._filesystem(client, storagepoolname, filesystemname)
        return self._children(found, shapes.snapshot_path(storagepoolname, filesystemname, ""))

    async def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                              body: SnapshotCreate) -> None:
        client = await self.nodes.client(nodeid)
        found = await self._filesystem(client, storagepoolname, filesystemname)
        path = shapes.snapshot_path(storagepoolname, filesystemname, body["name"])
        if path in found:
            raise Conflict(f"snapshot '{body['name']}' of filesystem '{filesystemname}' exists")
        await client.call("btrfs.subvol_snapshot", {
            "source": shapes.filesystem_path(storagepoolname, filesystemname),
            "destination": path, "read_only": True})
        await self.records.put(node_records.SUBVOLUME, node_records.key(nodeid, path),
                               {"created": int(self.clock.seconds())})

    async def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> Snapshot:
        client = await self.nodes.client(nodeid)
        path = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        return {"name": snapshotname, "sizeOnDisk": await self._size_mib(client, path),
                "timestamp": int((await self._record(nodeid, path)).get("created") or 0)}

    async def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                         filesystemname: str, snapshotname: str) -> None:
        client = await self.nodes.client(nodeid)
        path = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        await client.call("btrfs.subvol_delete", {"path": path})
        await self._drop(nodeid, path)

    async def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> None:
        client = await self.nodes.client(nodeid)
        snapshot = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        await client.call("btrfs.subvol_delete", {"path": path})
        await client.call("btrfs.subvol_snapshot", {"source": snapshot, "destination": path,
                                                    "read_only": False})
        quota = (await self._record(nodeid, path)).get("quota")
        if quota:
            await client.call("btrfs.subvol_quota", {"path": path, "limit": quota})
