"""
Bridges and ZeroTier networks of a node (``IBridges``, ``IZerotiers``),
here and in the mock (which runs the commands on its model).

``bridge.list`` gives names only: the settings a bridge was created with
are kept in memory for the bridges made here (empty otherwise, e.g. after
a restart).  ZeroTier memberships are all read from ``zerotier.list``.
"""

from __future__ import annotations

from typing import Any

from plugins.core0 import shapes
from plugins.core0.access import CommandClient, CommandFamilies, deferred
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
from rpoold.errors import Conflict, NotFound

#: The bridge core0 makes for containers; not one of the API's bridges.
DEFAULT_BRIDGE = "core0"


class NetworkFamilies(CommandFamilies):
    """Bridges and ZeroTier networks."""

    # Bridges ----------------------------------------------------------------------------------

    async def _bridges(self, client: CommandClient) -> list[str]:
        return sorted(str(name) for name in await client.call("bridge.list") or [])

    async def _bridge(self, client: CommandClient, name: str) -> None:
        if name == DEFAULT_BRIDGE or name not in await self._bridges(client):
            raise NotFound(f"bridge '{name}' does not exist on node '{client.node}'")

    @deferred
    async def create_bridge(self, nodeid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        if body["name"] in await self._bridges(client):
            raise Conflict(f"bridge '{body['name']}' exists on node '{nodeid}'")
        network = shapes.bridge_network(body)
        try:
            await client.call("bridge.create", {"name": body["name"], "hwaddr": body["hwaddr"],
                                                "network": network})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None
        self.bridge_networks[(nodeid, body["name"])] = network

    @deferred
    async def list_bridges(self, nodeid: str) -> list[dict[str, Any]]:
        client = await self.client(nodeid)
        return [shapes.bridge_view(name, self.bridge_networks.get((nodeid, name)))
                for name in await self._bridges(client) if name != DEFAULT_BRIDGE]

    @deferred
    async def get_bridge(self, nodeid: str, bridgeid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        await self._bridge(client, bridgeid)
        return shapes.bridge_view(bridgeid, self.bridge_networks.get((nodeid, bridgeid)))

    @deferred
    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None:
        client = await self.client(nodeid)
        await self._bridge(client, bridgeid)
        await client.call("bridge.delete", {"name": bridgeid})
        self.bridge_networks.pop((nodeid, bridgeid), None)

    # ZeroTier -----------------------------------------------------------------------------------

    async def _networks(self, client: CommandClient) -> dict[str, dict[str, Any]]:
        value = await client.call("zerotier.list")
        if isinstance(value, str):
            value = shapes.parse_zerotier_list(value)
        return {str(n["nwid"]): n for n in value or []}

    async def _network(self, client: CommandClient, nwid: str) -> dict[str, Any]:
        network = (await self._networks(client)).get(nwid)
        if network is None:
            raise NotFound(f"node '{client.node}' is not in zerotier network '{nwid}'")
        return network

    @deferred
    async def list_zerotiers(self, nodeid: str) -> list[dict[str, Any]]:
        networks = await self._networks(await self.client(nodeid))
        return [shapes.zerotier_list_item(nodeid, n) for n in networks.values()]

    @deferred
    async def join_zerotier(self, nodeid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        if body["nwid"] in await self._networks(client):
            raise Conflict(f"node '{nodeid}' is already in zerotier network '{body['nwid']}'")
        try:
            await client.call("zerotier.join", {"network": body["nwid"]})
        except CommandFailed as e:
            raise refused_as_bad_request(e) from None

    @deferred
    async def get_zerotier(self, nodeid: str, zerotierid: str) -> dict[str, Any]:
        return shapes.zerotier_view(await self._network(await self.client(nodeid), zerotierid))

    @deferred
    async def exit_zerotier(self, nodeid: str, zerotierid: str) -> None:
        client = await self.client(nodeid)
        await self._network(client, zerotierid)
        await client.call("zerotier.leave", {"network": zerotierid})
