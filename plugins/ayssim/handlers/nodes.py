"""node.g8os: reachability check on install, reboot through core0."""

from __future__ import annotations

from plugins.ayssim.context import ActionContext, handles


@handles("node.g8os", "install")
async def install(ctx: ActionContext) -> None:
    await ctx.core0("core.ping")
    ctx.data["status"] = "running"


@handles("node.g8os", "reboot")
async def reboot(ctx: ActionContext) -> None:
    # core0 does not answer a reboot (the job dies with the node).
    job = await ctx.spawn("core.reboot")
    ctx.log(f"reboot requested (job {job})")
