"""
Jobs and processes, wherever they run (a node, a container): listing,
reading, signalling and killing them with ``job.*`` and ``process.*``
commands, through a ``Runner``.  ``NodeJobs`` serves a node's own
(``INodeJobs``, ``INodeProcesses``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.task import deferLater
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit.containers import ContainerIndex
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.job_output import JobOutput
from plugins.core0.protocol import KILLED, SUCCESS, Result, check
from rpoold.contract.wire import JobListItem, JobResult, Process
from rpoold.errors import BackendError, BadRequest, NotFound
from rpoold.interfaces import IJobOutput, INodeJobs, INodeProcesses
from rpoold.nodes import ICommandClient

#: Runs one command where the jobs or processes live (a node, a container)
#: and answers its result, unchecked.
Runner = Callable[[str, dict[str, Any]], Awaitable[Result]]

KILL_ROUNDS = 4
KILL_SETTLE_SECONDS = 0.05


def node_runner(client: ICommandClient) -> Runner:
    """A runner of commands on the node itself."""
    run: Runner = client.execute
    return run


async def jobs_of(run: Runner, where: str) -> list[JobListItem]:
    """The running jobs, without the ``job.list`` job that asked."""
    listed = check(await run("job.list", {}), where)
    return [shapes.job_list_item(e) for e in listed.value() or [] if e["cmd"]["id"] != listed.id]


async def job_of(run: Runner, client: ICommandClient, jobid: str) -> JobResult:
    """
    A running job from ``job.list``; else its result, read without
    waiting from the node (where the results of container jobs are kept
    too); else ``NotFound`` at once.
    """
    listed = await run("job.list", {"id": jobid})
    if listed.state == SUCCESS and listed.value():
        return shapes.running_job(listed.value()[0])
    _, found = await client.peek(jobid)
    if found is None:
        raise NotFound(f"job '{jobid}' does not exist")
    return shapes.finished_job(found.raw)


async def signal_job(run: Runner, where: str, jobid: str, signal: int) -> None:
    """:raises NotFound: no running job ``jobid``."""
    if not check(await run("job.kill", {"id": jobid, "signal": signal}), where).value():
        raise NotFound(f"no running job '{jobid}'")


async def kill_all_jobs(run: Runner, where: str) -> None:
    check(await run("job.killall", {}), where, frozenset({KILLED, SUCCESS}))


async def find_process(run: Runner, where: str, pid: int) -> Process:
    """
    :param run: runs a command where the process lives.
    :returns: the process's ``process.list`` entry.
    :raises NotFound: no process ``pid`` there.
    """
    found = check(await run("process.list", {"pid": pid}), where).value() if pid else []
    if not found:
        raise NotFound(f"process {pid} does not exist")
    result: Process = found[0]
    return result


async def kill_process(run: Runner, where: str, pid: int, clock: Any) -> None:
    """
    SIGTERM up to three times, then SIGKILL; each followed by a liveness
    check (and a short pause and a second check while it is alive).

    :raises NotFound: no process ``pid``.
    :raises BadRequest: the process may not be killed.
    :raises BackendError: it is still alive after SIGKILL.
    """
    await find_process(run, where, pid)
    for attempt in range(KILL_ROUNDS):
        signal = 9 if attempt == KILL_ROUNDS - 1 else 15
        killed = await run("process.kill", {"pid": pid, "signal": signal})
        if killed.state != SUCCESS and killed.message() == "invalid PID":
            raise BadRequest(f"process {pid} may not be killed")
        for pause in (0.0, KILL_SETTLE_SECONDS):
            if pause:
                await deferLater(clock, pause)
            if not check(await run("process.list", {"pid": pid}), where).value():
                return
    raise BackendError(f"process {pid} is still alive after SIGKILL")


@implementer(INodeJobs, INodeProcesses)
class NodeJobs:
    """
    ``INodeJobs`` and ``INodeProcesses`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param index: the containers by name (containers are jobs of their
        node: stopping jobs may stop them).
    :param clock: an ``IReactorTime`` (pauses between kill rounds).
    """

    def __init__(self, nodes: NodeDirectory[Any], index: ContainerIndex, clock: Any) -> None:
        self.nodes = nodes
        self.index = index
        self.clock = clock

    async def list_node_jobs(self, nodeid: str) -> list[JobListItem]:
        return await jobs_of(node_runner(await self.nodes.client(nodeid)), nodeid)

    async def kill_all_node_jobs(self, nodeid: str) -> None:
        client = await self.nodes.client(nodeid)
        await self.index.listing(client)  # records the containers this stops
        await kill_all_jobs(node_runner(client), nodeid)
        self.index.forget(nodeid)

    async def get_node_job(self, nodeid: str, jobid: str) -> JobResult:
        client = await self.nodes.client(nodeid)
        return await job_of(node_runner(client), client, jobid)

    async def kill_node_job(self, nodeid: str, jobid: str) -> None:
        client = await self.nodes.client(nodeid)
        if jobid.startswith("core-"):
            await self.index.listing(client)  # records the container this stops
        await signal_job(node_runner(client), nodeid, jobid, 9)
        if jobid.startswith("core-"):
            self.index.forget(nodeid)

    async def get_node_job_output(self, nodeid: str, jobid: str) -> IJobOutput:
        client = await self.nodes.client(nodeid)
        await job_of(node_runner(client), client, jobid)
        return JobOutput(client, jobid, self.clock)

    async def list_node_processes(self, nodeid: str) -> list[Process]:
        return list(await self.nodes.call(nodeid, "process.list") or [])

    async def get_node_process(self, nodeid: str, processid: int) -> Process:
        return await find_process(node_runner(await self.nodes.client(nodeid)), nodeid, processid)

    async def kill_node_process(self, nodeid: str, processid: int) -> None:
        await kill_process(node_runner(await self.nodes.client(nodeid)), nodeid, processid, self.clock)
