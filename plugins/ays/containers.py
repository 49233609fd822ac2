"""
The containers family on AYS: a node's ``container`` services, with the
status the node itself reports when it answers quickly.
"""

from __future__ import annotations

from typing import TypeVar

from twisted.internet.defer import FirstError, ensureDeferred, gatherResults
from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE, NODE_ROLE
from plugins.ays.changes import Changes
from plugins.ays.lookups import Lookups, is_child
from plugins.ays.node_facts import NodeFacts
from plugins.ays.readiness import Guard, operation
from rpoold.contract.wire import Container, ContainerListItem, CreateContainer, PoolContainerListItem
from rpoold.errors import BadRequest, NotFound
from rpoold.interfaces import IContainers
from rpoold.listing import PoolListing

#: A container's view or list item.
View = TypeVar("View", Container, ContainerListItem)


def live(view: View, name: str, running: set[str] | None) -> View:
    """The view with the status the node reports, when it reported."""
    if running is not None:
        view["status"] = "running" if name in running else "halted"
    return view


@implementer(IContainers)
class Containers:
    """
    ``IContainers``' operations.

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param facts: what the nodes say (the containers they run).
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes,
                 facts: NodeFacts) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes
        self.facts = facts

    @operation
    async def list_containers(self, nodeid: str) -> list[ContainerListItem]:
        node = await self.lookups.node(nodeid)
        items = await self.lookups.children("container", NODE, nodeid,
                                            ("flist", "hostname", "status"))
        running = await self.facts.running(nodeid, node) if items else None
        return [live(views.container_item(str(i["name"]), i.get("data") or {}),
                     str(i["name"]), running) for i in items]

    @operation
    async def list_pool_containers(self, node: str) -> PoolListing[PoolContainerListItem]:
        nodes = [node] if node else await self.lookups.node_ids()
        try:
            parts = await gatherResults([ensureDeferred(self._of_node(nodeid, bool(node)))
                                         for nodeid in nodes], consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
        listing: PoolListing[PoolContainerListItem] = PoolListing([])
        for nodeid, (items, silent) in zip(nodes, parts, strict=True):
            listing.items.extend(items)
            if silent:
                listing.unreachable.append(nodeid)
        return listing

    async def _of_node(self, nodeid: str, named: bool) -> tuple[list[PoolContainerListItem], bool]:
        """
        A node's part of the pool-wide list (AYS's items, with the status
        the node reports when it answers in time), and whether it did not.

        :param named: the node was named by the request (404 when AYS does
            not know it; else one that went meanwhile has no containers).
        """
        try:
            node = await self.lookups.node(nodeid)
        except NotFound:
            if named:
                raise
            return [], False
        items = await self.lookups.children("container", NODE, nodeid, ("flist", "hostname", "status"))
        running, silent = await self.facts.running_or_silent(nodeid, node) if items else (None, False)
        return [{"node": nodeid, **live(views.container_item(str(i["name"]), i.get("data") or {}),
                                       str(i["name"]), running)} for i in items], silent

    async def _check_filesystems(self, nodeid: str, entries: list[str]) -> None:
        for entry in entries:
            pool, _, name = entry.partition(":")
            pool_service = await self.lookups.service("storagepool", pool)
            if pool_service is None or not is_child(pool_service, NODE_ROLE, nodeid):
                raise BadRequest(f"storage pool '{pool}' does not exist on node '{nodeid}'")
            fs = await self.lookups.service("filesystem", name)
            if fs is None or not is_child(fs, "storagepool", pool):
                raise BadRequest(f"filesystem '{name}' does not exist in storage pool '{pool}'")

    @operation
    async def create_container(self, nodeid: str, body: CreateContainer) -> None:
        await self.lookups.node(nodeid)
        await self._check_filesystems(nodeid, list(body.get("filesystems") or []))
        await self.changes.create("container", body["name"], blueprints.container(nodeid, body),
                                  "container")

    @operation
    async def delete_container(self, nodeid: str, containername: str) -> None:
        await self.lookups.on_node("container", containername, nodeid, "container")
        await self.changes.act("container", containername, "stop", verb="delete",
                               then_forget="container")

    @operation
    async def get_container(self, nodeid: str, containername: str) -> Container:
        service = await self.lookups.on_node("container", containername, nodeid, "container")
        view = views.container(service.get("data") or {})
        return live(view, containername, await self.facts.running(nodeid))

    @operation
    async def start_container(self, nodeid: str, containername: str) -> None:
        await self.lookups.on_node("container", containername, nodeid, "container")
        await self.changes.act("container", containername, "start")

    @operation
    async def stop_container(self, nodeid: str, containername: str) -> None:
        await self.lookups.on_node("container", containername, nodeid, "container")
        await self.changes.act("container", containername, "stop")
