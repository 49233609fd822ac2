"""
storage_cluster and ardb: a cluster's ``init`` lays out one storage pool,
filesystem, container and ardb server per picked disk (plus one metadata
server); its ``install`` is done by the installs pulled in through those
producers.  An ardb server is a daemon process in its container.
"""

from __future__ import annotations

from typing import Any

from plugins.ayssim.context import ActionContext, ActionFailed, handles
from plugins.ayssim.handlers.containers import container_ids
from plugins.ayssim.store import Service
from rpoold import conventions

ARDB_FLIST = "https://hub.gig.tech/gig-official-apps/ardb-rocksdb.flist"
ARDB_BINARY = "/bin/ardb-server"
ARDB_HOME = "/mnt/data"
FIRST_PORT = 2000


async def _storage_address(ctx: ActionContext, node: Service) -> str:
    """The node's first non-loopback address (its storage network address)."""
    for nic in await ctx.core0("info.nic", node=node) or []:
        if nic.get("name") == "lo":
            continue
        for addr in nic.get("addrs") or []:
            text = addr.get("addr") if isinstance(addr, dict) else addr
            if text:
                return str(text).split("/", 1)[0]
    return str(node.data["redisAddr"])


def _taken(ctx: ActionContext, node: Service) -> set[str]:
    """Devices already promised to a storage pool service of the node."""
    return {d["device"] for s in ctx.repository.by_actor("storagepool") if s.parent is node
            for d in s.data["devices"]}


class _Layout:
    """What a cluster's init creates, and the names it records."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.filesystems: list[str] = []
        self.ardbs: list[str] = []

    async def server(self, node: Service, pool: str, name: str, address: str, index: int) -> None:
        ctx = self.ctx
        await ctx.create_service("filesystem", name, {"storagePool": pool, "name": name})
        await ctx.create_service("container", name, {
            "node": node.name, "flist": ARDB_FLIST, "hostNetworking": True, "hostname": name,
            "mounts": [{"filesystem": name, "target": ARDB_HOME}]})
        await ctx.create_service("ardb", name, {
            "homeDir": ARDB_HOME, "bind": f"{address}:{FIRST_PORT + index}", "container": name})
        self.filesystems.append(name)
        self.ardbs.append(name)


@handles("storage_cluster", "init")
async def cluster_init(ctx: ActionContext) -> None:
    data = ctx.data
    label = data["label"] or ctx.service.name
    nodes = [ctx.require("node", name) for name in data["nodes"]]
    per_node = data["nrServer"] // len(nodes)
    if per_node < 1:
        raise ActionFailed("nrServer must be at least the number of nodes")
    layout = _Layout(ctx)
    picked: list[tuple[Service, dict[str, Any]]] = []
    for node in nodes:
        listing = await ctx.core0("disk.list", node=node)
        taken = _taken(ctx, node)
        free = [d for d in listing.get("blockdevices") or []
                if conventions.disk_type(d) == data["diskType"] and not d.get("children")
                and f"/dev/{d['kname']}" not in taken]
        if len(free) < per_node:
            raise ActionFailed(f"node {node.name} has {len(free)} free {data['diskType']} disk(s), "
                               f"{per_node} needed")
        picked.extend((node, disk) for disk in free[:per_node])
    addresses = {node.name: await _storage_address(ctx, node) for node in nodes}
    pool = ""
    node = nodes[-1]
    for index, (node, disk) in enumerate(picked):
        pool = f"cluster_{node.name}_{label}_{disk['name']}"
        await ctx.create_service("storagepool", pool, {
            "node": node.name, "dataProfile": "single", "metadataProfile": "single",
            "devices": [{"device": f"/dev/{disk['kname']}"}]})
        await layout.server(node, pool, f"{pool}_data_{index}", addresses[node.name], index)
    metadata = len(picked)
    await layout.server(node, pool, f"{pool}_metadata_{metadata}", addresses[node.name], metadata)
    data["filesystems"] = layout.filesystems
    data["ardbs"] = layout.ardbs
    for name in layout.filesystems:
        ctx.service.link_producer(ctx.require("filesystem", name))
    for name in layout.ardbs:
        ctx.service.link_producer(ctx.require("ardb", name))
    data["status"] = "empty"


@handles("storage_cluster", "install")
async def cluster_install(ctx: ActionContext) -> None:
    ctx.data["status"] = "ready"


def _ardbs(ctx: ActionContext) -> list[Service]:
    return [s for s in (ctx.find("ardb", name) for name in ctx.data["ardbs"]) if s is not None]


@handles("storage_cluster", "start")
async def cluster_start(ctx: ActionContext) -> None:
    for ardb in _ardbs(ctx):
        await ctx.call("start", ardb)


@handles("storage_cluster", "stop")
async def cluster_stop(ctx: ActionContext) -> None:
    for ardb in _ardbs(ctx):
        await ctx.call("stop", ardb)


@handles("storage_cluster", "delete")
async def cluster_delete(ctx: ActionContext) -> None:
    for ardb in _ardbs(ctx):
        container = ardb.parent
        if container is not None:
            await ctx.call("stop", container)
            ctx.remove_service(container)
    for name in ctx.data["filesystems"]:
        filesystem = ctx.find("filesystem", name)
        pool = filesystem.parent if filesystem is not None else None
        if pool is not None and pool.repository is ctx.repository and pool in ctx.repository.services:
            await ctx.call("delete", pool)
            ctx.remove_service(pool)
    ctx.data["status"] = "empty"


# ardb -------------------------------------------------------------------------------------


async def _ardb_jobs(ctx: ActionContext) -> tuple[Service, int, list[str]]:
    """The ardb's container service, its core0 id and the ardb server jobs in it."""
    container = ctx.service.parent
    if container is None:
        raise ActionFailed(f"ardb {ctx.service.name} has no container")
    ids = await container_ids(ctx, container)
    if not ids:
        raise ActionFailed(f"container {container.name} of ardb {ctx.service.name} is not running")
    jobs = await ctx.core0("job.list", container=ids[0]) or []
    running = [j["cmd"]["id"] for j in jobs
               if ((j.get("cmd") or {}).get("arguments") or {}).get("name") == ARDB_BINARY]
    return container, ids[0], running


@handles("ardb", "install", "start")
async def ardb_start(ctx: ActionContext) -> None:
    _, cid, running = await _ardb_jobs(ctx)
    if not running:
        config = f"{ctx.data['homeDir'] or ARDB_HOME}/ardb.conf"
        job = await ctx.spawn("core.system", {"name": ARDB_BINARY, "args": [config]}, container=cid)
        ctx.log(f"ardb server started on {ctx.data['bind']} (job {job})")


@handles("ardb", "stop")
async def ardb_stop(ctx: ActionContext) -> None:
    try:
        _, cid, running = await _ardb_jobs(ctx)
    except ActionFailed as e:
        ctx.log(f"nothing to stop: {e}")
        return
    for job in running:
        await ctx.core0("job.kill", {"id": job, "signal": 15}, container=cid)
