"""
The network families on AYS: a node's bridges (``bridge`` services) and its
ZeroTier memberships (``zerotier`` services named ``<node>_<nwid>``).
"""

from __future__ import annotations

import re
from typing import Any

from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE, Action
from plugins.ays.changes import Changes
from plugins.ays.lookups import Lookups
from plugins.ays.readiness import Guard, operation
from plugins.ays.runs import Write, Writer
from rpoold.contract.wire import Bridge, BridgeCreate, Zerotier, ZerotierJoin, ZerotierListItem
from rpoold.errors import BadRequest, Conflict, NotFound
from rpoold.interfaces import IBridges, IZerotiers

#: A ZeroTier network id: 16 hexadecimal digits.
ZEROTIER_NWID = re.compile(r"^[0-9a-fA-F]{16}$")


@implementer(IBridges)
class Bridges:
    """
    ``IBridges``' operations.

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes

    @operation
    async def create_bridge(self, nodeid: str, body: BridgeCreate) -> None:
        await self.lookups.node(nodeid)
        await self.changes.create("bridge", body["name"], blueprints.bridge(nodeid, body), "bridge")

    @operation
    async def list_bridges(self, nodeid: str) -> list[Bridge]:
        await self.lookups.node(nodeid)
        items = await self.lookups.children("bridge", NODE, nodeid, ("setting", "status"))
        return [views.bridge(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def get_bridge(self, nodeid: str, bridgeid: str) -> Bridge:
        service = await self.lookups.on_node("bridge", bridgeid, nodeid, "bridge")
        return views.bridge(bridgeid, service.get("data") or {})

    @operation
    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None:
        await self.lookups.on_node("bridge", bridgeid, nodeid, "bridge")
        await self.changes.act("bridge", bridgeid, "delete", then_forget="bridge")


@implementer(IZerotiers)
class Zerotiers:
    """
    ``IZerotiers``' operations.

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param writer: the write sequence (a join checks membership under its lock).
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes, writer: Writer) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes
        self.writer = writer

    @operation
    async def list_zerotiers(self, nodeid: str) -> list[ZerotierListItem]:
        await self.lookups.node(nodeid)
        items = await self.lookups.children("zerotier", NODE, nodeid, ("nwid", "status", "type"))
        return [views.zerotier_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def join_zerotier(self, nodeid: str, body: ZerotierJoin) -> None:
        await self.lookups.node(nodeid)
        nwid = body["nwid"]
        if not ZEROTIER_NWID.match(nwid):
            raise BadRequest(f"nwid '{nwid}' is not a ZeroTier network id (16 hexadecimal digits)")
        instance = blueprints.zerotier_instance(nodeid, nwid)
        write = Write("zerotier", nwid, "join", blueprints.zerotier(nodeid, nwid),
                      ours=(Action("zerotier", instance, "install"),))
        write.on_failure = self.changes.forget("zerotier", instance)
        write.on_failure_spec = {"forget": ["zerotier", instance]}

        async def not_joined() -> None:
            if await self.lookups.service("zerotier", instance) is not None:
                raise Conflict(f"node '{nodeid}' is already in zerotier network '{nwid}'")

        await self.writer.apply(write, not_joined)

    async def _zerotier(self, nodeid: str, nwid: str) -> dict[str, Any]:
        service = await self.lookups.service("zerotier", blueprints.zerotier_instance(nodeid, nwid))
        if service is None:
            await self.lookups.node(nodeid)
            raise NotFound(f"node '{nodeid}' is not in zerotier network '{nwid}'")
        return service

    @operation
    async def get_zerotier(self, nodeid: str, zerotierid: str) -> Zerotier:
        service = await self._zerotier(nodeid, zerotierid)
        return views.zerotier(service.get("data") or {})

    @operation
    async def exit_zerotier(self, nodeid: str, zerotierid: str) -> None:
        await self._zerotier(nodeid, zerotierid)
        instance = blueprints.zerotier_instance(nodeid, zerotierid)
        await self.changes.act("zerotier", instance, "delete", then_forget="zerotier")
