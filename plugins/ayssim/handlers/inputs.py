"""
The ``input`` rules of the templates: what a new service must (not) be
given, and the fields it derives from the given ones.  A failing rule
keeps the service from being created.
"""

from __future__ import annotations

from plugins.ayssim.context import ActionContext, ActionFailed, handles


def _reject(ctx: ActionContext, *fields: str) -> None:
    for name in fields:
        if name in ctx.arguments:
            raise ActionFailed(f"{name} must not be given, it is computed")


def _require(ctx: ActionContext, *fields: str) -> None:
    for name in fields:
        if not ctx.arguments.get(name):
            raise ActionFailed(f"{name} is required")


@handles("container", "input")
async def container_input(ctx: ActionContext) -> None:
    _reject(ctx, "filesystems")
    ctx.data["filesystems"] = list(dict.fromkeys(
        m["filesystem"] for m in ctx.data["mounts"] if m["filesystem"]))
    ctx.data["bridges"] = list(dict.fromkeys(
        n["id"] for n in ctx.data["nics"] if n["type"] == "bridge" and n["id"]))


@handles("vm", "input")
async def vm_input(ctx: ActionContext) -> None:
    _reject(ctx, "vdisks")
    ctx.data["vdisks"] = list(dict.fromkeys(d["vdiskid"] for d in ctx.data["disks"] if d["vdiskid"]))


@handles("filesystem", "input")
async def filesystem_input(ctx: ActionContext) -> None:
    _reject(ctx, "mountpoint")
    _require(ctx, "name")


@handles("fssnapshot", "input")
async def fssnapshot_input(ctx: ActionContext) -> None:
    _reject(ctx, "path")


@handles("storagepool", "input")
async def storagepool_input(ctx: ActionContext) -> None:
    _require(ctx, "metadataProfile", "dataProfile", "devices")


@handles("storage_cluster", "input")
async def storage_cluster_input(ctx: ActionContext) -> None:
    _reject(ctx, "filesystems", "ardbs")
    nodes = ctx.data["nodes"]
    if not nodes:
        raise ActionFailed("nodes is required")
    if ctx.data["nrServer"] % len(nodes):
        raise ActionFailed(
            f"nrServer ({ctx.data['nrServer']}) must be divisible by the number of nodes ({len(nodes)})")


@handles("bootstrap.g8os", "input")
async def bootstrap_input(ctx: ActionContext) -> None:
    _require(ctx, "zerotierNetID", "zerotierToken")
