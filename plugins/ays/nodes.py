"""The nodes family on AYS: the repository's ``node.g8os`` services."""

from __future__ import annotations

from collections.abc import Callable

from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE, Action
from plugins.ays.changes import Changes
from plugins.ays.client import AysClient
from plugins.ays.lookups import Lookups
from plugins.ays.readiness import Guard, operation
from plugins.ays.runs import Write, Writer
from rpoold.contract.wire import Node
from rpoold.interfaces import INodes


@implementer(INodes)
class Nodes:
    """
    ``INodes``' operations.

    :param guarded: the readiness guard.
    :param client: the AYS client.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param writer: the write sequence (reboots are not waited for).
    :ivar deleted: called with the id of each node deleted (the node
        registry forgets its address).
    """

    def __init__(self, guarded: Guard, client: AysClient, lookups: Lookups, changes: Changes,
                 writer: Writer) -> None:
        self.guarded = guarded
        self.client = client
        self.lookups = lookups
        self.changes = changes
        self.writer = writer
        self.deleted: list[Callable[[str], None]] = []

    @operation
    async def list_nodes(self) -> list[Node]:
        items = await self.client.list_services(
            NODE, ("hostname", "status", "id", "redisAddr"))
        return [views.node(str(i["name"]), i.get("data") or {})
                for i in sorted(items, key=lambda i: str(i.get("name", "")))]

    @operation
    async def get_node(self, nodeid: str) -> Node:
        return views.node(nodeid, (await self.lookups.node(nodeid)).get("data") or {})

    @operation
    async def delete_node(self, nodeid: str) -> None:
        await self.lookups.node(nodeid)
        await self.changes.act(NODE, nodeid, "uninstall", then_forget=NODE)
        for deleted in self.deleted:
            deleted(nodeid)

    @operation
    async def reboot_node(self, nodeid: str) -> None:
        await self.lookups.node(nodeid)
        step = Action(NODE, nodeid, "reboot")
        write = Write("node", nodeid, "reboot", blueprints.actions_only(step), ours=(step,))
        self.writer.watch(await self.writer.post_alone(write), write)
