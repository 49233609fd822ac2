"""
The core0 simulator's node list (``plugins.core0sim.nodelist``) turned
into ``node.g8os`` services, as the bootstrap service of a real AYS would
register discovered nodes.  The file is watched: it may appear after
start-up, and a change re-seeds.  Containers the nodes already run with
the seed's tag get a matching ``container`` service.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.ayssim.blueprints import BlueprintError
from plugins.ayssim.handlers.containers import tagged
from plugins.ayssim.node_commands import CommandFailed
from plugins.ayssim.simulator import Simulator
from plugins.ayssim.templates import SchemaError
from plugins.core0 import shapes
from plugins.core0sim.nodelist import NodeListError, read
from plugins.poolsim.pool import SEED_CONTAINER
from rpoold import conventions

log = Logger()


def seed_container_arguments(node: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A container service's data for a running corex container."""
    nics = [{"type": nic.get("type") or "default", "id": nic.get("id") or "",
             "config": conventions.nic_config(nic.get("config"))}
            for nic in arguments.get("nics") or []]
    return {
        "node": node, "status": "running", "flist": arguments.get("root") or "",
        "hostname": arguments.get("hostname") or "", "hostNetworking": bool(arguments.get("host_network")),
        "nics": nics, "ports": shapes.ports_from_map(arguments.get("port")),
        "storage": arguments.get("storage") or "",
    }


class NodeListSeeder(Service):
    """
    Keeps the repository's node services in line with the node list.

    :param interval: seconds between checks of the file (and retries of
        nodes not reachable yet).
    """

    def __init__(self, sim: Simulator, path: str, repository: str, interval: float = 0.5) -> None:
        self.sim = sim
        self.path = path
        self.repository = repository
        self.interval = interval
        self._seen: tuple[float, int] | None = None
        self._pending: set[str] = set()
        self._busy: set[str] = set()
        self._complaints: set[str] = set()
        self._loop = LoopingCall(self.check)
        self._loop.clock = sim.clock
        sim.reset_hooks.append(self.forget)

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=True)

    def stopService(self) -> Any:
        if self._loop.running:
            self._loop.stop()
        return super().stopService()

    def forget(self) -> None:
        """Seed again on the next check (after a reset)."""
        self._seen = None
        self.check()

    def check(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError:
            self._seen = None
            return
        signature = (stat.st_mtime, stat.st_size)
        if signature != self._seen:
            self._seen = signature
            self._seed()
        for name in sorted(self._pending - self._busy):
            self._busy.add(name)
            ensureDeferred(self._adopt(name)).addBoth(self._done, name)

    def _done(self, result: Any, name: str) -> None:
        self._busy.discard(name)
        if isinstance(result, Failure):
            log.failure("registering the containers of node {node} failed", result, node=name)

    def _seed(self) -> None:
        try:
            entries = read(self.path)
        except NodeListError as e:
            log.error("node list not used: {error}", error=str(e))
            return
        repository = self.sim.repositories.get(self.repository)
        if repository is None:
            repository = self.sim.create_repository(self.repository)
        for entry in entries:
            try:
                self.sim.seed_node(repository, entry.id, entry.host, entry.port, entry.hostname,
                                   "running", entry.password, entry.db)
            except (SchemaError, BlueprintError) as e:
                log.error("node {node} of the node list not seeded: {error}", node=entry.id, error=str(e))
                continue
            self._pending.add(entry.id)
        log.info("seeded {count} node(s) from {path}", count=len(entries), path=self.path)

    async def _adopt(self, name: str) -> None:
        """Create services for the seed containers the node runs."""
        repository = self.sim.repositories.get(self.repository)
        node = repository.find("node", name) if repository is not None else None
        if repository is None or node is None:
            self._pending.discard(name)
            return
        try:
            listing = await self.sim.nodes.execute(self.sim.node_address(node), "corex.list", {})
        except CommandFailed as e:
            if name not in self._complaints:
                self._complaints.add(name)
                log.info("node {node} not reachable yet ({error}); will retry", node=name, error=str(e))
            return
        self._complaints.discard(name)
        self._pending.discard(name)
        for cid in tagged(listing, SEED_CONTAINER):
            if repository.find("container", SEED_CONTAINER) is not None:
                break
            arguments = listing[str(cid)]["container"]["arguments"]
            try:
                service = await self.sim.create_service(
                    repository, "container", SEED_CONTAINER, seed_container_arguments(name, arguments))
            except BlueprintError as e:
                log.error("seed container of node {node} not registered: {error}", node=name, error=str(e))
                continue
            for action in ("install", "start"):
                service.actions[action] = "ok"
            log.info("registered container {name} of node {node}", name=SEED_CONTAINER, node=name)
