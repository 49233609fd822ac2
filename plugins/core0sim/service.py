"""
The core0sim service: ``redis-server`` children, the simulated pool and
one ``NodeAgent`` per node; the node list is written once every node is
ready, and everything is stopped with the service.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, Deferred, DeferredSemaphore, ensureDeferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.core0sim import nodelist
from plugins.core0sim.link import Endpoint
from plugins.core0sim.node_agent import NodeAgent
from plugins.core0sim.programs import ExecPrograms
from plugins.core0sim.redis_servers import RedisChild, RedisStartError, free_port
from plugins.poolsim.pool import Pool

log = Logger()

HOST = "127.0.0.1"
#: Attempts to start a redis-server on a free port (another process may
#: take the port between the check and the start).
PORT_ATTEMPTS = 5
#: redis-server children started at the same time.
START_CONCURRENCY = 32


def redis_servers(nodes: int, nodes_per_redis: int) -> int:
    """How many redis-server children ``nodes`` nodes need."""
    return -(-nodes // nodes_per_redis)


class Core0SimService(MultiService):
    """
    :param nodes: how many simulated nodes.
    :param nodes_per_redis: nodes sharing one redis-server (database
        indexes 0..K-1); 1 gives each node its own server, db 0.
    :param config_out: where to write the node list, or ``None``.
    :param run_programs: run ``core.system``/``bash`` as real processes.
    :param reboot_seconds: how long a node takes to reboot.
    :param port_base: first redis port (then consecutive); free ports
        otherwise.
    :param password: ``requirepass`` of every redis-server.
    """

    def __init__(self, nodes: int = 2, nodes_per_redis: int = 1, config_out: str | None = None,
                 run_programs: bool = False, reboot_seconds: float = 1.0,
                 port_base: int | None = None, password: str | None = None,
                 reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.reactor = reactor
        self.node_count = nodes
        self.nodes_per_redis = nodes_per_redis
        self.config_out = config_out
        self.password = password
        self.port_base = port_base
        self.runner = ExecPrograms(reactor) if run_programs else None
        self.reboot_seconds = reboot_seconds
        self.pool: Pool | None = None
        self.agents: list[NodeAgent] = []
        self.redis: list[RedisChild] = []
        self.entries: list[nodelist.NodeEntry] = []
        self.ready: Deferred[None] = Deferred()
        self._directory = ""
        self._starting: Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self._starting = ensureDeferred(self._start())
        self._starting.addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        log.failure("core0sim could not start", failure)
        if not self.ready.called:
            self.ready.errback(failure)
        if self.reactor.running:
            self.reactor.stop()

    async def _start(self) -> None:
        began = time.monotonic()
        self._directory = tempfile.mkdtemp(prefix="core0sim-")
        servers = redis_servers(self.node_count, self.nodes_per_redis)
        ports = await self._start_redis(servers)
        self.pool = Pool(self.reactor, nodes=self.node_count, runner=self.runner,
                         reboot_seconds=self.reboot_seconds)
        for index, node in enumerate(self.pool.nodes.values()):
            endpoint = Endpoint(HOST, ports[index // self.nodes_per_redis],
                                index % self.nodes_per_redis, self.password)
            agent = NodeAgent(node, endpoint, reactor=self.reactor)
            agent.setServiceParent(self)
            self.agents.append(agent)
            self.entries.append(nodelist.NodeEntry(
                id=node.node_id, host=endpoint.host, port=endpoint.port, db=endpoint.db,
                hostname=node.hostname, password=self.password or ""))
        await gatherResults([agent.when_ready() for agent in self.agents])
        if self.config_out:
            nodelist.write(self.config_out, self.entries)
        log.info("core0sim: {nodes} nodes ready on {servers} redis-server(s) in {seconds:.1f} s",
                 nodes=self.node_count, servers=servers, seconds=time.monotonic() - began)
        self.ready.callback(None)

    async def _start_redis(self, count: int) -> list[int]:
        databases = max(16, self.nodes_per_redis)
        limit = DeferredSemaphore(START_CONCURRENCY)
        ports: list[int] = await gatherResults(
            [limit.run(self._start_one, index, databases) for index in range(count)])
        return ports

    async def _start_one(self, index: int, databases: int) -> int:
        attempts = 1 if self.port_base is not None else PORT_ATTEMPTS
        for attempt in range(attempts):
            port = self.port_base + index if self.port_base is not None else free_port()
            child = RedisChild(port, databases, self.password, self._directory)
            self.redis.append(child)
            try:
                await child.start(self.reactor)
                return port
            except RedisStartError:
                self.redis.remove(child)
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    def stopService(self) -> Deferred[None]:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        await super().stopService()
        if self.runner is not None:
            self.runner.stop_all()
        await gatherResults([child.stop(self.reactor) for child in self.redis])
        if self._directory:
            shutil.rmtree(self._directory, ignore_errors=True)
        log.info("core0sim: stopped {count} redis-server(s)", count=len(self.redis))
