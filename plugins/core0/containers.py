"""
Containers (``IContainers``) and what runs inside them: facts, jobs,
processes and files (``IContainerInfo``, ``IContainerJobs``,
``IContainerProcesses``, ``IContainerFiles``).

A container is a corex container tagged with its name; its list view,
status and flist come from ``corex.list``.  What only the creator knows
(init processes, the create body of a halted container so it can be
started again) is kept in memory, in ``container_records``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.access import deferred
from plugins.core0.client import NodeClient
from plugins.core0.nodes import NodesFamilies, Runner, find_process, kill_process
from plugins.core0.protocol import ERROR, SUCCESS, CommandFailed, Result, check
from rpoold.errors import BackendError, BadRequest, Conflict, NotFound, RpoolError
from rpoold.interfaces import IFileReader

log = Logger()

#: Permission bits of uploaded files (0644).
FILE_PERM = 420


@implementer(IFileReader)
class ContainerFileReader:
    """A file open for reading in a container, read block by block."""

    def __init__(self, access: ContainerFamilies, nodeid: str, name: str, fd: str) -> None:
        self.access = access
        self.nodeid = nodeid
        self.name = name
        self.fd = fd
        self.closed = False

    def read_block(self) -> Deferred[bytes]:
        d = ensureDeferred(self.access.container_call(self.nodeid, self.name, "filesystem.read", fd=self.fd))
        return d.addCallback(lambda data: base64.b64decode(data or ""))

    def close(self) -> Deferred[None]:
        if self.closed:
            return succeed(None)
        self.closed = True
        d = ensureDeferred(self.access.container_call(self.nodeid, self.name, "filesystem.close", fd=self.fd))

        def failed(failure: Any) -> None:
            log.warn("closing {fd} in container {name} failed: {why}", fd=self.fd, name=self.name,
                     why=failure.getErrorMessage())

        return d.addCallbacks(lambda _: None, failed)


class ContainerFamilies(NodesFamilies):
    """Containers and everything inside them."""

    # Lookups ------------------------------------------------------------------------------

    def container_runner(self, nodeid: str, name: str) -> Runner:
        async def run(command: str, arguments: dict[str, Any]) -> Result:
            result: Result = await self.in_container(nodeid, name, command, arguments)
            return result

        return run

    # Containers ------------------------------------------------------------------------------

    async def _start(self, client: NodeClient, record: dict[str, Any]) -> None:
        mounts = shapes.container_mounts(record["filesystems"])
        try:
            container = await client.call("corex.create", shapes.container_arguments(record, mounts))
        except CommandFailed as e:
            if e.state != ERROR:
                raise
            raise BadRequest(f"container '{record['name']}' cannot start: {e.detail}") from None
        client.forget_containers()
        for process in record.get("initProcesses") or []:
            await client.dispatch(int(container), "core.system", shapes.system_arguments(process), wait=False)

    @deferred
    async def list_containers(self, nodeid: str) -> list[dict[str, Any]]:
        client = await self.client(nodeid)
        listing = await client.list_containers()
        return [shapes.container_list_item(name, self.container_view(nodeid, listing, name))
                for name in self.container_names(nodeid, listing)]

    @deferred
    async def create_container(self, nodeid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        name = body["name"]
        for other, known in self.container_records:
            if known == name:
                raise Conflict(f"a container named '{name}' exists (node '{other}')")
        if name in self.container_names(nodeid, await client.list_containers()):
            raise Conflict(f"a container named '{name}' exists (node '{nodeid}')")
        await self.check_filesystems(client, nodeid, body["filesystems"])
        await self._start(client, body)
        self.container_records[(nodeid, name)] = body

    async def _running(self, nodeid: str, name: str) -> tuple[NodeClient, int | None]:
        """
        The node's client and the id of the container running as ``name``
        (``None`` when it is halted).

        :raises NotFound: the container is neither running nor recorded.
        """
        client = await self.client(nodeid)
        listing = await client.list_containers()
        self.container_view(nodeid, listing, name)
        running = shapes.container_tagged(listing, name)
        return client, None if running is None else running[0]

    async def _stop(self, nodeid: str, name: str) -> None:
        # Listing the containers has recorded this one, so it stays listed (halted).
        client, running = await self._running(nodeid, name)
        if running is not None:
            await client.call("corex.terminate", {"container": running})
            client.forget_containers()

    @deferred
    async def delete_container(self, nodeid: str, containername: str) -> None:
        await self._stop(nodeid, containername)
        self.container_records.pop((nodeid, containername), None)

    @deferred
    async def get_container(self, nodeid: str, containername: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        return self.container_view(nodeid, await client.list_containers(), containername)

    @deferred
    async def start_container(self, nodeid: str, containername: str) -> None:
        client, running = await self._running(nodeid, containername)
        if running is None:
            await self._start(client, self.container_records[(nodeid, containername)])

    @deferred
    async def stop_container(self, nodeid: str, containername: str) -> None:
        await self._stop(nodeid, containername)

    # Container facts ----------------------------------------------------------------------

    @deferred
    async def ping_container(self, nodeid: str, containername: str) -> bool:
        result: Result = await self.in_container(nodeid, containername, "core.ping")
        return result.state == SUCCESS

    @deferred
    async def get_container_state(self, nodeid: str, containername: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.container_call(nodeid, containername, "core.state")
        return result

    @deferred
    async def get_container_cpu_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return list(await self.container_call(nodeid, containername, "info.cpu") or [])

    @deferred
    async def get_container_disk_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        mounts = await self.container_call(nodeid, containername, "info.disk")
        return shapes.container_disk_infos(mounts or [])

    @deferred
    async def get_container_mem_info(self, nodeid: str, containername: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.container_call(nodeid, containername, "info.mem")
        return result

    @deferred
    async def get_container_nic_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return shapes.nic_infos(await self.container_call(nodeid, containername, "info.nic") or [])

    @deferred
    async def get_container_os_info(self, nodeid: str, containername: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.container_call(nodeid, containername, "info.os")
        return result

    # Container jobs -------------------------------------------------------------------------

    @deferred
    async def list_container_jobs(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return await self.jobs_of(self.container_runner(nodeid, containername), nodeid)

    @deferred
    async def kill_all_container_jobs(self, nodeid: str, containername: str) -> None:
        await self.kill_all_jobs(self.container_runner(nodeid, containername), nodeid)

    @deferred
    async def get_container_job(self, nodeid: str, containername: str, jobid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        return await self.job_of(self.container_runner(nodeid, containername), client, jobid)

    @deferred
    async def send_signal_to_job(self, nodeid: str, containername: str, jobid: str,
                                 body: dict[str, Any]) -> None:
        await self.signal_job(self.container_runner(nodeid, containername), nodeid, jobid, body["signal"])

    @deferred
    async def kill_container_job(self, nodeid: str, containername: str, jobid: str) -> None:
        await self.signal_job(self.container_runner(nodeid, containername), nodeid, jobid, 9)

    # Container processes ----------------------------------------------------------------------

    @deferred
    async def list_container_processes(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return list(await self.container_call(nodeid, containername, "process.list") or [])

    @deferred
    async def start_container_process(self, nodeid: str, containername: str,
                                      body: dict[str, Any]) -> str:
        job: str = await self.in_container(nodeid, containername, "core.system",
                                           shapes.system_arguments(body), wait=False)
        # A process that cannot be spawned has its result at once.
        _, found = await (await self.client(nodeid)).peek(job)
        if found is not None and found.state != SUCCESS and not found.raw.get("streams"):
            raise BackendError(f"process could not be started: {found.data}")
        return job

    @deferred
    async def get_container_process(self, nodeid: str, containername: str,
                                    processid: int) -> dict[str, Any]:
        return await find_process(self.container_runner(nodeid, containername), nodeid, processid)

    @deferred
    async def kill_container_process(self, nodeid: str, containername: str, processid: int) -> None:
        await kill_process(self.container_runner(nodeid, containername), nodeid, processid,
                           self.reactor)

    @deferred
    async def send_signal_to_process(self, nodeid: str, containername: str, processid: int,
                                     body: dict[str, Any]) -> None:
        run = self.container_runner(nodeid, containername)
        await find_process(run, nodeid, processid)
        result = await run("process.kill", {"pid": processid, "signal": body["signal"]})
        if result.state != SUCCESS:
            raise BadRequest(f"cannot signal process {processid}: {result.message()}")

    # Container files ----------------------------------------------------------------------------

    async def _exists(self, nodeid: str, containername: str, path: str) -> None:
        if not await self.container_call(nodeid, containername, "filesystem.exists", path=path):
            raise NotFound(f"'{path}' does not exist in container '{containername}'")

    @deferred
    async def file_upload(self, nodeid: str, containername: str, path: str,
                          blocks: Iterable[bytes]) -> None:
        opened: Result = await self.in_container(nodeid, containername, "filesystem.open",
                                                 {"file": path, "mode": "w", "perm": FILE_PERM})
        if opened.state != SUCCESS:
            raise BadRequest(f"cannot write '{path}': {opened.message()}")
        fd = opened.value()
        try:
            for block in blocks:
                await self.container_call(nodeid, containername, "filesystem.write",
                                          fd=fd, block=base64.b64encode(block).decode("ascii"))
        finally:
            try:
                await self.container_call(nodeid, containername, "filesystem.close", fd=fd)
            except RpoolError as e:
                log.warn("closing {path} in container {name} failed: {why}", path=path,
                         name=containername, why=e.message)

    @deferred
    async def file_download(self, nodeid: str, containername: str, path: str) -> ContainerFileReader:
        await self._exists(nodeid, containername, path)
        opened: Result = await self.in_container(nodeid, containername, "filesystem.open",
                                                 {"file": path, "mode": "r", "perm": FILE_PERM})
        if opened.state != SUCCESS:
            raise BadRequest(f"cannot read '{path}': {opened.message()}")
        return ContainerFileReader(self, nodeid, containername, check(opened, nodeid).value())

    @deferred
    async def file_delete(self, nodeid: str, containername: str, body: dict[str, Any]) -> None:
        await self._exists(nodeid, containername, body["path"])
        await self.container_call(nodeid, containername, "filesystem.remove", path=body["path"])
