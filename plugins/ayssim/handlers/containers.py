"""container: corex containers tagged with the service name."""

from __future__ import annotations

from typing import Any

from plugins.ayssim.context import ActionContext, ActionFailed, handles
from plugins.ayssim.store import Service
from plugins.core0 import shapes


def tagged(listing: Any, tag: str) -> list[int]:
    """Ids of the containers of a ``corex.list`` answer tagged ``tag``."""
    return [cid for cid, arguments in shapes.listed_containers(listing or {})
            if tag in (arguments.get("tags") or [])]


async def container_ids(ctx: ActionContext, container: Service) -> list[int]:
    """core0 ids of the running containers of a container service."""
    listing = await ctx.core0("corex.list", node=ctx.node_of(container))
    return tagged(listing, container.name)


def filesystem_path(filesystem: Service) -> str:
    """Where a filesystem service's subvolume is on its node."""
    if filesystem.data.get("mountpoint"):
        return str(filesystem.data["mountpoint"])
    pool = filesystem.parent
    if pool is None:
        raise ActionFailed(f"filesystem {filesystem.name} has no storage pool")
    return shapes.filesystem_path(pool.name, filesystem.data.get("name") or filesystem.name)


def create_arguments(ctx: ActionContext) -> dict[str, Any]:
    data = ctx.data
    mounts = {}
    for mount in data["mounts"]:
        filesystem = ctx.require("filesystem", mount["filesystem"])
        mounts[filesystem_path(filesystem)] = mount["target"]
    # The service's data has the fields of a CreateContainer body.
    return shapes.container_arguments({**data, "name": ctx.service.name}, mounts)


@handles("container", "install")
async def install(ctx: ActionContext) -> None:
    ctx.data["status"] = "halted"
    await ctx.call("start")


@handles("container", "start")
async def start(ctx: ActionContext) -> None:
    if not await container_ids(ctx, ctx.service):
        try:
            arguments = create_arguments(ctx)
        except ValueError as e:
            raise ActionFailed(f"bad port mapping: {e}") from None
        cid = int(await ctx.core0("corex.create", arguments))
        ctx.log(f"container {cid} created")
        for process in ctx.data["initProcesses"]:
            job = await ctx.spawn("core.system", shapes.system_arguments(process), container=cid)
            ctx.log(f"init process {process['name']} started (job {job})")
    if not await container_ids(ctx, ctx.service):
        raise ActionFailed(f"container {ctx.service.name} is not running after start")
    ctx.data["status"] = "running"


@handles("container", "stop")
async def stop(ctx: ActionContext) -> None:
    for cid in await container_ids(ctx, ctx.service):
        await ctx.core0("corex.terminate", {"container": cid})
        ctx.log(f"container {cid} terminated")
    if await container_ids(ctx, ctx.service):
        raise ActionFailed(f"container {ctx.service.name} still runs after stop")
    ctx.data["status"] = "halted"
