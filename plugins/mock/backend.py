"""
The mock backend: every resource family, served from an in-memory pool of
simulated nodes (``plugins.model``).

Node-level facts, jobs, processes, files, bridges, pools, networks and
VM domains live in the model, exactly as the core0 simulator serves them;
what the original kept in AYS (container specs, VM specs, storage clusters,
vdisks) lives in records here.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer

from plugins.model import rest
from plugins.model.container import Container
from plugins.model.jobs import CommandError
from plugins.model.node import Btrfs, Node
from plugins.model.pool import Pool
from rpoold.errors import BackendError, BadRequest, Conflict, NotFound
from rpoold.interfaces import (
    IBridges,
    IContainerFiles,
    IContainerInfo,
    IContainerJobs,
    IContainerProcesses,
    IContainers,
    IFileReader,
    IFilesystems,
    IHealthCheck,
    INodeInfo,
    INodeJobs,
    INodeProcesses,
    INodes,
    IStorageClusters,
    IStoragePools,
    IVdisks,
    IVMInfo,
    IVMs,
    IZerotiers,
)
from rpoold.metrics import track_backend_call

MIB = 1024**2
KILL_ROUNDS = 4


def deferred(f: Callable[..., Any]) -> Callable[..., Deferred[Any]]:
    """
    Make an ``async def`` method return a Deferred, as the interfaces say,
    and count it in the backend-call metrics (command: the method name).
    """
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Deferred[Any]:
        return track_backend_call("mock", f.__name__, ensureDeferred(f(*args, **kwargs)))

    return wrapper


def _bad(e: CommandError) -> BadRequest:
    return BadRequest(str(e))


@implementer(IFileReader)
class _FileReader:
    def __init__(self, container: Container, fd: str) -> None:
        self.container = container
        self.fd = fd

    def read_block(self) -> Deferred[bytes]:
        return succeed(base64.b64decode(self.container.files.read(self.fd)))

    def close(self) -> Deferred[None]:
        self.container.files.close(self.fd)
        return succeed(None)


@implementer(
    INodes, INodeInfo, INodeJobs, INodeProcesses, IBridges, IStoragePools,
    IFilesystems, IZerotiers, IContainers, IContainerInfo, IContainerJobs,
    IContainerProcesses, IContainerFiles, IVMs, IVMInfo, IStorageClusters,
    IVdisks, IHealthCheck,
)
class MockBackend:
    """
    :param options: ``nodes`` (pool size), ``reboot_seconds`` (how long a
        reboot takes), ``transition_seconds`` (how long a VM stays in a
        passing state such as ``halting``).
    """

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        self.clock = context.reactor
        self.transition_seconds = float(options.get("transition_seconds", 0.1))
        self.pool = Pool(
            self.clock,
            nodes=int(options.get("nodes", 2)),
            reboot_seconds=float(options.get("reboot_seconds", 1.0)),
        )
        #: (nodeid, name) -> CreateContainer body of containers made here.
        self.container_records: dict[tuple[str, str], dict[str, Any]] = {}
        #: (nodeid, vmid) -> VM record.
        self.vms: dict[tuple[str, str], dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.vdisks: dict[str, dict[str, Any]] = {}
        # The seed's containers are known like created ones, so that they
        # stay listed (halted) however they stop.
        for node in self.pool.nodes.values():
            for container in node.containers.values():
                for name in container.tags[:1]:
                    self.container_records[(node.node_id, name)] = rest.container_record(
                        name, container.arguments)

    # Lookups ------------------------------------------------------------------

    def _node(self, nodeid: str) -> Node:
        node = self.pool.node(nodeid)
        if node is None:
            raise NotFound(f"node '{nodeid}' does not exist")
        return node

    async def _live(self, nodeid: str) -> Node:
        """The node, once it runs (a rebooting node answers when it is back)."""
        node = self._node(nodeid)
        await node.when_running()
        return node

    async def _container(self, nodeid: str, name: str) -> Container:
        node = await self._live(nodeid)
        for container in node.containers.values():
            if name in container.tags:
                return container
        if (nodeid, name) in self.container_records:
            raise NotFound(f"container '{name}' is not running on node '{nodeid}'")
        raise NotFound(f"container '{name}' does not exist on node '{nodeid}'")

    # Nodes ------------------------------------------------------------------------

    def _node_view(self, node: Node) -> dict[str, Any]:
        return {"id": node.node_id, "hostname": node.hostname,
                "ipaddress": node.address, "status": node.status}

    @deferred
    async def list_nodes(self) -> list[dict[str, Any]]:
        return [self._node_view(n) for n in self.pool.nodes.values()]

    @deferred
    async def get_node(self, nodeid: str) -> dict[str, Any]:
        return self._node_view(self._node(nodeid))

    @deferred
    async def delete_node(self, nodeid: str) -> None:
        node = self._node(nodeid)
        for container in list(node.containers.values()):
            container.terminate()
        del self.pool.nodes[nodeid]
        for records in (self.container_records, self.vms):
            for key in [k for k in records if k[0] == nodeid]:
                del records[key]

    @deferred
    async def reboot_node(self, nodeid: str) -> None:
        self._node(nodeid).reboot()

    # Node facts -----------------------------------------------------------------

    @deferred
    async def ping_node(self, nodeid: str) -> bool:
        (await self._live(nodeid)).ping()
        return True

    @deferred
    async def get_node_state(self, nodeid: str) -> dict[str, Any]:
        return (await self._live(nodeid)).state()

    @deferred
    async def get_cpu_info(self, nodeid: str) -> list[dict[str, Any]]:
        return (await self._live(nodeid)).info_cpu()

    @deferred
    async def get_disk_info(self, nodeid: str) -> list[dict[str, Any]]:
        node = await self._live(nodeid)
        return rest.disk_infos(node.disk_list(), node.info_disk())

    @deferred
    async def get_mem_info(self, nodeid: str) -> dict[str, Any]:
        return (await self._live(nodeid)).info_mem()

    @deferred
    async def get_nic_info(self, nodeid: str) -> list[dict[str, Any]]:
        return rest.nic_infos((await self._live(nodeid)).info_nic())

    @deferred
    async def get_node_os_info(self, nodeid: str) -> dict[str, Any]:
        return (await self._live(nodeid)).info_os()

    # Jobs, node and container alike ------------------------------------------------

    @staticmethod
    def _jobs(agent: Any) -> list[dict[str, Any]]:
        return [rest.job_list_item(e) for e in agent.job_list()]

    @staticmethod
    def _job(agent: Any, jobid: str) -> dict[str, Any]:
        job = agent.jobs.get(jobid)
        if job is not None:
            return rest.running_job(job.listing())
        result = agent.result_of(jobid)
        if result is None:
            raise NotFound(f"job '{jobid}' does not exist")
        return rest.finished_job(result)

    @staticmethod
    def _signal_job(agent: Any, jobid: str, signal: int) -> None:
        if not agent.job_kill(jobid, signal):
            raise NotFound(f"no running job '{jobid}'")

    @deferred
    async def list_node_jobs(self, nodeid: str) -> list[dict[str, Any]]:
        return self._jobs(await self._live(nodeid))

    @deferred
    async def kill_all_node_jobs(self, nodeid: str) -> None:
        (await self._live(nodeid)).job_killall()

    @deferred
    async def get_node_job(self, nodeid: str, jobid: str) -> dict[str, Any]:
        return self._job(await self._live(nodeid), jobid)

    @deferred
    async def kill_node_job(self, nodeid: str, jobid: str) -> None:
        self._signal_job(await self._live(nodeid), jobid, 9)

    @deferred
    async def list_container_jobs(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return self._jobs(await self._container(nodeid, containername))

    @deferred
    async def kill_all_container_jobs(self, nodeid: str, containername: str) -> None:
        (await self._container(nodeid, containername)).job_killall()

    @deferred
    async def get_container_job(self, nodeid: str, containername: str, jobid: str) -> dict[str, Any]:
        return self._job(await self._container(nodeid, containername), jobid)

    @deferred
    async def send_signal_to_job(self, nodeid: str, containername: str, jobid: str,
                                 body: dict[str, Any]) -> None:
        self._signal_job(await self._container(nodeid, containername), jobid, body["signal"])

    @deferred
    async def kill_container_job(self, nodeid: str, containername: str, jobid: str) -> None:
        self._signal_job(await self._container(nodeid, containername), jobid, 9)

    # Processes ------------------------------------------------------------------------

    @staticmethod
    def _process(agent: Any, pid: int) -> dict[str, Any]:
        found = agent.process_list(pid) if pid else []
        if not found:
            raise NotFound(f"process {pid} does not exist")
        result: dict[str, Any] = found[0]
        return result

    async def _kill_process(self, agent: Any, pid: int) -> None:
        self._process(agent, pid)
        for attempt in range(KILL_ROUNDS):
            try:
                agent.process_kill(pid, 9 if attempt == KILL_ROUNDS - 1 else 15)
            except CommandError as e:
                if str(e) == "invalid PID":
                    raise BadRequest(f"process {pid} may not be killed") from None
            if not agent.process_list(pid):
                return
        raise BackendError(f"process {pid} is still alive after SIGKILL")

    @deferred
    async def list_node_processes(self, nodeid: str) -> list[dict[str, Any]]:
        return (await self._live(nodeid)).process_list()

    @deferred
    async def get_node_process(self, nodeid: str, processid: int) -> dict[str, Any]:
        return self._process(await self._live(nodeid), processid)

    @deferred
    async def kill_node_process(self, nodeid: str, processid: int) -> None:
        await self._kill_process(await self._live(nodeid), processid)

    @deferred
    async def list_container_processes(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return (await self._container(nodeid, containername)).process_list()

    @deferred
    async def start_container_process(self, nodeid: str, containername: str,
                                      body: dict[str, Any]) -> str:
        container = await self._container(nodeid, containername)
        job = container.execute("core.system", rest.system_arguments(body))
        if job.result is not None and job.result["state"] != "SUCCESS" and not job.result.get("streams"):
            raise BackendError(f"process could not be started: {job.result['data']}")
        return job.id

    @deferred
    async def get_container_process(self, nodeid: str, containername: str,
                                    processid: int) -> dict[str, Any]:
        return self._process(await self._container(nodeid, containername), processid)

    @deferred
    async def kill_container_process(self, nodeid: str, containername: str, processid: int) -> None:
        await self._kill_process(await self._container(nodeid, containername), processid)

    @deferred
    async def send_signal_to_process(self, nodeid: str, containername: str, processid: int,
                                     body: dict[str, Any]) -> None:
        container = await self._container(nodeid, containername)
        self._process(container, processid)
        try:
            container.process_kill(processid, body["signal"])
        except CommandError as e:
            raise BadRequest(f"cannot signal process {processid}: {e}") from None

    # Container facts --------------------------------------------------------------------

    @deferred
    async def ping_container(self, nodeid: str, containername: str) -> bool:
        (await self._container(nodeid, containername)).ping()
        return True

    @deferred
    async def get_container_state(self, nodeid: str, containername: str) -> dict[str, Any]:
        return (await self._container(nodeid, containername)).state()

    @deferred
    async def get_container_cpu_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return (await self._container(nodeid, containername)).info_cpu()

    @deferred
    async def get_container_disk_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        container = await self._container(nodeid, containername)
        return rest.container_disk_infos(container.info_disk())

    @deferred
    async def get_container_mem_info(self, nodeid: str, containername: str) -> dict[str, Any]:
        return (await self._container(nodeid, containername)).info_mem()

    @deferred
    async def get_container_nic_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return rest.nic_infos((await self._container(nodeid, containername)).info_nic())

    @deferred
    async def get_container_os_info(self, nodeid: str, containername: str) -> dict[str, Any]:
        return (await self._container(nodeid, containername)).info_os()

    # Container files ------------------------------------------------------------------

    @deferred
    async def file_upload(self, nodeid: str, containername: str, path: str,
                          blocks: Iterable[bytes]) -> None:
        container = await self._container(nodeid, containername)
        try:
            fd = container.files.open(path, "w", 0o644)
        except CommandError as e:
            raise BadRequest(f"cannot write '{path}': {e}") from None
        try:
            for block in blocks:
                container.files.write(fd, base64.b64encode(block).decode("ascii"))
        finally:
            container.files.close(fd)

    @deferred
    async def file_download(self, nodeid: str, containername: str, path: str) -> _FileReader:
        container = await self._container(nodeid, containername)
        if not container.files.exists(path):
            raise NotFound(f"'{path}' does not exist in container '{containername}'")
        try:
            return _FileReader(container, container.files.open(path, "r"))
        except CommandError as e:
            raise BadRequest(f"cannot read '{path}': {e}") from None

    @deferred
    async def file_delete(self, nodeid: str, containername: str, body: dict[str, Any]) -> None:
        container = await self._container(nodeid, containername)
        if not container.files.exists(body["path"]):
            raise NotFound(f"'{body['path']}' does not exist in container '{containername}'")
        container.files.remove(body["path"])

    # Containers --------------------------------------------------------------------------

    def _container_names(self, node: Node) -> list[str]:
        names = [name for (nodeid, name) in self.container_records if nodeid == node.node_id]
        for container in node.containers.values():
            for tag in container.tags[:1]:
                if tag not in names:
                    names.append(tag)
        return names

    def _running(self, node: Node, name: str) -> Container | None:
        return next((c for c in node.containers.values() if name in c.tags), None)

    def _container_view(self, node: Node, name: str) -> dict[str, Any]:
        record = self.container_records.get((node.node_id, name))
        running = self._running(node, name)
        if running is None and record is None:
            raise NotFound(f"container '{name}' does not exist on node '{node.node_id}'")
        arguments = running.arguments if running is not None else {}
        return rest.container_view(arguments, running is not None, record)

    def _start(self, node: Node, record: dict[str, Any]) -> None:
        mounts = {}
        for entry in record["filesystems"]:
            pool, _, filesystem = entry.partition(":")
            mounts[rest.filesystem_path(pool, filesystem)] = rest.container_mount_target(pool, filesystem)
        try:
            container_id = node.corex_create(**rest.container_arguments(record, mounts))
        except CommandError as e:
            raise BadRequest(f"container '{record['name']}' cannot start: {e}") from None
        container = node.containers[container_id]
        for process in record.get("initProcesses") or []:
            container.execute("core.system", rest.system_arguments(process))

    @deferred
    async def list_containers(self, nodeid: str) -> list[dict[str, Any]]:
        node = self._node(nodeid)
        return [rest.container_list_item(name, self._container_view(node, name))
                for name in self._container_names(node)]

    @deferred
    async def create_container(self, nodeid: str, body: dict[str, Any]) -> None:
        node = self._node(nodeid)
        name = body["name"]
        for other in self.pool.nodes.values():
            if name in self._container_names(other):
                raise Conflict(f"a container named '{name}' exists (node '{other.node_id}')")
        for entry in body["filesystems"]:
            pool, _, filesystem = entry.partition(":")
            fs = node.btrfs.get(rest.pool_label(pool))
            if fs is None:
                raise BadRequest(f"storage pool '{pool}' does not exist on node '{nodeid}'")
            if rest.filesystem_path(pool, filesystem) not in fs.subvolumes:
                raise BadRequest(f"filesystem '{filesystem}' does not exist in storage pool '{pool}'")
        await node.when_running()
        self._start(node, body)
        self.container_records[(nodeid, name)] = body

    @deferred
    async def delete_container(self, nodeid: str, containername: str) -> None:
        node = self._node(nodeid)
        self._container_view(node, containername)
        running = self._running(node, containername)
        if running is not None:
            running.terminate()
        self.container_records.pop((nodeid, containername), None)

    @deferred
    async def get_container(self, nodeid: str, containername: str) -> dict[str, Any]:
        return self._container_view(self._node(nodeid), containername)

    @deferred
    async def start_container(self, nodeid: str, containername: str) -> None:
        node = self._node(nodeid)
        self._container_view(node, containername)
        if self._running(node, containername) is None:
            await node.when_running()
            self._start(node, self.container_records[(nodeid, containername)])

    @deferred
    async def stop_container(self, nodeid: str, containername: str) -> None:
        node = self._node(nodeid)
        self._container_view(node, containername)
        running = self._running(node, containername)
        if running is not None:
            if (nodeid, containername) not in self.container_records:
                self.container_records[(nodeid, containername)] = rest.container_record(
                    containername, running.arguments)
            running.terminate()

    # Bridges -------------------------------------------------------------------------------

    @staticmethod
    def _bridge_view(bridge: dict[str, Any]) -> dict[str, Any]:
        return rest.bridge_view(bridge["name"], bridge.get("network"))

    def _bridge(self, node: Node, name: str) -> dict[str, Any]:
        if name == "core0" or name not in node.bridges:
            raise NotFound(f"bridge '{name}' does not exist on node '{node.node_id}'")
        return node.bridges[name]

    @deferred
    async def create_bridge(self, nodeid: str, body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        if body["name"] in node.bridges:
            raise Conflict(f"bridge '{body['name']}' exists on node '{nodeid}'")
        try:
            node.bridge_create(body["name"], body["hwaddr"], rest.bridge_network(body))
        except CommandError as e:
            raise _bad(e) from None

    @deferred
    async def list_bridges(self, nodeid: str) -> list[dict[str, Any]]:
        node = self._node(nodeid)
        return [self._bridge_view(b) for name, b in sorted(node.bridges.items()) if name != "core0"]

    @deferred
    async def get_bridge(self, nodeid: str, bridgeid: str) -> dict[str, Any]:
        return self._bridge_view(self._bridge(self._node(nodeid), bridgeid))

    @deferred
    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None:
        node = await self._live(nodeid)
        self._bridge(node, bridgeid)
        node.bridge_delete(bridgeid)

    # Storage pools ------------------------------------------------------------------------

    def _pool(self, node: Node, name: str) -> Btrfs:
        fs = node.btrfs.get(rest.pool_label(name))
        if fs is None:
            raise NotFound(f"storage pool '{name}' does not exist on node '{node.node_id}'")
        return fs

    def _capacities(self, node: Node, fs: Btrfs) -> tuple[int, int]:
        total = sum(node._device_size(p) for p in fs.devices)
        return total // rest.GIB, max(0, total - fs.used) // rest.GIB

    def _free_disk(self, node: Node, device: str) -> dict[str, Any]:
        disks = rest.block_devices(node.disk_list())
        if device not in disks:
            raise BadRequest(f"device '{device}' is not a disk of node '{node.node_id}'")
        disk = disks[device]
        for part in disk.get("children") or []:
            if node._in_use(f"/dev/{part['kname']}"):
                raise BadRequest(f"device '{device}' is in use")
        return disk

    def _partition(self, node: Node, disk: dict[str, Any]) -> str:
        node.disk_mktable(disk["name"], "gpt")
        node.disk_mkpart(disk["name"], "1m", "100%", "primary")
        part = node.block_device(f"/dev/{disk['kname']}")
        assert part is not None
        return f"/dev/{part['children'][0]['kname']}"

    @deferred
    async def list_storage_pools(self, nodeid: str) -> list[dict[str, Any]]:
        node = self._node(nodeid)
        result = []
        for label, fs in sorted(node.btrfs.items()):
            if label.startswith("sp_"):
                result.append({"name": label[3:], "status": "healthy",
                               "capacity": self._capacities(node, fs)[1]})
        return result

    @deferred
    async def create_storage_pool(self, nodeid: str, body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        name = body["name"]
        if rest.pool_label(name) in node.btrfs:
            raise Conflict(f"storage pool '{name}' exists on node '{nodeid}'")
        disks = [self._free_disk(node, device) for device in dict.fromkeys(body["devices"])]
        partitions = [self._partition(node, disk) for disk in disks]
        try:
            node.btrfs_create(rest.pool_label(name), partitions, body["metadataProfile"],
                              body["dataProfile"], True)
        except CommandError as e:
            raise _bad(e) from None
        mountpoint = rest.pool_mount(name)
        node.disk_mount(partitions[0], mountpoint)
        node.files.mkdir(f"{mountpoint}/filesystems")
        node.files.mkdir(f"{mountpoint}/snapshots")

    @deferred
    async def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> dict[str, Any]:
        node = self._node(nodeid)
        fs = self._pool(node, storagepoolname)
        total, free = self._capacities(node, fs)
        return {"name": storagepoolname, "status": "healthy", "totalCapacity": total,
                "capacity": free, "dataProfile": fs.data, "metadataProfile": fs.metadata,
                "mountpoint": fs.mountpoint}

    @deferred
    async def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> None:
        node = await self._live(nodeid)
        fs = self._pool(node, storagepoolname)
        if fs.mountpoint:
            node.disk_umount(fs.devices[0])
        for device in list(fs.devices):
            part = node.block_device(device)
            if part is not None and part.get("pkname"):
                node.disk_mktable(part["pkname"], "gpt")
        node.btrfs.pop(rest.pool_label(storagepoolname), None)

    def _devices(self, node: Node, fs: Btrfs) -> list[dict[str, Any]]:
        disks = node.disk_list()
        return [rest.pool_device(disks, path) for path in fs.devices]

    @deferred
    async def list_storage_pool_devices(self, nodeid: str, storagepoolname: str) -> list[dict[str, Any]]:
        node = self._node(nodeid)
        return self._devices(node, self._pool(node, storagepoolname))

    @deferred
    async def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                          body: list[str]) -> None:
        node = await self._live(nodeid)
        fs = self._pool(node, storagepoolname)
        present = {d["deviceName"] for d in self._devices(node, fs)}
        new = [self._free_disk(node, d) for d in dict.fromkeys(body) if d not in present]
        partitions = [self._partition(node, disk) for disk in new]
        if partitions:
            node.btrfs_device_add(fs.mountpoint, partitions)

    def _device(self, node: Node, fs: Btrfs, deviceuuid: str) -> str:
        for path in fs.devices:
            if (node.block_device(path) or {}).get("partuuid") == deviceuuid:
                return path
        raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")

    @deferred
    async def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                           deviceuuid: str) -> dict[str, Any]:
        node = self._node(nodeid)
        fs = self._pool(node, storagepoolname)
        self._device(node, fs, deviceuuid)
        return next(d for d in self._devices(node, fs) if d["uuid"] == deviceuuid)

    @deferred
    async def delete_storage_pool_device(self, nodeid: str, storagepoolname: str,
                                         deviceuuid: str) -> None:
        node = await self._live(nodeid)
        fs = self._pool(node, storagepoolname)
        path = self._device(node, fs, deviceuuid)
        try:
            node.btrfs_device_remove(fs.mountpoint, [path])
        except CommandError as e:
            raise _bad(e) from None

    # Filesystems and snapshots ---------------------------------------------------------

    def _filesystem(self, node: Node, pool: str, name: str) -> tuple[Btrfs, dict[str, Any]]:
        fs = self._pool(node, pool)
        subvolume = fs.subvolumes.get(rest.filesystem_path(pool, name))
        if subvolume is None:
            raise NotFound(f"filesystem '{name}' does not exist in storage pool '{pool}'")
        return fs, subvolume

    def _size_mib(self, node: Node, path: str) -> int:
        prefix = path + "/"
        return sum(len(c) for p, c in node.files.files.items() if p.startswith(prefix)) // MIB

    def _snapshots(self, fs: Btrfs, pool: str, filesystem: str) -> list[str]:
        prefix = rest.snapshot_path(pool, filesystem, "")
        return sorted(p[len(prefix):] for p in fs.subvolumes if p.startswith(prefix))

    @deferred
    async def list_filesystems(self, nodeid: str, storagepoolname: str) -> list[str]:
        fs = self._pool(self._node(nodeid), storagepoolname)
        prefix = rest.filesystem_path(storagepoolname, "")
        return sorted(p[len(prefix):] for p in fs.subvolumes if p.startswith(prefix))

    @deferred
    async def create_filesystem(self, nodeid: str, storagepoolname: str, body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        fs = self._pool(node, storagepoolname)
        path = rest.filesystem_path(storagepoolname, body["name"])
        if path in fs.subvolumes:
            raise Conflict(f"filesystem '{body['name']}' exists in storage pool '{storagepoolname}'")
        node.btrfs_subvol_create(path)
        node.btrfs_subvol_quota(path, body["quota"])
        fs.subvolumes[path]["read_only"] = body["readOnly"]

    @deferred
    async def get_filesystem_info(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> dict[str, Any]:
        node = self._node(nodeid)
        _, subvolume = self._filesystem(node, storagepoolname, filesystemname)
        path = rest.filesystem_path(storagepoolname, filesystemname)
        return {"name": filesystemname, "parent": storagepoolname,
                "sizeOnDisk": self._size_mib(node, path), "readOnly": subvolume["read_only"],
                "quota": int(subvolume["quota"] or 0), "mountpoint": path}

    @deferred
    async def delete_filesystem(self, nodeid: str, storagepoolname: str, filesystemname: str) -> None:
        node = await self._live(nodeid)
        fs, _ = self._filesystem(node, storagepoolname, filesystemname)
        for snapshot in self._snapshots(fs, storagepoolname, filesystemname):
            node.btrfs_subvol_delete(rest.snapshot_path(storagepoolname, filesystemname, snapshot))
        node.btrfs_subvol_delete(rest.filesystem_path(storagepoolname, filesystemname))

    @deferred
    async def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                        filesystemname: str) -> list[str]:
        fs, _ = self._filesystem(self._node(nodeid), storagepoolname, filesystemname)
        return self._snapshots(fs, storagepoolname, filesystemname)

    def _snapshot(self, node: Node, pool: str, filesystem: str, name: str) -> dict[str, Any]:
        fs, _ = self._filesystem(node, pool, filesystem)
        subvolume = fs.subvolumes.get(rest.snapshot_path(pool, filesystem, name))
        if subvolume is None:
            raise NotFound(f"snapshot '{name}' of filesystem '{filesystem}' does not exist")
        return subvolume

    @deferred
    async def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                              body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        fs, _ = self._filesystem(node, storagepoolname, filesystemname)
        path = rest.snapshot_path(storagepoolname, filesystemname, body["name"])
        if path in fs.subvolumes:
            raise Conflict(f"snapshot '{body['name']}' of filesystem '{filesystemname}' exists")
        node.btrfs_subvol_snapshot(rest.filesystem_path(storagepoolname, filesystemname), path, True)

    @deferred
    async def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> dict[str, Any]:
        node = self._node(nodeid)
        subvolume = self._snapshot(node, storagepoolname, filesystemname, snapshotname)
        path = rest.snapshot_path(storagepoolname, filesystemname, snapshotname)
        return {"name": snapshotname, "sizeOnDisk": self._size_mib(node, path),
                "timestamp": subvolume["created"]}

    @deferred
    async def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                         filesystemname: str, snapshotname: str) -> None:
        node = await self._live(nodeid)
        self._snapshot(node, storagepoolname, filesystemname, snapshotname)
        node.btrfs_subvol_delete(rest.snapshot_path(storagepoolname, filesystemname, snapshotname))

    @deferred
    async def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> None:
        node = await self._live(nodeid)
        fs, subvolume = self._filesystem(node, storagepoolname, filesystemname)
        self._snapshot(node, storagepoolname, filesystemname, snapshotname)
        path = rest.filesystem_path(storagepoolname, filesystemname)
        settings = {k: subvolume[k] for k in ("quota", "read_only")}
        node.btrfs_subvol_delete(path)
        node.btrfs_subvol_snapshot(
            rest.snapshot_path(storagepoolname, filesystemname, snapshotname), path, False)
        fs.subvolumes[path].update(settings)

    # ZeroTier -------------------------------------------------------------------------

    def _network(self, node: Node, nwid: str) -> dict[str, Any]:
        network = node.zerotiers.get(nwid)
        if network is None:
            raise NotFound(f"node '{node.node_id}' is not in zerotier network '{nwid}'")
        return network

    @deferred
    async def list_zerotiers(self, nodeid: str) -> list[dict[str, Any]]:
        node = self._node(nodeid)
        return [rest.zerotier_list_item(nodeid, n) for n in node.zerotiers.values()]

    @deferred
    async def join_zerotier(self, nodeid: str, body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        if body["nwid"] in node.zerotiers:
            raise Conflict(f"node '{nodeid}' is already in zerotier network '{body['nwid']}'")
        try:
            node.zerotier_join(body["nwid"])
        except CommandError as e:
            raise _bad(e) from None

    @deferred
    async def get_zerotier(self, nodeid: str, zerotierid: str) -> dict[str, Any]:
        return rest.zerotier_view(self._network(self._node(nodeid), zerotierid))

    @deferred
    async def exit_zerotier(self, nodeid: str, zerotierid: str) -> None:
        node = await self._live(nodeid)
        self._network(node, zerotierid)
        node.zerotier_leave(zerotierid)

    # VMs ---------------------------------------------------------------------------------

    def _vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        self._node(nodeid)
        vm = self.vms.get((nodeid, vmid))
        if vm is None:
            raise NotFound(f"vm '{vmid}' does not exist on node '{nodeid}'")
        return vm

    def _later(self, f: Callable[[], None]) -> None:
        self.clock.callLater(self.transition_seconds, f)

    def _boot(self, node: Node, vm: dict[str, Any]) -> None:
        """Create the domain; the vm is ``running`` after a moment."""
        if vm["id"] not in node.domains:
            node.kvm_create(vm["id"], rest.vm_media(vm["disks"]), vm["cpu"], vm["memory"],
                            rest.vm_nics(vm["nics"]))

        def settle() -> None:
            if vm["status"] in ("deploying", "starting", "migrating"):
                vm["status"] = "running"

        self._later(settle)

    def _halt(self, node: Node, vm: dict[str, Any]) -> None:
        domain = node.domains.get(vm["id"])
        if domain is not None:
            node.kvm_destroy(domain.uuid)
        vm["status"] = "halted"

    @deferred
    async def list_vms(self, nodeid: str) -> list[dict[str, Any]]:
        self._node(nodeid)
        return [{"id": vmid, "status": vm["status"]}
                for (n, vmid), vm in self.vms.items() if n == nodeid]

    @deferred
    async def create_vm(self, nodeid: str, body: dict[str, Any]) -> None:
        node = await self._live(nodeid)
        for (_, vmid) in self.vms:
            if vmid == body["id"]:
                raise Conflict(f"a vm with id '{vmid}' exists")
        vm = {k: body[k] for k in ("id", "cpu", "memory", "nics", "disks")}
        vm.update(status="deploying", userCloudInit=body["userCloudInit"],
                  systemCloudInit=body["systemCloudInit"])
        self.vms[(nodeid, body["id"])] = vm
        try:
            self._boot(node, vm)
        except CommandError as e:
            del self.vms[(nodeid, body["id"])]
            raise _bad(e) from None

    @deferred
    async def delete_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        self._halt(await self._live(nodeid), vm)
        del self.vms[(nodeid, vmid)]

    @deferred
    async def get_vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        vm = self._vm(nodeid, vmid)
        domain = self._node(nodeid).domains.get(vmid)
        vnc = domain.vnc if domain is not None and vm["status"] != "halted" else -1
        return {**{k: vm[k] for k in ("id", "status", "cpu", "memory", "nics", "disks")}, "vnc": vnc}

    @deferred
    async def update_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        vm = self._vm(nodeid, vmid)
        if (body["cpu"], body["memory"]) != (vm["cpu"], vm["memory"]) and vm["status"] != "halted":
            raise BadRequest(f"vm '{vmid}' must be halted to change cpu or memory")
        vm.update({k: body[k] for k in ("cpu", "memory", "nics", "disks")})
        domain = self._node(nodeid).domains.get(vmid)
        if domain is not None:
            domain.nics = rest.vm_nics(vm["nics"])
            domain.media = rest.vm_media(vm["disks"])

    @deferred
    async def start_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        node = await self._live(nodeid)
        if vm["status"] in ("halted", "error"):
            vm["status"] = "starting"
            self._boot(node, vm)

    @deferred
    async def stop_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        self._halt(await self._live(nodeid), vm)

    @deferred
    async def pause_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        node = await self._live(nodeid)
        if vm["status"] != "running":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not running")
        node.kvm_pause(node.domains[vmid].uuid)
        vm["status"] = "paused"

    @deferred
    async def resume_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        node = await self._live(nodeid)
        if vm["status"] != "paused":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not paused")
        node.kvm_resume(node.domains[vmid].uuid)
        vm["status"] = "running"

    @deferred
    async def shutdown_vm(self, nodeid: str, vmid: str) -> None:
        vm = self._vm(nodeid, vmid)
        node = await self._live(nodeid)
        if vm["status"] in ("running", "paused"):
            vm["status"] = "halting"
            self._later(lambda: self._halt(node, vm) if vm["status"] == "halting" else None)

    @deferred
    async def migrate_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        vm = self._vm(nodeid, vmid)
        node = await self._live(nodeid)
        target = self._node(body["nodeid"])
        if target is node:
            return
        domain = node.domains.get(vmid)
        if domain is not None:
            node.kvm_migrate(domain.uuid, f"qemu+ssh://{target.address}/system")
        del self.vms[(nodeid, vmid)]
        self.vms[(target.node_id, vmid)] = vm
        if domain is not None:
            vm["status"] = "migrating"
            self._later(lambda: vm.update(status="running") if vm["status"] == "migrating" else None)

    @deferred
    async def get_vm_info(self, nodeid: str, vmid: str) -> dict[str, Any]:
        node = await self._live(nodeid)
        domain = node.domains.get(vmid)
        if domain is None:
            raise NotFound(f"no running vm '{vmid}' on node '{nodeid}'")
        return rest.vm_info(node.kvm_infops(domain.uuid))

    # Storage clusters ----------------------------------------------------------------------

    @deferred
    async def deploy_new_cluster(self, body: dict[str, Any]) -> None:
        label = body["label"]
        if label in self.clusters:
            raise Conflict(f"storage cluster '{label}' exists")
        nodes = [self._node(n) for n in dict.fromkeys(body["nodes"])]
        per_node = body["servers"] // len(nodes)
        data: list[dict[str, Any]] = []
        metadata: list[dict[str, Any]] = []
        for node in nodes:
            disks = [d for d in node.disk_list()["blockdevices"]
                     if rest.disk_type(d) == body["driveType"] and not d.get("children")]
            if len(disks) < per_node:
                raise BadRequest(
                    f"node '{node.node_id}' has {len(disks)} free {body['driveType']} disk(s), "
                    f"{per_node} needed")
            for disk in disks[:per_node]:
                index = len(data)
                data.append({"id": index, "ip": node.address, "port": 2000 + index,
                             "container": f"cluster_{node.node_id}_{label}_{disk['name']}_data_{index}",
                             "status": "ready"})
        last = nodes[-1]
        metadata.append({"id": len(data), "ip": last.address, "port": 2000 + len(data),
                         "container": f"cluster_{last.node_id}_{label}_metadata_{len(data)}",
                         "status": "ready"})
        self.clusters[label] = {"label": label, "status": "ready", "driveType": body["driveType"],
                                "nodes": [n.node_id for n in nodes], "dataStorage": data,
                                "metadataStorage": metadata}

    @deferred
    async def list_all_clusters(self) -> list[str]:
        return sorted(self.clusters)

    def _cluster(self, label: str) -> dict[str, Any]:
        if label not in self.clusters:
            raise NotFound(f"storage cluster '{label}' does not exist")
        return self.clusters[label]

    @deferred
    async def get_cluster_info(self, label: str) -> dict[str, Any]:
        return self._cluster(label)

    @deferred
    async def kill_cluster(self, label: str) -> None:
        self._cluster(label)
        del self.clusters[label]

    # Vdisks -------------------------------------------------------------------------------

    def _vdisk(self, vdiskid: str) -> dict[str, Any]:
        if vdiskid not in self.vdisks:
            raise NotFound(f"vdisk '{vdiskid}' does not exist")
        return self.vdisks[vdiskid]

    @deferred
    async def list_vdisks(self) -> list[dict[str, Any]]:
        return [{"id": v["id"], "status": v["status"], "type": v["type"],
                 "storageCluster": v["storagecluster"]} for v in self.vdisks.values()]

    @deferred
    async def create_new_vdisk(self, body: dict[str, Any]) -> None:
        if body["id"] in self.vdisks:
            raise Conflict(f"vdisk '{body['id']}' exists")
        for key in ("storagecluster", "tlogStoragecluster"):
            if body[key] and body[key] not in self.clusters:
                raise NotFound(f"storage cluster '{body[key]}' ({key}) does not exist")
        template = body["templatevdisk"]
        if template and not template.startswith("ardb://") and template not in self.vdisks:
            raise NotFound(f"template vdisk '{template}' does not exist")
        self.vdisks[body["id"]] = {
            "id": body["id"], "status": "halted", "size": body["size"],
            "blocksize": body["blocksize"], "type": body["type"], "readOnly": body["readOnly"],
            "storagecluster": body["storagecluster"],
            "tlogStoragecluster": body["tlogStoragecluster"],
        }

    @deferred
    async def get_vdisk_info(self, vdiskid: str) -> dict[str, Any]:
        return self._vdisk(vdiskid)

    @deferred
    async def delete_vdisk(self, vdiskid: str) -> None:
        self._vdisk(vdiskid)
        del self.vdisks[vdiskid]

    @deferred
    async def resize_vdisk(self, vdiskid: str, body: dict[str, Any]) -> None:
        vdisk = self._vdisk(vdiskid)
        if body["newSize"] < vdisk["size"]:
            raise BadRequest(f"newSize {body['newSize']} is smaller than the current size {vdisk['size']}")
        vdisk["size"] = body["newSize"]

    @deferred
    async def rollback_vdisk(self, vdiskid: str, body: dict[str, Any]) -> None:
        vdisk = self._vdisk(vdiskid)
        before = vdisk["status"]
        if before == "rollingback":
            return
        vdisk["status"] = "rollingback"
        self._later(lambda: vdisk.update(status=before) if vdisk["status"] == "rollingback" else None)

    # Health --------------------------------------------------------------------------------

    def check_health(self) -> Deferred[dict[str, Any]]:
        running = sum(1 for n in self.pool.nodes.values() if n.running)
        return succeed({"ok": True, "nodes": len(self.pool.nodes), "running": running})

