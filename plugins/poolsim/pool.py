"""
A pool of simulated nodes, seeded with the seed document's examples.
"""

from __future__ import annotations

from typing import Any

from plugins.poolsim import facts
from plugins.poolsim.jobs import Job, ProgramRunner, SimulatedPrograms
from plugins.poolsim.node import Node

SEED_NODE = "525400123456"
SEED_HOSTNAME = "core0node"
SEED_CONTAINER = "vfw_21"
SEED_CONTAINER_ID = 9
SEED_FLIST = (
    "http://192.168.20.132:8080/deboeckj/lede-17.01.0-r3205-59508e3-x86-64-generic-rootfs.flist"
)
SEED_JOB = "f3976780-f369-45df-ab54-206149dc000e"
SEED_JOB_START = 1491984742526


class Pool:
    """
    The simulated nodes, by id.

    :param nodes: how many nodes; node 0 is the seed document's
        ``525400123456`` (hostname ``core0node``) with its container
        ``vfw_21`` and that container's job.
    """

    def __init__(
        self,
        clock: Any,
        nodes: int = 2,
        runner: ProgramRunner | None = None,
        reboot_seconds: float = 1.0,
        seed: bool = True,
    ) -> None:
        self.clock = clock
        self.nodes: dict[str, Node] = {}
        for index in range(nodes):
            node_id = facts.node_id(index)
            hostname = SEED_HOSTNAME if index == 0 else f"node-{node_id}"
            node = Node(
                clock, index, node_id, hostname, runner=runner,
                reboot_seconds=reboot_seconds,
                first_container_id=SEED_CONTAINER_ID if index == 0 and seed else 1,
            )
            node.pool = self
            self.nodes[node_id] = node
        if seed and nodes:
            self._seed(self.nodes[SEED_NODE])

    @staticmethod
    def _seed(node: Node) -> None:
        node.corex_create(
            root=SEED_FLIST,
            hostname=SEED_CONTAINER,
            nics=[{"type": "default"}],
            tags=[SEED_CONTAINER],
        )
        container = node.containers[SEED_CONTAINER_ID]
        container.files.put("/etc/dnsmasq.conf", b"interface=eth0\ndhcp-range=10.0.0.10,10.0.0.100\n")
        # The seed's dnsmasq is simulated whatever runs the other programs.
        runner, container.runner = container.runner, SimulatedPrograms()
        try:
            job = container.execute(
                "core.system",
                {"name": "/bin/dnsmasq", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"]},
                job_id=SEED_JOB,
            )
        finally:
            container.runner = runner
        job.starttime = SEED_JOB_START
        assert isinstance(job, Job) and job.running

    def node(self, node_id: str) -> Node | None:
        return self.nodes.get(node_id)

    def node_by_uri(self, uri: str) -> Node | None:
        """The node a migration URI such as ``qemu+ssh://10.0.0.2/system`` names."""
        for node in self.nodes.values():
            if node.address in uri or node.node_id in uri:
                return node
        return None
