"""
Storage pools with their devices, filesystems and snapshots
(``IStoragePools``, ``IFilesystems``), made of ``disk.*`` and ``btrfs.*``
commands alone (the mock runs them on its model): a pool is a btrfs filesystem
labelled ``sp_<name>`` over one partition per disk, mounted at
``/mnt/storagepools/<name>``; a filesystem is the subvolume
``<mount>/filesystems/<fs>``; a snapshot is ``<mount>/snapshots/<fs>/<snap>``.

The node cannot tell a filesystem's quota and read-only flag, nor when a
snapshot was taken: those are kept in memory for what was made here (quota
0, writable and timestamp 0 otherwise, e.g. after a restart).
"""

from __future__ import annotations

from typing import Any

from plugins.core0 import shapes
from plugins.core0.access import CommandClient, CommandFamilies, deferred, gather
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
from rpoold import conventions
from rpoold.errors import BadRequest, Conflict, NotFound

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
        return self.total // conventions.GIB, max(0, self.total - self.used) // conventions.GIB


class StorageFamilies(CommandFamilies):
    """Storage pools, devices, filesystems and snapshots."""

    # Lookups ---------------------------------------------------------------------------------

    async def _pools(self, client: CommandClient) -> dict[str, _Pool]:
        entries, mounts = await gather(client.call("btrfs.list"), client.call("info.disk"))
        pools = {}
        for entry in entries or []:
            name = shapes.pool_of_label(entry.get("label"))
            if name is not None:
                pools[name] = _Pool(name, entry, mounts or [])
        return pools

    async def _pool(self, client: CommandClient, name: str) -> _Pool:
        pool = (await self._pools(client)).get(name)
        if pool is None:
            raise NotFound(f"storage pool '{name}' does not exist on node '{client.node}'")
        return pool

    async def _free_disks(self, client: CommandClient, devices: list[str]) -> list[dict[str, Any]]:
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

    async def _partition(self, client: CommandClient, disk: dict[str, Any]) -> str:
        """Give ``disk`` one partition spanning it; its device path."""
        await client.call("disk.mktable", {"disk": disk["name"], "table_type": "gpt"})
        await client.call("disk.mkpart", {"disk": disk["name"], "start": "1m", "end": "100%",
                                          "part_type": "primary"})
        entry = shapes.block_device(await client.call("disk.list") or {}, f"/dev/{disk['kname']}")
        children = (entry or {}).get("children") or []
        if not children:
            raise BadRequest(f"disk '/dev/{disk['kname']}' has no partition after partitioning")
        return f"/dev/{children[0]['kname']}"

    async def _wipe(self, client: CommandClient, disk_list: dict[str, Any], partition: str) -> None:
        """Leave the disk of a pool's ``partition`` with an empty partition table."""
        part = shapes.block_device(disk_list, partition)
        if part is not None and part.get("pkname"):
            await client.call("disk.mktable", {"disk": part["pkname"], "table_type": "gpt"})

    # Storage pools -------------------------------------------------------------------------------

    @deferred
    async def list_storage_pools(self, nodeid: str) -> list[dict[str, Any]]:
        pools = await self._pools(await self.client(nodeid))
        return [{"name": name, "status": "healthy", "capacity": pools[name].capacities[1]}
                for name in sorted(pools)]

    @deferred
    async def create_storage_pool(self, nodeid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        name = body["name"]
        if name in await self._pools(client):
            raise Conflict(f"storage pool '{name}' exists on node '{nodeid}'")
        disks = await self._free_disks(client, list(dict.fromkeys(body["devices"])))
        partitions = [await self._partition(client, disk) for disk in disks]
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

    @deferred
    async def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        pool = await self._pool(client, storagepoolname)
        total, free = pool.capacities
        data = metadata = "single"
        if pool.mountpoint:
            info = await client.call("btrfs.info", {"mountpoint": pool.mountpoint}) or {}
            data = (info.get("data") or {}).get("profile") or data
            metadata = (info.get("metadata") or {}).get("profile") or metadata
        return {"name": storagepoolname, "status": "healthy", "totalCapacity": total,
                "capacity": free, "dataProfile": data, "metadataProfile": metadata,
                "mountpoint": pool.mountpoint}

    @deferred
    async def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> None:
        client = await self.client(nodeid)
        pool = await self._pool(client, storagepoolname)
        if pool.mountpoint:
            await client.call("disk.umount", {"source": pool.devices[0]})
        disk_list = await client.call("disk.list") or {}
        for device in pool.devices:
            await self._wipe(client, disk_list, device)
        prefix = shapes.pool_mount(storagepoolname) + "/"
        for key in [k for k in self.subvolume_records if k[0] == nodeid and k[1].startswith(prefix)]:
            del self.subvolume_records[key]

    async def _devices(self, client: CommandClient, pool: _Pool) -> list[dict[str, Any]]:
        disk_list = await client.call("disk.list") or {}
        return [shapes.pool_device(disk_list, path) for path in pool.devices]

    @deferred
    async def list_storage_pool_devices(self, nodeid: str, storagepoolname: str) -> list[dict[str, Any]]:
        client = await self.client(nodeid)
        return await self._devices(client, await self._pool(client, storagepoolname))

    @deferred
    async def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                          body: list[str]) -> None:
        client = await self.client(nodeid)
        pool = await self._pool(client, storagepoolname)
        present = {d["deviceName"] for d in await self._devices(client, pool)}
        new = await self._free_disks(client, [d for d in dict.fromkeys(body) if d not in present])
        partitions = [await self._partition(client, disk) for disk in new]
        if partitions:
            try:
                await client.call("btrfs.device_add", {"mountpoint": pool.mountpoint, "devices": partitions})
            except CommandFailed as e:
                raise refused_as_bad_request(e) from None

    async def _device(self, client: CommandClient, pool: _Pool,
                      deviceuuid: str) -> tuple[str, dict[str, Any]]:
        disk_list = await client.call("disk.list") or {}
        for path in pool.devices:
            if (shapes.block_device(disk_list, path) or {}).get("partuuid") == deviceuuid:
                return path, shapes.pool_device(disk_list, path)
        raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")

    @deferred
    async def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                           deviceuuid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        _, view = await self._device(client, await self._pool(client, storagepoolname), deviceuuid)
        return view

    @deferred
    async def delete_storage_pool_device(self, nodeid: str, storagepoolname: str,
                                         deviceuuid: str) -> None:
        client = await self.client(nodeid)
        pool = await self._pool(client, storagepoolname)
        path, _ = await self._device(client, pool, deviceuuid)
        try:
            await client.call("btrfs.device_remove", {"mountpoint": pool.mountpoint, "devices": [path]})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        # The disk is free again, as the disks of a deleted pool are.
        await self._wipe(client, await client.call("disk.list") or {}, path)

    # Filesystems and snapshots ---------------------------------------------------------------------

    async def _subvolumes(self, client: CommandClient, pool: str) -> list[str]:
        await self._pool(client, pool)
        return await self.subvolumes(client, pool)

    async def _filesystem(self, client: CommandClient, pool: str, name: str) -> list[str]:
        """The pool's subvolumes, once the filesystem is known to be one of them."""
        subvolumes = await self._subvolumes(client, pool)
        if shapes.filesystem_path(pool, name) not in subvolumes:
            raise NotFound(f"filesystem '{name}' does not exist in storage pool '{pool}'")
        return subvolumes

    @staticmethod
    def _children(subvolumes: list[str], prefix: str) -> list[str]:
        names = (p[len(prefix):] for p in subvolumes if p.startswith(prefix))
        return sorted(name for name in names if name and "/" not in name)

    async def _size_mib(self, client: CommandClient, path: str) -> int:
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

    def _record(self, nodeid: str, path: str) -> dict[str, Any]:
        return self.subvolume_records.get((nodeid, path)) or {}

    @deferred
    async def list_filesystems(self, nodeid: str, storagepoolname: str) -> list[str]:
        client = await self.client(nodeid)
        subvolumes = await self._subvolumes(client, storagepoolname)
        return self._children(subvolumes, shapes.filesystem_path(storagepoolname, ""))

    @deferred
    async def create_filesystem(self, nodeid: str, storagepoolname: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        path = shapes.filesystem_path(storagepoolname, body["name"])
        if path in await self._subvolumes(client, storagepoolname):
            raise Conflict(f"filesystem '{body['name']}' exists in storage pool '{storagepoolname}'")
        try:
            await client.call("btrfs.subvol_create", {"path": path})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        await client.call("btrfs.subvol_quota", {"path": path, "limit": body["quota"]})
        self.subvolume_records[(nodeid, path)] = {"quota": body["quota"], "readOnly": body["readOnly"]}

    @deferred
    async def get_filesystem_info(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        await self._filesystem(client, storagepoolname, filesystemname)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        record = self._record(nodeid, path)
        return {"name": filesystemname, "parent": storagepoolname,
                "sizeOnDisk": await self._size_mib(client, path),
                "readOnly": bool(record.get("readOnly", False)),
                "quota": int(record.get("quota") or 0), "mountpoint": path}

    @deferred
    async def delete_filesystem(self, nodeid: str, storagepoolname: str, filesystemname: str) -> None:
        client = await self.client(nodeid)
        subvolumes = await self._filesystem(client, storagepoolname, filesystemname)
        prefix = shapes.snapshot_path(storagepoolname, filesystemname, "")
        for snapshot in self._children(subvolumes, prefix):
            path = shapes.snapshot_path(storagepoolname, filesystemname, snapshot)
            await client.call("btrfs.subvol_delete", {"path": path})
            self.subvolume_records.pop((nodeid, path), None)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        await client.call("btrfs.subvol_delete", {"path": path})
        self.subvolume_records.pop((nodeid, path), None)

    @deferred
    async def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                        filesystemname: str) -> list[str]:
        client = await self.client(nodeid)
        subvolumes = await self._filesystem(client, storagepoolname, filesystemname)
        return self._children(subvolumes, shapes.snapshot_path(storagepoolname, filesystemname, ""))

    async def _snapshot(self, client: CommandClient, pool: str, filesystem: str, name: str) -> str:
        subvolumes = await self._filesystem(client, pool, filesystem)
        path = shapes.snapshot_path(pool, filesystem, name)
        if path not in subvolumes:
            raise NotFound(f"snapshot '{name}' of filesystem '{filesystem}' does not exist")
        return path

    @deferred
    async def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                              body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        subvolumes = await self._filesystem(client, storagepoolname, filesystemname)
        path = shapes.snapshot_path(storagepoolname, filesystemname, body["name"])
        if path in subvolumes:
            raise Conflict(f"snapshot '{body['name']}' of filesystem '{filesystemname}' exists")
        await client.call("btrfs.subvol_snapshot", {
            "source": shapes.filesystem_path(storagepoolname, filesystemname),
            "destination": path, "read_only": True})
        self.subvolume_records[(nodeid, path)] = {"created": int(self.reactor.seconds())}

    @deferred
    async def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        path = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        return {"name": snapshotname, "sizeOnDisk": await self._size_mib(client, path),
                "timestamp": int(self._record(nodeid, path).get("created") or 0)}

    @deferred
    async def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                         filesystemname: str, snapshotname: str) -> None:
        client = await self.client(nodeid)
        path = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        await client.call("btrfs.subvol_delete", {"path": path})
        self.subvolume_records.pop((nodeid, path), None)

    @deferred
    async def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> None:
        client = await self.client(nodeid)
        snapshot = await self._snapshot(client, storagepoolname, filesystemname, snapshotname)
        path = shapes.filesystem_path(storagepoolname, filesystemname)
        await client.call("btrfs.subvol_delete", {"path": path})
        await client.call("btrfs.subvol_snapshot", {"source": snapshot, "destination": path,
                                                    "read_only": False})
        quota = self._record(nodeid, path).get("quota")
        if quota:
            await client.call("btrfs.subvol_quota", {"path": path, "limit": quota})
