"""
Nodes, their facts, jobs and processes (``INodes``, ``INodeInfo``,
``INodeJobs``, ``INodeProcesses``), and the job and process logic that
containers share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import deferLater

from plugins.core0 import shapes
from plugins.core0.access import NodeAccess, deferred, gather
from plugins.core0.client import NodeClient
from plugins.core0.protocol import KILLED, SUCCESS, Result, check
from rpoold.errors import BackendError, BadRequest, NotFound, RpoolError
from rpoold.nodes import NodeAddress

#: Runs one command where the jobs or processes live (a node, a container).
Runner = Callable[[str, dict[str, Any]], Awaitable[Result]]

KILL_ROUNDS = 4
KILL_SETTLE_SECONDS = 0.05


class NodesFamilies(NodeAccess):
    """Nodes, node facts, node jobs and node processes."""

    # Nodes ---------------------------------------------------------------------------------

    async def _node_view(self, address: NodeAddress) -> dict[str, Any]:
        client = self.client_of(address)
        alive, (hostname, ip) = await gather(client.ping(self.ping_timeout),
                                              ensureDeferred(self.node_facts(client)))
        return {"id": address.id, "hostname": hostname, "ipaddress": ip,
                "status": "running" if alive else "halted"}

    @deferred
    async def list_nodes(self) -> list[dict[str, Any]]:
        nodes = await self.registry.list_nodes()
        known = {n.id for n in nodes}
        for gone in [nodeid for nodeid in self.clients if nodeid not in known]:
            self.drop_client(gone)
        views = await DeferredList([ensureDeferred(self._node_view(n)) for n in nodes],
                                   consumeErrors=True)
        result = []
        for address, (ok, view) in zip(nodes, views, strict=True):
            result.append(view if ok else {"id": address.id, "hostname": address.hostname,
                                           "ipaddress": address.host, "status": "halted"})
        return result

    @deferred
    async def get_node(self, nodeid: str) -> dict[str, Any]:
        return await self._node_view((await self.client(nodeid)).address)

    @deferred
    async def delete_node(self, nodeid: str) -> None:
        await self.registry.forget_node(nodeid)
        self.drop_client(nodeid)
        self.forget_node_records(nodeid)

    @deferred
    async def reboot_node(self, nodeid: str) -> None:
        client = await self.client(nodeid)
        try:
            # Listed first, so that the containers it stops stay remembered.
            await client.list_containers()
        except RpoolError:
            pass  # a node that does not answer may still take the reboot
        await client.submit("core.reboot")
        client.forget_containers()

    # Node facts -----------------------------------------------------------------------------

    @deferred
    async def ping_node(self, nodeid: str) -> bool:
        client = await self.client(nodeid)
        return await client.ping(self.timeout)

    def get_node_state(self, nodeid: str) -> Deferred[dict[str, Any]]:
        return self.call(nodeid, "core.state")

    def get_cpu_info(self, nodeid: str) -> Deferred[list[dict[str, Any]]]:
        return self.call(nodeid, "info.cpu")

    @deferred
    async def get_disk_info(self, nodeid: str) -> list[dict[str, Any]]:
        client = await self.client(nodeid)
        disks, mounts = await gather(client.call("disk.list"), client.call("info.disk"))
        return shapes.disk_infos(disks or {}, mounts or [])

    def get_mem_info(self, nodeid: str) -> Deferred[dict[str, Any]]:
        # The hot path of the benchmark: no coroutine between the app and the client.
        return self.call(nodeid, "info.mem")

    def get_nic_info(self, nodeid: str) -> Deferred[list[dict[str, Any]]]:
        return self.call(nodeid, "info.nic").addCallback(lambda nics: shapes.nic_infos(nics or []))

    def get_node_os_info(self, nodeid: str) -> Deferred[dict[str, Any]]:
        return self.call(nodeid, "info.os")

    # Jobs, node and container alike ----------------------------------------------------------

    async def jobs_of(self, run: Runner, where: str) -> list[dict[str, Any]]:
        """The running jobs, without the ``job.list`` job that asked."""
        listed = check(await run("job.list", {}), where)
        return [shapes.job_list_item(e) for e in listed.value() or [] if e["cmd"]["id"] != listed.id]

    async def job_of(self, run: Runner, client: NodeClient, jobid: str) -> dict[str, Any]:
        """
        A running job from ``job.list``; else its result, read without
        waiting from the node's Redis (where the results of container
        jobs are kept too); else ``NotFound`` at once.
        """
        listed = await run("job.list", {"id": jobid})
        if listed.state == SUCCESS and listed.value():
            return shapes.running_job(listed.value()[0])
        _, found = await client.peek(jobid)
        if found is None:
            raise NotFound(f"job '{jobid}' does not exist")
        return shapes.finished_job(found.raw)

    async def signal_job(self, run: Runner, where: str, jobid: str, signal: int) -> None:
        if not check(await run("job.kill", {"id": jobid, "signal": signal}), where).value():
            raise NotFound(f"no running job '{jobid}'")

    async def kill_all_jobs(self, run: Runner, where: str) -> None:
        check(await run("job.killall", {}), where, frozenset({KILLED, SUCCESS}))

    def node_runner(self, client: NodeClient) -> Runner:
        return client.execute

    @deferred
    async def list_node_jobs(self, nodeid: str) -> list[dict[str, Any]]:
        return await self.jobs_of(self.node_runner(await self.client(nodeid)), nodeid)

    @deferred
    async def kill_all_node_jobs(self, nodeid: str) -> None:
        client = await self.client(nodeid)
        await client.list_containers()  # remembers the containers this stops
        await self.kill_all_jobs(self.node_runner(client), nodeid)
        # Containers are jobs of the node too: they are gone now.
        client.forget_containers()

    @deferred
    async def get_node_job(self, nodeid: str, jobid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        return await self.job_of(self.node_runner(client), client, jobid)

    @deferred
    async def kill_node_job(self, nodeid: str, jobid: str) -> None:
        client = await self.client(nodeid)
        if jobid.startswith("core-"):
            await client.list_containers()  # remembers the container this stops
        await self.signal_job(self.node_runner(client), nodeid, jobid, 9)
        if jobid.startswith("core-"):
            client.forget_containers()

    # Processes ------------------------------------------------------------------------------

    @deferred
    async def list_node_processes(self, nodeid: str) -> list[dict[str, Any]]:
        return list(await self.call(nodeid, "process.list") or [])

    @deferred
    async def get_node_process(self, nodeid: str, processid: int) -> dict[str, Any]:
        return await find_process(self.node_runner(await self.client(nodeid)), nodeid, processid)

    @deferred
    async def kill_node_process(self, nodeid: str, processid: int) -> None:
        await kill_process(self.node_runner(await self.client(nodeid)), nodeid, processid, self.reactor)


async def find_process(run: Runner, where: str, pid: int) -> dict[str, Any]:
    """
    :param run: runs a command where the process lives.
    :returns: the process's ``process.list`` entry.
    :raises NotFound: no process ``pid`` there.
    """
    found = check(await run("process.list", {"pid": pid}), where).value() if pid else []
    if not found:
        raise NotFound(f"process {pid} does not exist")
    result: dict[str, Any] = found[0]
    return result


async def kill_process(run: Runner, where: str, pid: int, reactor: Any) -> None:
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
                await deferLater(reactor, pause)
            if not check(await run("process.list", {"pid": pid}), where).value():
                return
    raise BackendError(f"process {pid} is still alive after SIGKILL")

