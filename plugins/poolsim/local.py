"""
The simulated pool as the command kit sees a pool: its nodes as an
``INodeRegistry``, and each node's core0 agent as an ``ICommandClient``
that runs commands on the model in process and answers as a node's Redis
would (results of finished jobs, container jobs' among them, are read
back; a rebooting node takes commands once it is back).  The mock backend
runs the core0 command kit over these.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from plugins.core0.protocol import Result, check, inner_command
from plugins.poolsim.jobs import Job
from plugins.poolsim.node import Node
from plugins.poolsim.pool import Pool
from rpoold.errors import NotFound
from rpoold.nodes import ICommandClient, INodeRegistry, NodeAddress

#: Read-only built-ins whose value a ``call`` without arguments takes
#: straight from the model: their job would end before it could be seen.
READ_ONLY = frozenset({
    "core.ping", "core.state", "info.cpu", "info.disk", "info.mem", "info.nic", "info.os",
    "disk.list", "corex.list", "process.list", "bridge.list", "btrfs.list", "kvm.list",
})


def _wire(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as they come out of the wire: a copy, JSON types only."""
    copied: dict[str, Any] = json.loads(json.dumps(arguments))
    return copied


def _when_done(job: Job) -> Deferred[dict[str, Any]]:
    """The result of ``job``: at once if it has ended, else when it ends."""
    if job.result is not None:
        return succeed(job.result)
    d: Deferred[dict[str, Any]] = Deferred()

    def ended(result: Any) -> Any:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
        return result

    job.done.addBoth(ended)
    return d


@implementer(ICommandClient)
class LocalNodeClient:
    """
    :param model: the simulated node the commands run on.
    :param clock: an ``IReactorTime`` (how long a ping waits for a
        rebooting node).
    """

    def __init__(self, model: Node, clock: Any) -> None:
        self.model = model
        self.node = model.node_id
        self.clock = clock

    def _result(self, raw: dict[str, Any]) -> Result:
        return Result.from_object(raw, self.node)

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        if not self.model.running:
            return self.model.when_running().addCallback(lambda _: self.execute(command, arguments))
        job = self.model.execute(command, _wire(arguments or {}))
        return _when_done(job).addCallback(self._result)

    def call(self, command: str, arguments: dict[str, Any] | None = None, *,
             timeout: float | None = None) -> Deferred[Any]:
        """
        ``execute``, checked and decoded (``timeout`` is not needed in
        process).  A ``READ_ONLY`` built-in without arguments on a running
        node is answered from the model at once, as its job would be, with
        the model's own value (the kit only reads what a node answers).
        """
        if not arguments and command in READ_ONLY and self.model.running:
            return succeed(self.model.commands[command]())
        return self.execute(command, arguments).addCallback(lambda result: check(result, self.node).value())

    def submit(self, command: str, arguments: dict[str, Any] | None = None) -> Deferred[str]:
        job_id = str(uuid.uuid4())
        wired = _wire(arguments or {})

        def run(_: Any = None) -> None:
            self.model.execute(command, wired, job_id=job_id)

        if self.model.running:
            run()
        else:
            self.model.when_running().addCallback(run)
        return succeed(job_id)

    def dispatch(self, container: int, command: str, arguments: dict[str, Any] | None = None, *,
                 wait: bool = True, stream: bool = False) -> Deferred[Any]:
        inner = inner_command(command, arguments or {}, stream)
        d = self.call("corex.dispatch", {"container": container, "command": inner})
        return d.addCallback(self._inner, container, wait)

    def _inner(self, job_id: str, container: int, wait: bool) -> Any:
        if not wait:
            return job_id
        agent = self.model.containers.get(int(container))
        job = agent.jobs.get(job_id) if agent is not None else None
        if job is not None:
            return _when_done(job).addCallback(self._result)
        found = self._finished(job_id)
        if found is None:
            return fail(NotFound(f"job '{job_id}' vanished in container {container}"))
        return self._result(found)

    def _finished(self, job_id: str) -> dict[str, Any] | None:
        """The result of a finished job of the node or of one of its containers."""
        found = self.model.result_of(job_id)
        for agent in list(self.model.containers.values()):
            if found is not None:
                break
            found = agent.result_of(job_id)
        return found

    def peek(self, job_id: str) -> Deferred[tuple[bool, Any]]:
        found = self._finished(job_id)
        running = job_id in self.model.jobs or any(
            job_id in agent.jobs for agent in self.model.containers.values())
        return succeed((found is not None or running,
                        self._result(found) if found is not None else None))

    def read_stream(self, job_id: str, start: int) -> Deferred[list[dict[str, Any]]]:
        """What the node streamed of a job's output (its own or a container's), from ``start`` on."""
        return succeed([dict(entry) for entry in self.model.stream_of(job_id)[start:]])

    def ping(self, timeout: float) -> Deferred[bool]:
        """
        ``True`` at once when the node runs; a rebooting node answers once
        it is back, if that is within ``timeout`` (``inf``: however long).
        """
        if self.model.running:
            return succeed(True)
        if timeout <= 0:
            return succeed(False)
        back = self.model.when_running()
        if timeout != float("inf"):
            back.addTimeout(timeout, self.clock)
        return back.addCallbacks(lambda _: True, lambda _: False)

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(INodeRegistry)
class SimulatedRegistry:
    """The nodes of a simulated pool; forgetting one removes it from the pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._addresses: dict[str, NodeAddress] = {}

    def _address(self, node: Node) -> NodeAddress:
        address = self._addresses.get(node.node_id)
        if address is None:
            address = self._addresses[node.node_id] = NodeAddress(
                id=node.node_id, host=node.address, hostname=node.hostname)
        return address

    def lookup(self, nodeid: str) -> NodeAddress:
        """
        :raises NotFound: no such node.
        """
        node = self.pool.node(nodeid)
        if node is None:
            raise NotFound(f"node '{nodeid}' does not exist")
        return self._address(node)

    def list_nodes(self) -> Deferred[list[NodeAddress]]:
        return succeed([self._address(n) for n in self.pool.nodes.values()])

    def get_node(self, nodeid: str) -> Deferred[NodeAddress]:
        try:
            return succeed(self.lookup(nodeid))
        except NotFound as e:
            return fail(e)

    def forget_node(self, nodeid: str) -> Deferred[None]:
        """Its containers stop and it leaves the pool."""
        node = self.pool.node(nodeid)
        if node is None:
            return fail(NotFound(f"node '{nodeid}' does not exist"))
        for container in list(node.containers.values()):
            container.terminate()
        del self.pool.nodes[nodeid]
        return succeed(None)

    def connect(self, address: NodeAddress) -> LocalNodeClient:
        """The command client of a node of the pool."""
        return LocalNodeClient(self.pool.nodes[address.id], self.pool.clock)
