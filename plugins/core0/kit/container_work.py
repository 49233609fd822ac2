"""
What runs inside a container: its facts, jobs and processes
(``IContainerInfo``, ``IContainerJobs``, ``IContainerProcesses``), each a
command dispatched into the running container found by name.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit.containers import ContainerIndex
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.job_output import JobOutput
from plugins.core0.kit.jobs import (
    Runner,
    find_process,
    job_of,
    jobs_of,
    kill_all_jobs,
    kill_process,
    signal_job,
)
from plugins.core0.protocol import SUCCESS, Result
from rpoold.contract.wire import (
    CoreStateResult,
    CoreSystem,
    CPUInfo,
    DiskInfo,
    JobListItem,
    JobResult,
    MemInfo,
    NicInfo,
    OSInfo,
    Process,
    ProcessSignal,
)
from rpoold.errors import BackendError, BadRequest
from rpoold.interfaces import IContainerInfo, IContainerJobs, IContainerProcesses, IJobOutput
from rpoold.nodes import ICommandClient


@implementer(IContainerInfo, IContainerJobs, IContainerProcesses)
class ContainerWork:
    """
    :param nodes: the nodes and their clients.
    :param index: the containers by name.
    :param clock: an ``IReactorTime`` (pauses between kill rounds).
    """

    def __init__(self, nodes: NodeDirectory[Any], index: ContainerIndex, clock: Any) -> None:
        self.nodes = nodes
        self.index = index
        self.clock = clock

    async def _runner(self, nodeid: str, name: str) -> tuple[ICommandClient, Runner]:
        client = await self.nodes.client(nodeid)

        async def run(command: str, arguments: dict[str, Any]) -> Result:
            result: Result = await self.index.run(client, name, command, arguments)
            return result

        return client, run

    async def _call(self, nodeid: str, name: str, command: str) -> Any:
        return await self.index.call(await self.nodes.client(nodeid), name, command)

    # IContainerInfo -------------------------------------------------------------------------

    async def ping_container(self, nodeid: str, containername: str) -> bool:
        result: Result = await self.index.run(await self.nodes.client(nodeid), containername, "core.ping")
        return result.state == SUCCESS

    async def get_container_state(self, nodeid: str, containername: str) -> CoreStateResult:
        result: CoreStateResult = await self._call(nodeid, containername, "core.state")
        return result

    async def get_container_cpu_info(self, nodeid: str, containername: str) -> list[CPUInfo]:
        return list(await self._call(nodeid, containername, "info.cpu") or [])

    async def get_container_disk_info(self, nodeid: str, containername: str) -> list[DiskInfo]:
        return shapes.container_disk_infos(await self._call(nodeid, containername, "info.disk") or [])

    async def get_container_mem_info(self, nodeid: str, containername: str) -> MemInfo:
        result: MemInfo = await self._call(nodeid, containername, "info.mem")
        return result

    async def get_container_nic_info(self, nodeid: str, containername: str) -> list[NicInfo]:
        return shapes.nic_infos(await self._call(nodeid, containername, "info.nic") or [])

    async def get_container_os_info(self, nodeid: str, containername: str) -> OSInfo:
        result: OSInfo = await self._call(nodeid, containername, "info.os")
        return result

    # IContainerJobs --------------------------------------------------------------------------

    async def list_container_jobs(self, nodeid: str, containername: str) -> list[JobListItem]:
        _, run = await self._runner(nodeid, containername)
        return await jobs_of(run, nodeid)

    async def kill_all_container_jobs(self, nodeid: str, containername: str) -> None:
        _, run = await self._runner(nodeid, containername)
        await kill_all_jobs(run, nodeid)

    async def get_container_job(self, nodeid: str, containername: str, jobid: str) -> JobResult:
        client, run = await self._runner(nodeid, containername)
        return await job_of(run, client, jobid)

    async def send_signal_to_job(self, nodeid: str, containername: str, jobid: str,
                                 body: ProcessSignal) -> None:
        _, run = await self._runner(nodeid, containername)
        await signal_job(run, nodeid, jobid, body["signal"])

    async def kill_container_job(self, nodeid: str, containername: str, jobid: str) -> None:
        _, run = await self._runner(nodeid, containername)
        await signal_job(run, nodeid, jobid, 9)

    async def get_container_job_output(self, nodeid: str, containername: str, jobid: str) -> IJobOutput:
        client, run = await self._runner(nodeid, containername)
        await job_of(run, client, jobid)
        return JobOutput(client, jobid, self.clock)

    # IContainerProcesses ----------------------------------------------------------------------

    async def list_container_processes(self, nodeid: str, containername: str) -> list[Process]:
        return list(await self._call(nodeid, containername, "process.list") or [])

    async def start_container_process(self, nodeid: str, containername: str,
                                      body: CoreSystem) -> str:
        client = await self.nodes.client(nodeid)
        job: str = await self.index.run(client, containername, "core.system",
                                        shapes.system_arguments(body), wait=False, stream=True)
        # A process that cannot be spawned has its result at once.
        _, found = await client.peek(job)
        if found is not None and found.state != SUCCESS and not found.raw.get("streams"):
            raise BackendError(f"process could not be started: {found.data}")
        return job

    async def get_container_process(self, nodeid: str, containername: str,
                                    processid: int) -> Process:
        _, run = await self._runner(nodeid, containername)
        return await find_process(run, nodeid, processid)

    async def kill_container_process(self, nodeid: str, containername: str, processid: int) -> None:
        _, run = await self._runner(nodeid, containername)
        await kill_process(run, nodeid, processid, self.clock)

    async def send_signal_to_process(self, nodeid: str, containername: str, processid: int,
                                     body: ProcessSignal) -> None:
        _, run = await self._runner(nodeid, containername)
        await find_process(run, nodeid, processid)
        result = await run("process.kill", {"pid": processid, "signal": body["signal"]})
        if result.state != SUCCESS:
            raise BadRequest(f"cannot signal process {processid}: {result.message()}")
