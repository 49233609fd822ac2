"""
vm and vdisk: KVM domains named after the vm service; vdisks only carry
their status and size (the block storage behind them is not simulated).
"""

from __future__ import annotations

from typing import Any

from plugins.ayssim.context import ActionContext, ActionFailed, handles
from plugins.ayssim.node_commands import CommandFailed
from plugins.ayssim.store import Service
from plugins.ayssim.templates import SchemaError
from plugins.core0 import shapes

#: How long the templates wait for a domain to come up or go down.
DOMAIN_WAIT = 60.0


async def _domain(ctx: ActionContext, node: Service | None = None) -> dict[str, Any] | None:
    domains = await ctx.core0("kvm.list", node=node) or []
    return next((d for d in domains if d.get("name") == ctx.service.name), None)


def _wait(ctx: ActionContext) -> float:
    return min(DOMAIN_WAIT, ctx.sim.wait_timeout)


def _create_arguments(ctx: ActionContext) -> dict[str, Any]:
    data = ctx.data
    return {"name": ctx.service.name, "media": shapes.vm_media(data["disks"]), "cpu": data["cpu"],
            "memory": data["memory"], "nics": shapes.vm_nics(data["nics"]), "port": None}


@handles("vm", "install")
async def vm_install(ctx: ActionContext) -> None:
    try:
        if await _domain(ctx) is None:
            await ctx.core0("kvm.create", _create_arguments(ctx))
        domain = await ctx.poll(lambda: _domain(ctx), f"domain {ctx.service.name} to exist", _wait(ctx))
    except Exception:
        ctx.data["status"] = "error"
        raise
    ctx.data["vnc"] = int(domain.get("vnc", -1))
    ctx.data["id"] = str(domain.get("uuid") or "")
    ctx.data["status"] = "running"


@handles("vm", "start")
async def vm_start(ctx: ActionContext) -> None:
    ctx.data["status"] = "starting"
    await ctx.call("install")


@handles("vm", "stop")
async def vm_stop(ctx: ActionContext) -> None:
    domain = await _domain(ctx)
    if domain is not None:
        await ctx.core0("kvm.destroy", {"uuid": domain["uuid"]})
    ctx.data["status"] = "halted"
    ctx.data["vnc"] = -1


async def _running_domain(ctx: ActionContext) -> dict[str, Any]:
    domain = await _domain(ctx)
    if domain is None:
        raise ActionFailed(f"vm {ctx.service.name} has no domain on node {ctx.node_of().name}")
    return domain


@handles("vm", "pause")
async def vm_pause(ctx: ActionContext) -> None:
    domain = await _running_domain(ctx)
    await ctx.core0("kvm.pause", {"uuid": domain["uuid"]})
    ctx.data["status"] = "paused"


@handles("vm", "resume")
async def vm_resume(ctx: ActionContext) -> None:
    domain = await _running_domain(ctx)
    await ctx.core0("kvm.resume", {"uuid": domain["uuid"]})
    ctx.data["status"] = "running"


@handles("vm", "shutdown")
async def vm_shutdown(ctx: ActionContext) -> None:
    domain = await _domain(ctx)
    if domain is not None:
        ctx.data["status"] = "halting"
        await ctx.core0("kvm.shutdown", {"uuid": domain["uuid"]})

        async def gone() -> bool | None:
            return True if await _domain(ctx) is None else None

        await ctx.poll(gone, f"domain {ctx.service.name} to shut down", _wait(ctx))
    ctx.data["status"] = "halted"
    ctx.data["vnc"] = -1


@handles("vm", "migrate")
async def vm_migrate(ctx: ActionContext) -> None:
    """Move the domain to the node named in data ``node``; idempotent."""
    source = ctx.node_of()
    target = ctx.require("node", ctx.data["node"])
    if target is source:
        ctx.log(f"vm {ctx.service.name} is on node {target.name} already")
        if ctx.data["status"] == "migrating":
            ctx.data["status"] = "running"
        return
    previous = ctx.data["status"]
    ctx.data["status"] = "migrating"
    domain = await _domain(ctx, source)
    if domain is not None:
        try:
            await ctx.core0("kvm.migrate", {"uuid": domain["uuid"],
                                            "desturi": f"qemu+ssh://{target.name}/system"}, node=source)
        except CommandFailed as e:
            ctx.log(f"live migration refused ({e}); recreating the domain on {target.name}")
            await ctx.core0("kvm.destroy", {"uuid": domain["uuid"]}, node=source)
        if await _domain(ctx, target) is None:
            await ctx.core0("kvm.create", _create_arguments(ctx), node=target)
    ctx.service.set_parent(target)
    if domain is not None:
        moved = await ctx.poll(lambda: _domain(ctx, target), "domain on the target node", _wait(ctx))
        ctx.data["vnc"] = int(moved.get("vnc", -1))
        ctx.data["status"] = "running"
    else:
        ctx.data["status"] = previous


