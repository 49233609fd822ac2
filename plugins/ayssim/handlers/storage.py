"""
storagepool, filesystem and fssnapshot: btrfs pools labelled
``sp_<name>`` on one partition of each device, mounted at
``/mnt/storagepools/<name>``; filesystems are subvolumes under
``filesystems/``, snapshots under ``snapshots/<fs>/``.
"""

from __future__ import annotations

from typing import Any

from plugins.ayssim.context import ActionContext, ActionFailed, handles
from plugins.ayssim.store import Service
from plugins.core0 import shapes
from rpoold import conventions

# Storage pools -----------------------------------------------------------------------------


async def _disks(ctx: ActionContext, node: Service) -> dict[str, dict[str, Any]]:
    return shapes.block_devices(await ctx.core0("disk.list", node=node))


def _partitions(disks: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Partition path -> (its disk's path, its lsblk entry)."""
    found = {}
    for path, disk in disks.items():
        for part in disk.get("children") or []:
            found[f"/dev/{part['kname']}"] = (path, part)
    return found


async def _partition(ctx: ActionContext, node: Service, device: str) -> str:
    """Give ``device`` a GPT table with one partition; returns the partition's path."""
    disk = (await _disks(ctx, node)).get(device)
    if disk is None:
        raise ActionFailed(f"device {device} is not a disk of node {node.name}")
    await ctx.core0("disk.mktable", {"disk": disk["kname"], "table_type": "gpt"}, node=node)
    await ctx.core0("disk.mkpart", {"disk": disk["kname"], "start": "1m", "end": "100%",
                                    "part_type": "primary"}, node=node)
    children = (await _disks(ctx, node))[device].get("children") or []
    if not children:
        raise ActionFailed(f"no partition on {device} after partitioning")
    return f"/dev/{children[0]['kname']}"


async def _btrfs(ctx: ActionContext, node: Service, name: str) -> dict[str, Any] | None:
    label = shapes.pool_label(name)
    return next((fs for fs in await ctx.core0("btrfs.list", node=node) or [] if fs.get("label") == label),
                None)


async def _mounted(ctx: ActionContext, node: Service, mountpoint: str) -> bool:
    return any(m.get("mountpoint") == mountpoint for m in await ctx.core0("info.disk", node=node) or [])


async def _refresh(ctx: ActionContext, node: Service, name: str) -> None:
    """Rewrite ``devices`` (with partition uuids) and the capacities from the node."""
    fs = await _btrfs(ctx, node, name)
    if fs is None:
        raise ActionFailed(f"storage pool {name} has no btrfs filesystem on node {node.name}")
    partitions = _partitions(await _disks(ctx, node))
    devices = []
    for device in fs.get("devices") or []:
        disk, part = partitions.get(device["path"], (device["path"], {}))
        devices.append({"device": disk, "partUUID": part.get("partuuid") or "", "status": "healthy"})
    ctx.data["devices"] = devices
    total = sum(int(d.get("size") or 0) for d in fs.get("devices") or [])
    ctx.data["totalCapacity"] = total // conventions.GIB
    ctx.data["freeCapacity"] = max(0, total - int(fs.get("used") or 0)) // conventions.GIB
    ctx.data["mountpoint"] = shapes.pool_mount(name)
    ctx.data["status"] = "healthy"


@handles("storagepool", "install")
async def pool_install(ctx: ActionContext) -> None:
    node, name = ctx.node_of(), ctx.service.name
    mountpoint = shapes.pool_mount(name)
    fs = await _btrfs(ctx, node, name)
    if fs is None:
        devices = list(dict.fromkeys(d["device"] for d in ctx.data["devices"]))
        partitions = [await _partition(ctx, node, device) for device in devices]
        await ctx.core0("btrfs.create", {
            "label": shapes.pool_label(name), "metadata": ctx.data["metadataProfile"],
            "data": ctx.data["dataProfile"], "devices": partitions, "overwrite": True}, node=node)
        fs = await _btrfs(ctx, node, name)
        if fs is None:
            raise ActionFailed(f"btrfs filesystem {shapes.pool_label(name)} missing after creation")
    if not await _mounted(ctx, node, mountpoint):
        await ctx.core0("disk.mount", {"source": fs["devices"][0]["path"], "target": mountpoint,
                                       "options": ""}, node=node)
    for sub in ("filesystems", "snapshots"):
        await ctx.core0("filesystem.mkdir", {"path": f"{mountpoint}/{sub}"}, node=node)
    info = await ctx.core0("btrfs.info", {"mountpoint": mountpoint}, node=node)
    profiles = (info["data"]["profile"], info["metadata"]["profile"])
    if profiles != (ctx.data["dataProfile"], ctx.data["metadataProfile"]):
        raise ActionFailed(f"storage pool {name} has profiles data={profiles[0]} metadata={profiles[1]}, "
                           f"not {ctx.data['dataProfile']}/{ctx.data['metadataProfile']}")
    await _refresh(ctx, node, name)


@handles("storagepool", "delete")
async def pool_delete(ctx: ActionContext) -> None:
    node, name = ctx.node_of(), ctx.service.name
    fs = await _btrfs(ctx, node, name)
    if fs is None:
        ctx.log(f"storage pool {name} has no btrfs filesystem; nothing to remove")
        return
    if await _mounted(ctx, node, shapes.pool_mount(name)):
        await ctx.core0("disk.umount", {"source": fs["devices"][0]["path"]}, node=node)
    partitions = _partitions(await _disks(ctx, node))
    for device in fs.get("devices") or []:
        disk, part = partitions.get(device["path"], ("", {}))
        if part.get("pkname"):
            # What the template does by zeroing the start of the device.
            await ctx.core0("disk.mktable", {"disk": part["pkname"], "table_type": "gpt"}, node=node)
            ctx.log(f"wiped {disk}")
    ctx.data["mountpoint"] = ""
    ctx.data["totalCapacity"] = ctx.data["freeCapacity"] = 0


@handles("storagepool", "processChange")
async def pool_change(ctx: ActionContext) -> None:
    if "devices" not in ctx.arguments:
        return
    node, name = ctx.node_of(), ctx.service.name
    wanted = list(dict.fromkeys(
        d["device"] for d in ctx.arguments.get("devices") or [] if isinstance(d, dict) and d.get("device")))
    fs = await _btrfs(ctx, node, name)
    if fs is None:
        raise ActionFailed(f"storage pool {name} is not installed")
    mountpoint = shapes.pool_mount(name)
    partitions = _partitions(await _disks(ctx, node))
    current = {partitions.get(d["path"], (d["path"], {}))[0]: d["path"] for d in fs.get("devices") or []}
    added = [await _partition(ctx, node, device) for device in wanted if device not in current]
    if added:
        await ctx.core0("btrfs.device_add", {"mountpoint": mountpoint, "devices": added}, node=node)
    surplus = [part for disk, part in current.items() if disk not in wanted]
    if surplus:
        for entry in ctx.data["devices"]:
            if entry["device"] not in wanted:
                entry["status"] = "removing"
        await ctx.core0("btrfs.device_remove", {"mountpoint": mountpoint, "devices": surplus}, node=node)
    await _refresh(ctx, node, name)


# Filesystems and snapshots -------------------------------------------------------------------


def _pool_of(service: Service) -> Service:
    pool = service.parent
    if pool is None or pool.actor != "storagepool":
        raise ActionFailed(f"{service.actor} {service.name} has no storage pool parent")
    return pool


def _filesystem_of(snapshot: Service) -> Service:
    filesystem = snapshot.parent
    if filesystem is None or filesystem.actor != "filesystem":
        raise ActionFailed(f"snapshot {snapshot.name} has no filesystem parent")
    return filesystem


def _name(service: Service) -> str:
    return str(service.data.get("name") or service.name)


async def _subvolumes(ctx: ActionContext, pool: Service) -> list[str]:
    """Paths of the pool's subvolumes, absolute."""
    mountpoint = shapes.pool_mount(pool.name)
    entries = await ctx.core0("btrfs.subvol_list", {"path": mountpoint}, node=ctx.node_of(pool))
    return [f"{mountpoint}/{e['Path']}" for e in entries or []]


@handles("filesystem", "install")
async def filesystem_install(ctx: ActionContext) -> None:
    pool = _pool_of(ctx.service)
    path = shapes.filesystem_path(pool.name, _name(ctx.service))
    if path not in await _subvolumes(ctx, pool):
        await ctx.core0("btrfs.subvol_create", {"path": path})
    if ctx.data["quota"]:
        await ctx.core0("btrfs.subvol_quota", {"path": path, "limit": ctx.data["quota"]})
    ctx.data["mountpoint"] = path


@handles("filesystem", "delete")
async def filesystem_delete(ctx: ActionContext) -> None:
    pool = _pool_of(ctx.service)
    name = _name(ctx.service)
    path = shapes.filesystem_path(pool.name, name)
    snapshots = shapes.snapshot_path(pool.name, name, "")
    for subvolume in await _subvolumes(ctx, pool):
        if subvolume.startswith(snapshots) or subvolume == path:
            await ctx.core0("btrfs.subvol_delete", {"path": subvolume})


def _snapshot(ctx: ActionContext) -> tuple[Service, Service, str, str]:
    """The snapshot's filesystem, its pool, the filesystem's path and the snapshot's."""
    filesystem = _filesystem_of(ctx.service)
    pool = _pool_of(filesystem)
    return (filesystem, pool, shapes.filesystem_path(pool.name, _name(filesystem)),
            shapes.snapshot_path(pool.name, _name(filesystem), _name(ctx.service)))


@handles("fssnapshot", "install")
async def snapshot_install(ctx: ActionContext) -> None:
    _, pool, source, path = _snapshot(ctx)
    if path not in await _subvolumes(ctx, pool):
        await ctx.core0("btrfs.subvol_snapshot", {"source": source, "destination": path, "read_only": True})
        ctx.data["timestamp"] = ctx.now()
    ctx.data["path"] = path


@handles("fssnapshot", "delete")
async def snapshot_delete(ctx: ActionContext) -> None:
    _, pool, _, path = _snapshot(ctx)
    if path in await _subvolumes(ctx, pool):
        await ctx.core0("btrfs.subvol_delete", {"path": path})


@handles("fssnapshot", "rollback")
async def snapshot_rollback(ctx: ActionContext) -> None:
    filesystem, pool, target, path = _snapshot(ctx)
    subvolumes = await _subvolumes(ctx, pool)
    if path not in subvolumes:
        raise ActionFailed(f"snapshot {path} does not exist")
    if target in subvolumes:
        await ctx.core0("btrfs.subvol_delete", {"path": target})
    await ctx.core0("btrfs.subvol_snapshot", {"source": path, "destination": target, "read_only": False})
    if filesystem.data.get("quota"):
        await ctx.core0("btrfs.subvol_quota", {"path": target, "limit": filesystem.data["quota"]})
