"""bridge and zerotier: bridges and ZeroTier memberships of a node."""

from __future__ import annotations

from typing import Any

from plugins.ayssim.context import ActionContext, handles
from plugins.ayssim.templates import SchemaError
from plugins.core0 import shapes


@handles("bridge", "install")
async def bridge_install(ctx: ActionContext) -> None:
    name = ctx.service.name
    if name not in await ctx.core0("bridge.list"):
        mode = ctx.data["networkMode"]
        await ctx.core0("bridge.create", {
            "name": name,
            "hwaddr": ctx.data["hwaddr"],
            "network": {"mode": "" if mode == "none" else mode, "nat": ctx.data["nat"],
                        "settings": dict(ctx.data["setting"])},
        })
    ctx.data["status"] = "up"


@handles("bridge", "delete")
async def bridge_delete(ctx: ActionContext) -> None:
    name = ctx.service.name
    if name in await ctx.core0("bridge.list"):
        await ctx.core0("bridge.delete", {"name": name})
    ctx.data["status"] = "down"


async def _networks(ctx: ActionContext) -> list[dict[str, Any]]:
    value = await ctx.core0("zerotier.list")
    if isinstance(value, str):
        value = shapes.parse_zerotier_list(value)
    return [n for n in value or [] if isinstance(n, dict)]


def _member(networks: list[dict[str, Any]], nwid: str) -> dict[str, Any] | None:
    return next((n for n in networks if nwid in (n.get("nwid"), n.get("id"))), None)


@handles("zerotier", "install")
async def zerotier_install(ctx: ActionContext) -> None:
    nwid = ctx.data["nwid"]
    await ctx.core0("zerotier.join", {"network": nwid})

    async def up() -> dict[str, Any] | None:
        network = _member(await _networks(ctx), nwid)
        return network if network is not None and network.get("status") == "OK" else None

    network = await ctx.poll(up, f"zerotier network {nwid} to be OK")
    template = ctx.service.template
    for key, value in shapes.zerotier_view(network).items():
        field = template.schema_field(key)
        if field is None or key in ("node", "nwid"):
            continue
        try:
            ctx.data[key] = field.type.check(value, key)
        except SchemaError as e:
            ctx.log(f"zerotier field not copied: {e}")


@handles("zerotier", "delete")
async def zerotier_delete(ctx: ActionContext) -> None:
    nwid = ctx.data["nwid"]
    if _member(await _networks(ctx), nwid) is not None:
        await ctx.core0("zerotier.leave", {"network": nwid})
