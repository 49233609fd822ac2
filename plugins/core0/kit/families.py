"""
Every family of the command kit over one ``NodeDirectory`` and one
``IRecords``: what the core0 backend and the mock both hold.
"""

from __future__ import annotations

from typing import Any

from plugins.core0.kit.container_work import ContainerWork
from plugins.core0.kit.containers import ContainerIndex, Containers
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.files import ContainerFiles
from plugins.core0.kit.jobs import NodeJobs
from plugins.core0.kit.network import Bridges, Zerotiers
from plugins.core0.kit.nodes import Nodes
from plugins.core0.kit.storage import Filesystems, StoragePools
from plugins.core0.kit.vms import VMs
from rpoold.records import IRecords


class CommandFamilies:
    """
    :param directory: the nodes and their command clients.
    :param records: what the nodes cannot tell.
    :param clock: an ``IReactorTime``.
    :param timeout: seconds ``ping_node`` waits for the agent, and each node
        has to answer its part of a pool-wide list.
    :param ping_timeout: seconds a node has to answer the ping behind its status.
    :param transition_seconds: how long a VM stays in a passing state.
    :param container_cache_seconds: how long a container name -> id
        mapping is trusted.
    """

    def __init__(self, directory: NodeDirectory[Any], records: IRecords, clock: Any, *,
                 timeout: float, ping_timeout: float, transition_seconds: float,
                 container_cache_seconds: float = 300.0) -> None:
        self.directory = directory
        self.records = records
        self.index = ContainerIndex(records, clock, container_cache_seconds)
        self.nodes = Nodes(directory, self.index, records, timeout=timeout, ping_timeout=ping_timeout)
        self.jobs = NodeJobs(directory, self.index, clock)
        self.bridges = Bridges(directory, records)
        self.zerotiers = Zerotiers(directory)
        self.storage_pools = StoragePools(directory, records)
        self.filesystems = Filesystems(directory, records, clock)
        self.containers = Containers(directory, self.index, node_timeout=timeout)
        self.container_work = ContainerWork(directory, self.index, clock)
        self.container_files = ContainerFiles(directory, self.index)
        self.vms = VMs(directory, records, clock, transition_seconds, node_timeout=timeout)

    async def resume(self) -> None:
        """At start: what the records say was under way goes on (``VMs.resume``)."""
        await self.vms.resume()


#: The family parts of ``CommandFamilies``, by attribute.
PARTS: dict[str, type] = {
    "nodes": Nodes,
    "jobs": NodeJobs,
    "bridges": Bridges,
    "zerotiers": Zerotiers,
    "storage_pools": StoragePools,
    "filesystems": Filesystems,
    "containers": Containers,
    "container_work": ContainerWork,
    "container_files": ContainerFiles,
    "vms": VMs,
}


def parts_at(attribute: str) -> dict[str, type]:
    """``PARTS`` for a backend holding its ``CommandFamilies`` at ``attribute`` (for ``serve``)."""
    return {f"{attribute}.{name}": part for name, part in PARTS.items()}
