"""
Nodes and their live facts (``INodes``, ``INodeInfo``) on core0 commands.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit import node_records
from plugins.core0.kit.containers import ContainerIndex
from plugins.core0.kit.directory import NodeDirectory, gather
from rpoold.contract.wire import CoreStateResult, CPUInfo, DiskInfo, MemInfo, NicInfo, Node, OSInfo
from rpoold.errors import RpoolError
from rpoold.interfaces import INodeInfo, INodes
from rpoold.nodes import NodeAddress
from rpoold.records import IRecords


@implementer(INodes, INodeInfo)
class Nodes:
    """
    :param nodes: the nodes and their clients.
    :param index: the containers by name (a reboot stops them for a while).
    :param records: the backend's records (a deleted node's go with it).
    :param timeout: seconds ``ping_node`` waits for the agent's answer.
    :param ping_timeout: seconds a node has to answer the ping behind its
        ``status`` (``halted`` when it does not).
    """

    def __init__(self, nodes: NodeDirectory[Any], index: ContainerIndex, records: IRecords, *,
                 timeout: float, ping_timeout: float) -> None:
        self.nodes = nodes
        self.index = index
        self.records = records
        self.timeout = timeout
        self.ping_timeout = ping_timeout

    # INodes -----------------------------------------------------------------------------------

    def _view(self, address: NodeAddress) -> Deferred[Node]:
        """
        A node as ``GET /nodes`` shows it: asked within ``ping_timeout``
        (plain callbacks, no coroutine: a listing makes one per node).
        """
        client = self.nodes.client_of(address)

        def shown(answer: tuple[bool, tuple[str, str]]) -> Node:
            alive, (hostname, ip) = answer
            return {"id": address.id, "hostname": hostname, "ipaddress": ip,
                    "status": "running" if alive else "halted"}

        return self.nodes.status_and_facts(client).addCallback(shown)

    async def list_nodes(self) -> list[Node]:
        addresses = await self.nodes.addresses()
        views = await DeferredList([self._view(a) for a in addresses], consumeErrors=True)
        return [view if ok else {"id": address.id, "hostname": address.hostname,
                                 "ipaddress": address.host, "status": "halted"}
                for address, (ok, view) in zip(addresses, views, strict=True)]

    async def get_node(self, nodeid: str) -> Node:
        return await self._view(self.nodes.address_of(await self.nodes.client(nodeid)))

    async def delete_node(self, nodeid: str) -> None:
        await self.nodes.forget(nodeid)
        self.index.forget_node(nodeid)
        await node_records.forget_node(self.records, nodeid)

    async def reboot_node(self, nodeid: str) -> None:
        client = await self.nodes.client(nodeid)
        try:
            # Listed first, so that the containers it stops stay recorded.
            await self.index.listing(client)
        except RpoolError:
            pass  # a node that does not answer may still take the reboot
        await client.submit("core.reboot")
        self.index.forget(nodeid)

    # INodeInfo --------------------------------------------------------------------------------

    async def ping_node(self, nodeid: str) -> bool:
        client = await self.nodes.client(nodeid)
        alive: bool = await client.ping(self.timeout)
        return alive

    def get_node_state(self, nodeid: str) -> Deferred[CoreStateResult]:
        return self.nodes.call(nodeid, "core.state")

    def get_cpu_info(self, nodeid: str) -> Deferred[list[CPUInfo]]:
        return self.nodes.call(nodeid, "info.cpu")

    async def get_disk_info(self, nodeid: str) -> list[DiskInfo]:
        client = await self.nodes.client(nodeid)
        disks, mounts = await gather(client.call("disk.list"), client.call("info.disk"))
        return shapes.disk_infos(disks or {}, mounts or [])

    def get_mem_info(self, nodeid: str) -> Deferred[MemInfo]:
        # The hot path of the benchmark: no coroutine between the app and the client.
        return self.nodes.call(nodeid, "info.mem")

    def get_nic_info(self, nodeid: str) -> Deferred[list[NicInfo]]:
        return self.nodes.call(nodeid, "info.nic").addCallback(lambda nics: shapes.nic_infos(nics or []))

    def get_node_os_info(self, nodeid: str) -> Deferred[OSInfo]:
        return self.nodes.call(nodeid, "info.os")