def _checked(ctx: ActionContext, key: str) -> Any:
    field = ctx.service.template.schema_field(key)
    assert field is not None
    try:
        return field.type.check(ctx.arguments[key], key)
    except SchemaError as e:
        raise ActionFailed(str(e)) from None


@handles("vm", "processChange")
async def vm_change(ctx: ActionContext) -> None:
    if ctx.service.actions.get("install") != "ok":
        ctx.log(f"vm {ctx.service.name} is not installed; change ignored")
        return
    for key in ("memory", "cpu"):
        if key in ctx.arguments:
            ctx.data[key] = _checked(ctx, key)
    domain = await _domain(ctx)
    if "nics" in ctx.arguments:
        nics = _checked(ctx, "nics")
        if domain is not None:
            for nic in shapes.vm_nics([n for n in ctx.data["nics"] if n not in nics]):
                await ctx.core0("kvm.remove_nic", {"uuid": domain["uuid"], **nic})
            for nic in shapes.vm_nics([n for n in nics if n not in ctx.data["nics"]]):
                await ctx.core0("kvm.add_nic", {"uuid": domain["uuid"], **nic})
        ctx.data["nics"] = nics
    if "disks" in ctx.arguments:
        disks = _checked(ctx, "disks")
        if domain is not None:
            for media in shapes.vm_media([d for d in ctx.data["disks"] if d not in disks]):
                await ctx.core0("kvm.detach_disk", {"uuid": domain["uuid"], "media": media})
            for media in shapes.vm_media([d for d in disks if d not in ctx.data["disks"]]):
                await ctx.core0("kvm.attach_disk", {"uuid": domain["uuid"], "media": media})
        ctx.data["disks"] = disks
        ctx.data["vdisks"] = list(dict.fromkeys(d["vdiskid"] for d in disks if d["vdiskid"]))
        for name in ctx.data["vdisks"]:
            vdisk = ctx.find("vdisk", name)
            if vdisk is not None:
                ctx.service.link_producer(vdisk)
    target = ctx.arguments.get("node")
    if isinstance(target, str) and target and target != ctx.node_of().name:
        ctx.data["node"] = target
        await ctx.call("migrate")


# Vdisks ------------------------------------------------------------------------------------


@handles("vdisk", "install")
async def vdisk_install(ctx: ActionContext) -> None:
    if ctx.data["templateVdisk"]:
        ctx.log(f"copy of template vdisk {ctx.data['templateVdisk']} simulated")
    ctx.data["status"] = "halted"


@handles("vdisk", "start")
async def vdisk_start(ctx: ActionContext) -> None:
    ctx.data["status"] = "running"


@handles("vdisk", "pause")
async def vdisk_pause(ctx: ActionContext) -> None:
    ctx.data["status"] = "halted"


@handles("vdisk", "rollback")
async def vdisk_rollback(ctx: ActionContext) -> None:
    ctx.data["status"] = "rollingback"
    ctx.log("rollback simulated")
    ctx.data["status"] = "running"


@handles("vdisk", "resize")
async def vdisk_resize(ctx: ActionContext) -> None:
    if "size" not in ctx.arguments:
        return
    size = _checked(ctx, "size")
    if size < ctx.data["size"]:
        raise ActionFailed(f"new size {size} is smaller than the current size {ctx.data['size']}")
    ctx.data["size"] = size


@handles("vdisk", "processChange")
async def vdisk_change(ctx: ActionContext) -> None:
    if ctx.service.actions.get("install") != "ok":
        ctx.log(f"vdisk {ctx.service.name} is not installed; change ignored")
        return
    if "size" in ctx.arguments and ctx.arguments["size"] != ctx.data["size"]:
        await ctx.call("resize", arguments={"size": ctx.arguments["size"]})
