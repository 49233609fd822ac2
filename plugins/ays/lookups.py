"""
Finding AYS services the way every family needs them: one service by role
and name, one that must exist (404), one that must be the child of a given
parent (the parent in the URL is checked, Q13), one that must not exist
yet (409), and the children of a parent in a stable order.
"""

from __future__ import annotations

from typing import Any

from plugins.ays import views
from plugins.ays.blueprints import NODE as NODE_ACTOR
from plugins.ays.blueprints import NODE_ROLE
from plugins.ays.client import AysClient
from rpoold.errors import Conflict, NotFound


def same_role(a: str, b: str) -> bool:
    """Whether two roles or actor names (``node`` / ``node.g8os``) are one role."""
    return a.split(".")[0] == b.split(".")[0]


def is_child(service: dict[str, Any], role: str, name: str) -> bool:
    """Whether a Service object's parent is service ``name`` of ``role``."""
    parent = views.parent_of(service)
    return parent is not None and parent[1] == name and same_role(parent[0], role)


class Lookups:
    """
    :param client: the AYS client.
    """

    def __init__(self, client: AysClient) -> None:
        self.client = client

    async def service(self, role: str, name: str) -> dict[str, Any] | None:
        """The Service object, or ``None`` when AYS has none of that role and name."""
        return await self.client.get_service(role, name)

    async def existing(self, role: str, name: str, what: str) -> dict[str, Any]:
        """
        A service that must exist.

        :param what: the resource, for the message (``storage cluster``).
        :raises NotFound: it does not.
        """
        service = await self.service(role, name)
        if service is None:
            raise NotFound(f"{what} '{name}' does not exist")
        return service

    async def node(self, nodeid: str) -> dict[str, Any]:
        """
        The node's ``node.g8os`` service.

        :raises NotFound: no such node.
        """
        return await self.existing(NODE_ROLE, nodeid, "node")

    async def node_ids(self) -> list[str]:
        """The ids of every node AYS has, in order."""
        return sorted(str(i.get("name", "")) for i in await self.client.list_services(NODE_ACTOR))

    async def child(self, role: str, name: str, parent_role: str, parent: str,
                    what: str, where: str) -> dict[str, Any]:
        """
        A service that must exist under the given parent.

        :param where: where it was looked for, for the message (``in
            storage pool 'p1'``).
        :raises NotFound: it does not exist there.
        """
        service = await self.service(role, name)
        if service is None or not is_child(service, parent_role, parent):
            raise NotFound(f"{what} '{name}' does not exist {where}")
        return service

    async def on_node(self, role: str, name: str, nodeid: str, what: str) -> dict[str, Any]:
        """
        A service that must exist on the node.

        :raises NotFound: no such node, or the service is not on it.
        """
        service = await self.service(role, name)
        if service is None or not is_child(service, NODE_ROLE, nodeid):
            await self.node(nodeid)
            raise NotFound(f"{what} '{name}' does not exist on node '{nodeid}'")
        return service

    async def absent(self, role: str, name: str, what: str) -> None:
        """
        Check that no service of this role and name exists (anywhere).

        :raises Conflict: one does (the message says where).
        """
        service = await self.service(role, name)
        if service is not None:
            parent = views.parent_of(service)
            where = f" (on {parent[0]} '{parent[1]}')" if parent else ""
            raise Conflict(f"{what} '{name}' exists{where}")

    async def children(self, role: str, parent_actor: str, parent: str,
                       fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """
        The services of ``role`` under a parent, by name.

        :param fields: the data fields to list with each.
        """
        items = await self.client.list_services(role, fields, (parent_actor, parent))
        return sorted(items, key=lambda i: str(i.get("name", "")))
