"""
The mock backend: every resource family, served from an in-memory pool of
simulated nodes (``plugins.poolsim``).

Node-level facts, jobs, processes, files and containers are read from the
model directly.  Storage pools and filesystems, bridges, ZeroTier networks
and VMs are the core0 backend's families, made of core0 commands, which
run here on the model in process (``plugins.mock.node_client``): the two
backends share that code.  What the original kept in AYS (container specs,
VM specs, storage clusters, vdisks) lives in records here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.access import deferred
from plugins.core0.network import NetworkFamilies
from plugins.core0.nodes import find_process, kill_process
from plugins.core0.storage import StorageFamilies
from plugins.core0.vms import VMFamilies
from plugins.mock.node_client import ModelNodeClient, agent_runner
from plugins.poolsim.agent import Agent
from plugins.poolsim.container import Container
from plugins.poolsim.jobs import CommandError
from plugins.poolsim.node import Node
from plugins.poolsim.pool import Pool
from rpoold import conventions
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
class MockBackend(StorageFamilies, NetworkFamilies, VMFamilies):
    """
    :param options: ``nodes`` (pool size), ``reboot_seconds`` (how long a
        reboot takes), ``transition_seconds`` (how long a VM, or a vdisk's
        rollback, stays in a passing state such as ``halting``).
    """

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        super().__init__(options, context)
        self.pool = Pool(
            self.reactor,
            nodes=int(options.get("nodes", 2)),
            reboot_seconds=float(options.get("reboot_seconds", 1.0)),
        )
        self.clusters: dict[str, dict[str, Any]] = {}
        self.vdisks: dict[str, dict[str, Any]] = {}
        for node in self.pool.nodes.values():
            self.remember_containers(node.node_id, node.corex_list())

    # Lookups ------------------------------------------------------------------

    def counted(self, method: str, d: Deferred[Any]) -> Deferred[Any]:
        """Count each interface method in the backend-call metrics (command: its name)."""
        return track_backend_call("mock", method, d)

    async def client(self, nodeid: str) -> ModelNodeClient:
        return ModelNodeClient(self._node(nodeid))

    async def node_facts(self, client: ModelNodeClient) -> tuple[str, str]:
        return client.model.hostname, client.model.address

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
        running = self._running(node, name)
        if running is None:
            raise self.missing_container(nodeid, name)
        return running

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
        self.forget_node_records(nodeid)

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
        return shapes.disk_infos(node.disk_list(), node.info_disk())

    @deferred
    async def get_mem_info(self, nodeid: str) -> dict[str, Any]:
        return (await self._live(nodeid)).info_mem()

    @deferred
    async def get_nic_info(self, nodeid: str) -> list[dict[str, Any]]:
        return shapes.nic_infos((await self._live(nodeid)).info_nic())

    @deferred
    async def get_node_os_info(self, nodeid: str) -> dict[str, Any]:
        return (await self._live(nodeid)).info_os()

    # Jobs, node and container alike ------------------------------------------------

    @staticmethod
    def _jobs(agent: Any) -> list[dict[str, Any]]:
        return [shapes.job_list_item(e) for e in agent.job_list()]

    @staticmethod
    def _job(agent: Any, jobid: str) -> dict[str, Any]:
        job = agent.jobs.get(jobid)
        if job is not None:
            return shapes.running_job(job.listing())
        result = agent.result_of(jobid)
        if result is None:
            raise NotFound(f"job '{jobid}' does not exist")
        return shapes.finished_job(result)

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

    def _kill_process(self, agent: Agent, where: str, pid: int) -> Deferred[None]:
        return ensureDeferred(kill_process(agent_runner(agent, where), where, pid, self.reactor))

    @deferred
    async def list_node_processes(self, nodeid: str) -> list[dict[str, Any]]:
        return (await self._live(nodeid)).process_list()

    @deferred
    async def get_node_process(self, nodeid: str, processid: int) -> dict[str, Any]:
        return await find_process(agent_runner(await self._live(nodeid), nodeid), nodeid, processid)

    @deferred
    async def kill_node_process(self, nodeid: str, processid: int) -> None:
        await self._kill_process(await self._live(nodeid), nodeid, processid)

    @deferred
    async def list_container_processes(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return (await self._container(nodeid, containername)).process_list()

    @deferred
    async def start_container_process(self, nodeid: str, containername: str,
                                      body: dict[str, Any]) -> str:
        container = await self._container(nodeid, containername)
        job = container.execute("core.system", shapes.system_arguments(body))
        if job.result is not None and job.result["state"] != "SUCCESS" and not job.result.get("streams"):
            raise BackendError(f"process could not be started: {job.result['data']}")
        return job.id

    @deferred
    async def get_container_process(self, nodeid: str, containername: str,
                                    processid: int) -> dict[str, Any]:
        container = await self._container(nodeid, containername)
        return await find_process(agent_runner(container, nodeid), nodeid, processid)

    @deferred
    async def kill_container_process(self, nodeid: str, containername: str, processid: int) -> None:
        await self._kill_process(await self._container(nodeid, containername), nodeid, processid)

    @deferred
    async def send_signal_to_process(self, nodeid: str, containername: str, processid: int,
                                     body: dict[str, Any]) -> None:
        container = await self._container(nodeid, containername)
        await find_process(agent_runner(container, nodeid), nodeid, processid)
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
        return shapes.container_disk_infos(container.info_disk())

    @deferred
    async def get_container_mem_info(self, nodeid: str, containername: str) -> dict[str, Any]:
        return (await self._container(nodeid, containername)).info_mem()

    @deferred
    async def get_container_nic_info(self, nodeid: str, containername: str) -> list[dict[str, Any]]:
        return shapes.nic_infos((await self._container(nodeid, containername)).info_nic())

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
        return self.container_names(node.node_id, node.corex_list())

    def _running(self, node: Node, name: str) -> Container | None:
        return next((c for c in node.containers.values() if name in c.tags), None)

    def _container_view(self, node: Node, name: str) -> dict[str, Any]:
        return self.container_view(node.node_id, node.corex_list(), name)

    def _start(self, node: Node, record: dict[str, Any]) -> None:
        mounts = shapes.container_mounts(record["filesystems"])
        try:
            container_id = node.corex_create(**shapes.container_arguments(record, mounts))
        except CommandError as e:
            raise BadRequest(f"container '{record['name']}' cannot start: {e}") from None
        container = node.containers[container_id]
        for process in record.get("initProcesses") or []:
            container.execute("core.system", shapes.system_arguments(process))

    @deferred
    async def list_containers(self, nodeid: str) -> list[dict[str, Any]]:
        listing = self._node(nodeid).corex_list()
        return [shapes.container_list_item(name, self.container_view(nodeid, listing, name))
                for name in self.container_names(nodeid, listing)]

    @deferred
    async def create_container(self, nodeid: str, body: dict[str, Any]) -> None:
        node = self._node(nodeid)
        name = body["name"]
        for other in self.pool.nodes.values():
            if name in self._container_names(other):
                raise Conflict(f"a container named '{name}' exists (node '{other.node_id}')")
        await self.check_filesystems(ModelNodeClient(node), nodeid, body["filesystems"])
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
                self.container_records[(nodeid, containername)] = shapes.container_record(
                    containername, running.arguments)
            running.terminate()

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
                     if conventions.disk_type(d) == body["driveType"] and not d.get("children")]
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

        def rolled_back() -> None:
            if vdisk["status"] == "rollingback":
                vdisk["status"] = before

        self.reactor.callLater(self.transition_seconds, rolled_back)

    # Health --------------------------------------------------------------------------------

    def check_health(self) -> Deferred[dict[str, Any]]:
        running = sum(1 for n in self.pool.nodes.values() if n.running)
        return succeed({"ok": True, "nodes": len(self.pool.nodes), "running": running})

