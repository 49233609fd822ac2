"""
Support for the AYS simulator's tests: a node-command seam served by an
in-process model pool (fast unit tests of the engine and the handlers),
an in-process HTTP listener on loopback (the ``served`` fixture), and
small helpers to read the simulator's repository and the model nodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.server import Site
from zope.interface import implementer

from plugins.ayssim.api import AysSimulatorApi
from plugins.ayssim.node_commands import CommandFailed, INodeCommands, NodeAddress
from plugins.ayssim.runs import Run
from plugins.ayssim.simulator import Simulator
from plugins.ayssim.store import Repository, Service
from plugins.core0.protocol import SUCCESS, Result
from plugins.poolsim.node import Node
from plugins.poolsim.pool import Pool
from tests.support.polling import eventually, wait_for

REPO = "objstor"
FIRST_PORT = 7000


def result_data(raw: dict[str, Any] | None) -> Any:
    """The value of a core0 result object, as the core0 client decodes it."""
    if raw is None:
        raise CommandFailed("read", "ERROR", "result expired")
    result = Result.parse(json.dumps(raw), "model")
    if result.state != SUCCESS:
        raise CommandFailed(result.command, result.state, result.message())
    return result.value()


@implementer(INodeCommands)
class ModelNodeCommands:
    """
    core0 commands run directly on model nodes, addressed as
    ``127.0.0.1:<FIRST_PORT + node index>``.  A fake of the Redis path,
    for speed; the real path is tested against core0sim and redis-server.
    """

    def __init__(self, pool: Pool, timeout: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout
        self.calls: list[tuple[str, str, dict[str, Any], int]] = []

    def address(self, node: Node) -> NodeAddress:
        return NodeAddress("127.0.0.1", FIRST_PORT + node.index)

    def _node(self, address: NodeAddress) -> Node:
        for node in self.pool.nodes.values():
            if self.address(node) == address and node.running:
                return node
        raise CommandFailed("connect", "UNREACHABLE", f"no node at {address}")

    def _start(self, address: NodeAddress, command: str, arguments: dict[str, Any],
               container: int) -> tuple[Any, Any]:
        node = self._node(address)
        self.calls.append((node.node_id, command, json.loads(json.dumps(arguments)), container))
        if not container:
            return node, node.execute(command, json.loads(json.dumps(arguments)))
        dispatch = node.execute("corex.dispatch", {"container": container, "command": {
            "command": command, "arguments": json.loads(json.dumps(arguments))}})
        assert dispatch.result is not None
        job_id = result_data(dispatch.result)
        agent = node.containers[container]
        return agent, agent.jobs.get(job_id) or job_id

    def execute(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                container: int = 0) -> Deferred[Any]:
        return ensureDeferred(self._execute(address, command, arguments, container))

    def spawn(self, address: NodeAddress, command: str, arguments: dict[str, Any],
              container: int = 0) -> Deferred[str]:
        return ensureDeferred(self._spawn(address, command, arguments, container))

    async def _execute(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                       container: int) -> Any:
        agent, job = self._start(address, command, arguments, container)
        if isinstance(job, str):
            result = agent.result_of(job)
        else:
            if job.result is None:
                await job.done.addTimeout(self.timeout, reactor)
            result = job.result
        return result_data(json.loads(json.dumps(result)))

    async def _spawn(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                     container: int) -> str:
        _, job = self._start(address, command, arguments, container)
        return job if isinstance(job, str) else str(job.id)


def model_sim(nodes: int = 2, **kwargs: Any) -> tuple[Simulator, Pool, ModelNodeCommands]:
    """A simulator over an in-process pool, with one node service per node."""
    pool = Pool(reactor, nodes=nodes, reboot_seconds=0.05)
    commands = ModelNodeCommands(pool)
    kwargs.setdefault("wait_timeout", 5.0)
    kwargs.setdefault("poll_interval", 0.01)
    sim = Simulator(commands, default_repository=REPO, **kwargs)  # type: ignore[arg-type]
    for node in pool.nodes.values():
        address = commands.address(node)
        sim.seed_node(sim.repositories[REPO], node.node_id, address.host, address.port, node.hostname)
    return sim, pool, commands


def repo(sim: Simulator) -> Repository:
    """The simulator's default repository."""
    return sim.repositories[REPO]


def service(sim: Simulator, role: str, name: str) -> Service:
    """The service ``role!name`` of the default repository (fails the test if there is none)."""
    found = repo(sim).find(role, name)
    assert found is not None, f"{role}!{name} missing"
    return found


async def finished(run: Run) -> Run:
    """``run`` once it has ended."""
    await wait_for(lambda: run.state in ("ok", "error"), f"run {run.key}")
    return run


async def change_done(sim: Simulator, count: int = 1) -> dict[str, Any]:
    """The ``count``-th ``processChange`` outcome of ``sim``, once that call has ended."""
    await wait_for(lambda: len(sim.changes) >= count and sim.changes[count - 1]["state"] != "running",
                   f"processChange #{count}")
    return sim.changes[count - 1]


def act(action: str, actor: str, name: str) -> str:
    """A blueprint scheduling ``action`` of ``actor!name`` (forced)."""
    return f"actions: [{{action: {action}, actor: {actor}, service: '{name}', force: true}}]\n"


def tagged(node: Node, tag: str) -> list[Any]:
    """The containers of a model node tagged ``tag``."""
    return [c for c in node.containers.values() if tag in c.tags]


class Served:
    """A simulator's API listening on a loopback port of this process."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.api = AysSimulatorApi(sim)
        site = Site(self.api.resource())
        site.displayTracebacks = False
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    def stop(self) -> Deferred[None]:
        self.api.release_stalled()
        return self.port.stopListening()

    async def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                      headers: dict[str, list[str]] | None = None) -> tuple[int, Any, bytes]:
        """:returns: status, decoded JSON (or None) and the raw body."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await treq.request(method, self.url + path, data=data, headers=headers,
                                      persistent=False)
        content = await response.content()
        try:
            decoded = json.loads(content) if content else None
        except ValueError:
            decoded = None
        return response.code, decoded, content

    async def post_blueprint(self, name: str, content: str, repo: str = REPO) -> tuple[int, Any]:
        """Create, execute, archive a blueprint; returns the execute status and body."""
        code, _, _ = await self.request("POST", f"/ays/repository/{repo}/blueprint",
                                        {"name": name, "content": content})
        assert code == 201, code
        code, body, _ = await self.request("POST", f"/ays/repository/{repo}/blueprint/{name}")
        await self.request("PUT", f"/ays/repository/{repo}/blueprint/{name}/archive")
        return code, body

    async def run(self, repo: str = REPO) -> dict[str, Any]:
        """Create a run and wait for its end; returns the final run object."""
        code, run, _ = await self.request("POST", f"/ays/repository/{repo}/aysrun")
        assert code == 200, (code, run)
        key = run["key"]

        async def state() -> dict[str, Any]:
            code, answer, _ = await self.request("GET", f"/ays/repository/{repo}/aysrun/{key}")
            assert code == 200, (code, answer)
            return dict(answer)

        return await eventually(state, lambda r: r["state"] not in ("new", "running"), 10.0,
                                f"run {key} ending")


@pytest.fixture
def served() -> Iterator[Served]:
    """A simulator over an in-process pool, its API on a loopback port."""
    sim, _, _ = model_sim()
    listening = Served(sim)
    yield listening
    pytest_twisted.blockon(listening.stop())
