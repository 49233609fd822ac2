"""
Bridges (``IBridges``) and ZeroTier networks (``IZerotiers``) of a node.

``bridge.list`` gives names only: the settings a bridge was created with
are a record (``node_records.BRIDGE``) for the bridges made here (empty
otherwise).  ZeroTier memberships are all read from ``zerotier.list``.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit import node_records
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
from rpoold.contract.wire import Bridge, BridgeCreate, Zerotier, ZerotierJoin, ZerotierListItem
from rpoold.errors import Conflict, NotFound
from rpoold.interfaces import IBridges, IZerotiers
from rpoold.nodes import ICommandClient
from rpoold.records import IRecords

#: The bridge core0 makes for containers; not one of the API's bridges.
DEFAULT_BRIDGE = "core0"


@implementer(IBridges)
class Bridges:
    """
    ``IBridges`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param records: the backend's records (bridge settings).
    """

    def __init__(self, nodes: NodeDirectory[Any], records: IRecords) -> None:
        self.nodes = nodes
        self.records = records

    @staticmethod
    async def _bridges(client: ICommandClient) -> list[str]:
        return sorted(str(name) for name in await client.call("bridge.list") or [])

    async def _bridge(self, client: ICommandClient, name: str) -> None:
        if name == DEFAULT_BRIDGE or name not in await self._bridges(client):
            raise NotFound(f"bridge '{name}' does not exist on node '{client.node}'")

    async def _network(self, nodeid: str, name: str) -> dict[str, Any] | None:
        return await self.records.get(node_records.BRIDGE, node_records.key(nodeid, name))

    async def create_bridge(self, nodeid: str, body: BridgeCreate) -> None:
        client = await self.nodes.client(nodeid)
        if body["name"] in await self._bridges(client):
            raise Conflict(f"bridge '{body['name']}' exists on node '{nodeid}'")
        network = shapes.bridge_network(body)
        key = node_records.key(nodeid, body["name"])
        # Claimed (atomically, whoever else creates it) with its settings
        # before the node makes it; the claim goes if the node refuses.
        if not await self.records.add(node_records.BRIDGE, key, network):
            raise Conflict(f"bridge '{body['name']}' exists on node '{nodeid}'")
        try:
            await client.call("bridge.create", {"name": body["name"], "hwaddr": body["hwaddr"],
                                                "network": network})
        except BaseException as e:
            await self.records.delete(node_records.BRIDGE, key)
            if isinstance(e, CommandFailed):
                raise refused_as_bad_request(e) from None
            raise

    async def list_bridges(self, nodeid: str) -> list[Bridge]:
        client = await self.nodes.client(nodeid)
        return [shapes.bridge_view(name, await self._network(nodeid, name))
                for name in await self._bridges(client) if name != DEFAULT_BRIDGE]

    async def get_bridge(self, nodeid: str, bridgeid: str) -> Bridge:
        client = await self.nodes.client(nodeid)
        await self._bridge(client, bridgeid)
        return shapes.bridge_view(bridgeid, await self._network(nodeid, bridgeid))

    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None:
        client = await self.nodes.client(nodeid)
        try:
            await self._bridge(client, bridgeid)
        except NotFound:
            # A claim left by a create that never reached the node goes too.
            await self.records.delete(node_records.BRIDGE, node_records.key(nodeid, bridgeid))
            raise
        await client.call("bridge.delete", {"name": bridgeid})
        await self.records.delete(node_records.BRIDGE, node_records.key(nodeid, bridgeid))


@implementer(IZerotiers)
class Zerotiers:
    """
    ``IZerotiers`` on core0 commands.

    :param nodes: the nodes and their clients.
    """

    def __init__(self, nodes: NodeDirectory[Any]) -> None:
        self.nodes = nodes

    @staticmethod
    async def _networks(client: ICommandClient) -> dict[str, dict[str, Any]]:
        value = await client.call("zerotier.list")
        if isinstance(value, str):
            value = shapes.parse_zerotier_list(value)
        return {str(n["nwid"]): n for n in value or []}

    async def _network(self, client: ICommandClient, nwid: str) -> dict[str, Any]:
        network = (await self._networks(client)).get(nwid)
        if network is None:
            raise NotFound(f"node '{client.node}' is not in zerotier network '{nwid}'")
        return network

    async def list_zerotiers(self, nodeid: str) -> list[ZerotierListItem]:
        networks = await self._networks(await self.nodes.client(nodeid))
        return [shapes.zerotier_list_item(nodeid, n) for n in networks.values()]

    async def join_zerotier(self, nodeid: str, body: ZerotierJoin) -> None:
        client = await self.nodes.client(nodeid)
        if body["nwid"] in await self._networks(client):
            raise Conflict(f"node '{nodeid}' is already in zerotier network '{body['nwid']}'")
        try:
            await client.call("zerotier.join", {"network": body["nwid"]})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None

    async def get_zerotier(self, nodeid: str, zerotierid: str) -> Zerotier:
        return shapes.zerotier_view(await self._network(await self.nodes.client(nodeid), zerotierid))

    async def exit_zerotier(self, nodeid: str, zerotierid: str) -> None:
        client = await self.nodes.client(nodeid)
        await self._network(client, zerotierid)
        await client.call("zerotier.leave", {"network": zerotierid})
