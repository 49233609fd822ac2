"""
What the AYS backend asks the nodes themselves, through ``INodeAgents`` at
the address AYS has for each node: their disks (the pre-checks of storage
pool devices and storage clusters, as the original did) and the
containers they really run (so container status follows the node, not only
AYS's last action).  Without agents, the checks are left to AYS and
container status is AYS's alone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from plugins.ays.lookups import Lookups
from plugins.ays.registry import address_of
from rpoold.errors import BackendTimeout, BackendUnavailable, BadRequest
from rpoold.nodes import INodeAgents

log = Logger()


def disk_in_use(disk: dict[str, Any]) -> bool:
    """A ``disk.list`` disk with a mounted or formatted partition."""
    return any(
        part.get("mountpoint") or part.get("fstype")
        for part in disk.get("children") or [] if isinstance(part, dict)
    )


class NodeFacts:
    """
    :param agents: the nodes' agents, or ``None``.
    :param lookups: the service lookups (a node's service, for its address).
    :param live_status_timeout: seconds to wait for a node's container
        list before showing AYS's status instead (0: never ask).
    """

    def __init__(self, agents: INodeAgents | None, lookups: Lookups,
                 live_status_timeout: float = 1.0) -> None:
        self.agents = agents
        self.lookups = lookups
        self.live_status_timeout = live_status_timeout

    async def disks(self, nodeid: str, node: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """
        A node's whole disks by ``/dev/<kname>``.

        :param node: the node's ``node.g8os`` service.
        :returns: the disks, or ``None`` without agents.
        :raises BackendUnavailable, BackendTimeout: the node does not answer.
        """
        if self.agents is None:
            return None
        return await self.agents.disks(address_of(nodeid, node.get("data") or {}))

    async def running(self, nodeid: str, node: dict[str, Any] | None = None) -> set[str] | None:
        """
        The containers the node really runs, or ``None`` when it cannot say
        quickly (then AYS's status stands).

        :param node: the node's service, when already fetched.
        :raises NotFound: no such node (when ``node`` is not given).
        """
        return (await self.running_or_silent(nodeid, node))[0]

    async def running_or_silent(self, nodeid: str,
                                node: dict[str, Any] | None = None) -> tuple[set[str] | None, bool]:
        """
        As ``running``, and whether the node was asked and did not answer
        within ``live_status_timeout`` (``False`` when it was not asked).
        """
        if self.agents is None or self.live_status_timeout <= 0:
            return None, False
        if node is None:
            node = await self.lookups.node(nodeid)
        try:
            return set(await self.agents.running_containers(
                address_of(nodeid, node.get("data") or {}), self.live_status_timeout)), False
        except (BackendUnavailable, BackendTimeout) as e:
            log.debug("node {node} did not list its containers: {error}", node=nodeid,
                      error=e.message)
            return None, True

    async def check_devices(self, node: dict[str, Any], nodeid: str, devices: list[str]) -> None:
        """
        Check that each device is a free whole disk of the node.

        :param node: the node's service.
        :raises BadRequest: a device is not a disk of the node, or in use.
        :raises BackendUnavailable, BackendTimeout: the node does not answer.
        """
        disks = await self.disks(nodeid, node)
        if disks is None:
            return
        for device in devices:
            disk = disks.get(device)
            if disk is None:
                raise BadRequest(f"device '{device}' is not a disk of node '{nodeid}'")
            if disk_in_use(disk):
                raise BadRequest(f"device '{device}' is in use")

    def close(self) -> Deferred[Any]:
        """:returns: Deferred firing once the agents' connections are closed."""
        return self.agents.close() if self.agents is not None else succeed(None)
