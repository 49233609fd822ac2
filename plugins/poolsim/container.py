"""
A container on a simulated node: a coreX agent with its own jobs,
processes and files, run by a ``core-<n>`` job on the node.
"""

from __future__ import annotations

import copy
from typing import Any

from plugins.poolsim.agent import Agent
from plugins.poolsim.jobs import Job

DEFAULT_STORAGE = "ardb://hub.gig.tech:16379"


class Container(Agent):
    """
    :ivar node: the agent of the node (its core0) the container runs on;
        the node forgets the container when ``runner_job`` ends.
    :ivar arguments: the ``corex.create`` arguments as stored (what
        ``corex.list`` shows).
    :ivar runner_job: the node's ``core-<n>`` job; the container lives as
        long as it runs.
    """

    def __init__(self, node: Agent, container_id: int, arguments: dict[str, Any]) -> None:
        hostname = arguments.get("hostname") or "corex"
        super().__init__(node.clock, hostname, runner=node.runner)
        self.node = node
        self.container_id = container_id
        self.arguments = arguments
        self.root = f"/mnt/container-{container_id}"
        # Results of jobs in a container reach whoever listens to the node.
        self.listeners = node.listeners
        self.start_listeners = node.start_listeners
        # ... and so does their streamed output (on the node's Redis, under the job's id).
        self.streams = node.streams
        self.output_listeners = node.output_listeners
        self.node_key = node.node_key
        self.boot_time = int(node.clock.seconds())
        self._cpus = node.info_cpu()
        self._mem = node.info_mem()
        self._nics = self._container_nics()
        self.corex = self.spawn(
            "coreX",
            f"/coreX -core-id {container_id} -redis-socket /redis.socket "
            f"-reply-to corex:results -hostname {hostname}",
            ppid=0,
            pid=1,
        )
        self.runner_job = Job(node, f"core-{container_id}", "", {})
        self.runner_job.process = node.spawn("coreX", f"coreX -core-id {container_id}", job=self.runner_job)
        self.runner_job.done.addCallback(self._stopped)
        for path in ("/bin", "/etc", "/tmp", "/var/log", "/root"):
            self.files.mkdir(path)
        self.files.put("/etc/hostname", (hostname + "\n").encode())
        for target in (arguments.get("mount") or {}).values():
            self.files.mkdir(target)

    def _container_nics(self) -> list[dict[str, Any]]:
        nics = [{"mtu": 65536, "name": "lo", "hardwareaddr": "", "flags": ["up", "loopback"],
                 "addrs": [{"addr": "127.0.0.1/8"}], "speed": 0}]
        if self.arguments.get("host_network"):
            return self.node.info_nic()
        for index, nic in enumerate(self.arguments.get("nics") or []):
            cidr = (nic.get("config") or {}).get("cidr") or ""
            if nic.get("type") == "default" and not cidr:
                cidr = f"172.18.{self.container_id // 250}.{self.container_id % 250 + 2}/16"
            nics.append({
                "mtu": 1500,
                "name": f"eth{index}",
                "hardwareaddr": nic.get("hwaddr") or f"02:00:00:00:{self.container_id % 256:02x}:{index:02x}",
                "flags": ["up", "broadcast", "multicast"],
                "addrs": [{"addr": cidr}] if cidr else [],
                "speed": 0,
            })
        return nics

    @property
    def tags(self) -> list[str]:
        return list(self.arguments.get("tags") or [])

    def info_disk(self) -> list[dict[str, Any]]:
        mounts = super().info_disk()
        for source, target in sorted((self.arguments.get("mount") or {}).items()):
            mounts.append({"device": source, "mountpoint": target, "fstype": "btrfs", "opts": "rw"})
        return mounts

    def corex_entry(self) -> dict[str, Any]:
        """The ``corex.list`` value of this container."""
        proc = self.runner_job.process
        return {
            "cpu": 0.3,
            "rss": proc.rss if proc else 0,
            "vms": proc.vms if proc else 0,
            "swap": 0,
            "debug": str(proc.pid if proc else 0),
            "container": {
                "arguments": copy.deepcopy(self.arguments),
                "root": self.root,
                "pid": proc.pid if proc else 0,
            },
        }

    def terminate(self) -> None:
        """Stop the container and everything in it."""
        self.runner_job.finish("KILLED")

    def _stopped(self, result: dict[str, Any]) -> dict[str, Any]:
        for job in list(self.jobs.values()):
            job.finish("KILLED")
        self.processes.clear()
        return result
