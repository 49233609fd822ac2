"""
The contracts between the web app and its backends.

The API is split into *resource families*.  Each family is one zope
interface; a backend serves a family by providing its interface, and the
configuration says which backend instance serves which family.  The split
follows the original server: families whose operations went through the AYS
orchestrator are separate from the ones that talked to core0 directly, so a
deployment can mix the two.

Conventions for every method below:

- Arguments are plain Python values.  Path parameters keep their contract
  names (``nodeid``, ``containername``, ...); ``processid`` is an ``int``.
  ``body`` is the request body after validation, with aliases renamed and
  every absent field filled with its default or JSON zero value.
- Each method returns an awaitable: a backend object answers a
  ``Deferred`` (``rpoold.delegation`` makes one of a part's coroutine).
  The objects it fires with are the contract's types
  (``rpoold.contract.wire``: ``dict`` values keyed by the wire names of
  ``rpoold/contract/types.json``, checked by mypy); the web app fills what
  every backend shares (zero values, empty lists, extension keys) and
  drops keys the contract does not know.
- Errors are raised as (or fail the Deferred with) ``rpoold.errors`` types:
  ``NotFound`` for an unknown node, container, job, ...; ``Conflict`` for a
  duplicate create; ``BadRequest`` for a request that the backend finds
  invalid against its state; ``BackendUnavailable`` when the node or
  orchestrator cannot be reached; ``BackendTimeout`` when it does not answer
  in time; ``BackendError`` when the backend reports a failure;
  ``ServiceUnavailable`` while the backend is not ready (the AYS backend
  until it has found its repository).  Every method may raise the last
  four; the docstrings list the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import Attribute, Interface

import rpoold.contract
from rpoold.contract.wire import (
    VM,
    Bridge,
    BridgeCreate,
    Cluster,
    ClusterCreate,
    Container,
    ContainerListItem,
    CoreStateResult,
    CoreSystem,
    CPUInfo,
    CreateContainer,
    DeleteFile,
    DiskInfo,
    Filesystem,
    FilesystemCreate,
    JobListItem,
    JobResult,
    MemInfo,
    NicInfo,
    Node,
    OSInfo,
    PoolContainerListItem,
    PoolVMListItem,
    Process,
    ProcessSignal,
    Snapshot,
    SnapshotCreate,
    StoragePool,
    StoragePoolCreate,
    StoragePoolDevice,
    StoragePoolListItem,
    Vdisk,
    VdiskCreate,
    VdiskListItem,
    VdiskResize,
    VdiskRollback,
    VMCreate,
    VMInfo,
    VMListItem,
    VMMigrate,
    VMUpdate,
    Zerotier,
    ZerotierJoin,
    ZerotierListItem,
)
from rpoold.listing import PoolListing


class IJobOutput(Interface):
    """The output of one job, followed as it is written (or all at once when it ends)."""

    live = Attribute(
        "Whether the output comes as the job writes it (the agent streams it), "
        "or only when the job ends (``bool``).")

    def read() -> Awaitable[list[tuple[str, str]]]:
        """
        :returns: Deferred firing with the next pieces, once there are any:
            ``("stdout", text)`` and ``("stderr", text)`` in the order
            written, and last ``("end", state)`` with the job's final state
            in lower case (``success``, ``error``, ``killed``, ...); after
            that, an empty list.
        """

    def close() -> Awaitable[None]:
        """Stop following (the reader went away); safe to call more than once."""


class INodes(Interface):
    """The node records of the pool (AYS-based in the original)."""

    def list_nodes() -> Awaitable[list[Node]]:
        """
        List every node of the pool.

        :returns: Deferred firing with a list of ``Node`` dicts
            (``id``, ``hostname``, ``ipaddress``, ``status``).
        """

    def get_node(nodeid: str) -> Awaitable[Node]:
        """
        :returns: Deferred firing with one ``Node`` dict.
        :raises NotFound: unknown node.
        """

    def delete_node(nodeid: str) -> Awaitable[None]:
        """
        Uninstall the node and forget it.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node.
        """

    def reboot_node(nodeid: str) -> Awaitable[None]:
        """
        Schedule a reboot; does not wait for the node to come back.

        :returns: Deferred firing with ``None`` once the reboot is scheduled.
        :raises NotFound: unknown node.
        """


class INodeInfo(Interface):
    """Live facts of one node, asked of its core0 agent."""

    def ping_node(nodeid: str) -> Awaitable[bool]:
        """
        :returns: Deferred firing with ``True`` when the agent answers the
            ping, ``False`` when the ping command fails.
        :raises NotFound: unknown node.
        """

    def get_node_state(nodeid: str) -> Awaitable[CoreStateResult]:
        """
        :returns: Deferred firing with a ``CoreStateResult`` dict
            (``cpu``, ``rss``, ``vms``, ``swap``).
        :raises NotFound: unknown node.
        """

    def get_cpu_info(nodeid: str) -> Awaitable[list[CPUInfo]]:
        """
        :returns: Deferred firing with a list of ``CPUInfo`` dicts.
        :raises NotFound: unknown node.
        """

    def get_disk_info(nodeid: str) -> Awaitable[list[DiskInfo]]:
        """
        :returns: Deferred firing with a list of ``DiskInfo`` dicts, one per
            block device (``size`` in GiB, ``type`` ssd/nvme/hdd/archive).
        :raises NotFound: unknown node.
        """

    def get_mem_info(nodeid: str) -> Awaitable[MemInfo]:
        """
        :returns: Deferred firing with one ``MemInfo`` dict (bytes).
        :raises NotFound: unknown node.
        """

    def get_nic_info(nodeid: str) -> Awaitable[list[NicInfo]]:
        """
        :returns: Deferred firing with a list of ``NicInfo`` dicts
            (``addrs`` as CIDR strings).
        :raises NotFound: unknown node.
        """

    def get_node_os_info(nodeid: str) -> Awaitable[OSInfo]:
        """
        :returns: Deferred firing with one ``OSInfo`` dict.
        :raises NotFound: unknown node.
        """


class INodeJobs(Interface):
    """Jobs run by a node's core0 agent."""

    def list_node_jobs(nodeid: str) -> Awaitable[list[JobListItem]]:
        """
        :returns: Deferred firing with a list of ``JobListItem`` dicts
            (``id``, ``startTime`` in epoch ms) of the running jobs.
        :raises NotFound: unknown node.
        """

    def kill_all_node_jobs(nodeid: str) -> Awaitable[None]:
        """
        Stop every job the agent may stop.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node.
        """

    def get_node_job(nodeid: str, jobid: str) -> Awaitable[JobResult]:
        """
        :returns: Deferred firing with a ``JobResult`` dict; a running job
            has ``state`` ``running`` and only ``id``, ``name`` and
            ``startTime`` filled, a finished one its stored result with
            ``state`` in lower case.
        :raises NotFound: unknown node, or no job with this id.
        """

    def kill_node_job(nodeid: str, jobid: str) -> Awaitable[None]:
        """
        Send SIGKILL to the job.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, or no running job with this id.
        """

    def get_node_job_output(nodeid: str, jobid: str) -> Awaitable[IJobOutput]:
        """
        Follow the job's output (rpoold's own endpoint, ``GetNodeJobOutput``).

        :returns: Deferred firing with an ``IJobOutput`` once the job is
            found (running or ended).
        :raises NotFound: unknown node, or no job with this id.
        """


class INodeProcesses(Interface):
    """Operating-system processes of a node."""

    def list_node_processes(nodeid: str) -> Awaitable[list[Process]]:
        """
        :returns: Deferred firing with a list of ``Process`` dicts.
        :raises NotFound: unknown node.
        """

    def get_node_process(nodeid: str, processid: int) -> Awaitable[Process]:
        """
        :returns: Deferred firing with one ``Process`` dict.
        :raises NotFound: unknown node or process.
        """

    def kill_node_process(nodeid: str, processid: int) -> Awaitable[None]:
        """
        SIGTERM, up to three times with a liveness check, then SIGKILL.

        :returns: Deferred firing with ``None`` once the process is gone.
        :raises NotFound: unknown node or process.
        :raises BadRequest: the agent refuses to kill this process (PID 1).
        :raises BackendError: the process survived SIGKILL.
        """


class IBridges(Interface):
    """Network bridges of a node."""

    def create_bridge(nodeid: str, body: BridgeCreate) -> Awaitable[None]:
        """
        :param body: a ``BridgeCreate`` dict.
        :returns: Deferred firing with ``None`` once the bridge exists.
        :raises NotFound: unknown node.
        :raises Conflict: a bridge of this name exists.
        :raises BadRequest: the node refuses the bridge's settings.
        """

    def list_bridges(nodeid: str) -> Awaitable[list[Bridge]]:
        """
        :returns: Deferred firing with a list of ``Bridge`` dicts.
        :raises NotFound: unknown node.
        """

    def get_bridge(nodeid: str, bridgeid: str) -> Awaitable[Bridge]:
        """
        :returns: Deferred firing with one ``Bridge`` dict.
        :raises NotFound: unknown node or bridge.
        """

    def delete_bridge(nodeid: str, bridgeid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or bridge.
        """


class IStoragePools(Interface):
    """btrfs storage pools of a node, and their devices."""

    def list_storage_pools(nodeid: str) -> Awaitable[list[StoragePoolListItem]]:
        """
        :returns: Deferred firing with a list of ``StoragePoolListItem``
            dicts (``capacity`` is the free capacity in GiB).
        :raises NotFound: unknown node.
        """

    def create_storage_pool(nodeid: str, body: StoragePoolCreate) -> Awaitable[None]:
        """
        :param body: a ``StoragePoolCreate`` dict.
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node.
        :raises Conflict: a pool of this name exists.
        :raises BadRequest: a device is not a disk of the node or is in
            use, or the node refuses the pool.
        """

    def get_storage_pool_info(nodeid: str, storagepoolname: str) -> Awaitable[StoragePool]:
        """
        :returns: Deferred firing with one ``StoragePool`` dict.
        :raises NotFound: unknown node or pool.
        """

    def delete_storage_pool(nodeid: str, storagepoolname: str) -> Awaitable[None]:
        """
        Destroy the pool with its filesystems and snapshots.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or pool.
        """

    def list_storage_pool_devices(nodeid: str, storagepoolname: str) -> Awaitable[list[StoragePoolDevice]]:
        """
        :returns: Deferred firing with a list of ``StoragePoolDevice`` dicts.
        :raises NotFound: unknown node or pool.
        """

    def create_storage_pool_devices(
        nodeid: str, storagepoolname: str, body: list[str]
    ) -> Awaitable[None]:
        """
        Add devices to the pool; paths already in it are skipped.

        :param body: device paths, e.g. ``["/dev/sdc"]``.
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or pool.
        :raises BadRequest: a device is not a disk of the node or is in
            use, or the node refuses it.
        """

    def get_storage_pool_device_info(
        nodeid: str, storagepoolname: str, deviceuuid: str
    ) -> Awaitable[StoragePoolDevice]:
        """
        :returns: Deferred firing with one ``StoragePoolDevice`` dict.
        :raises NotFound: unknown node, pool or device uuid.
        """

    def delete_storage_pool_device(
        nodeid: str, storagepoolname: str, deviceuuid: str
    ) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, pool or device uuid.
        :raises BadRequest: it is the pool's last device.
        """


class IFilesystems(Interface):
    """Filesystems (btrfs subvolumes) of a storage pool, and their snapshots."""

    def list_filesystems(nodeid: str, storagepoolname: str) -> Awaitable[list[str]]:
        """
        :returns: Deferred firing with a list of filesystem names.
        :raises NotFound: unknown node or pool.
        """

    def create_filesystem(
        nodeid: str, storagepoolname: str, body: FilesystemCreate
    ) -> Awaitable[None]:
        """
        :param body: a ``FilesystemCreate`` dict.
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or pool.
        :raises Conflict: a filesystem of this name exists.
        :raises BadRequest: the node refuses the subvolume.
        """

    def get_filesystem_info(
        nodeid: str, storagepoolname: str, filesystemname: str
    ) -> Awaitable[Filesystem]:
        """
        :returns: Deferred firing with one ``Filesystem`` dict.
        :raises NotFound: unknown node, pool or filesystem.
        """

    def delete_filesystem(
        nodeid: str, storagepoolname: str, filesystemname: str
    ) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, pool or filesystem.
        """

    def list_filesystem_snapshots(
        nodeid: str, storagepoolname: str, filesystemname: str
    ) -> Awaitable[list[str]]:
        """
        :returns: Deferred firing with a list of snapshot names.
        :raises NotFound: unknown node, pool or filesystem.
        """

    def create_snapshot(
        nodeid: str, storagepoolname: str, filesystemname: str, body: SnapshotCreate
    ) -> Awaitable[None]:
        """
        :param body: a ``SnapshotCreate`` dict.
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, pool or filesystem.
        :raises Conflict: a snapshot of this name exists.
        """

    def get_filesystem_snapshot_info(
        nodeid: str, storagepoolname: str, filesystemname: str, snapshotname: str
    ) -> Awaitable[Snapshot]:
        """
        :returns: Deferred firing with one ``Snapshot`` dict.
        :raises NotFound: unknown node, pool, filesystem or snapshot.
        """

    def delete_filesystem_snapshot(
        nodeid: str, storagepoolname: str, filesystemname: str, snapshotname: str
    ) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, pool, filesystem or snapshot.
        """

    def rollback_filesystem_snapshot(
        nodeid: str, storagepoolname: str, filesystemname: str, snapshotname: str
    ) -> Awaitable[None]:
        """
        Put the filesystem back to the snapshot's content.

        :returns: Deferred firing with ``None`` once the rollback is scheduled.
        :raises NotFound: unknown node, pool, filesystem or snapshot.
        """


class IZerotiers(Interface):
    """ZeroTier networks a node has joined."""

    def list_zerotiers(nodeid: str) -> Awaitable[list[ZerotierListItem]]:
        """
        :returns: Deferred firing with a list of ``ZerotierListItem`` dicts.
        :raises NotFound: unknown node.
        """

    def join_zerotier(nodeid: str, body: ZerotierJoin) -> Awaitable[None]:
        """
        :param body: a ``ZerotierJoin`` dict.
        :returns: Deferred firing with ``None`` once the node has joined.
        :raises NotFound: unknown node.
        :raises Conflict: the node is already in this network.
        :raises BadRequest: ``nwid`` is not a network id (16 hexadecimal
            digits).
        """

    def get_zerotier(nodeid: str, zerotierid: str) -> Awaitable[Zerotier]:
        """
        :returns: Deferred firing with one ``Zerotier`` dict.
        :raises NotFound: unknown node, or the node is not in this network.
        """

    def exit_zerotier(nodeid: str, zerotierid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, or the node is not in this network.
        """


class IContainers(Interface):
    """Container records of a node (AYS-based in the original)."""

    def list_containers(nodeid: str) -> Awaitable[list[ContainerListItem]]:
        """
        :returns: Deferred firing with a list of ``ContainerListItem`` dicts
            (``name``, ``hostname``, ``flist``, ``status``).
        :raises NotFound: unknown node.
        """

    def list_pool_containers(node: str) -> Awaitable[PoolListing[PoolContainerListItem]]:
        """
        The containers of every node of the pool, each node asked within a
        per-node timeout: a node that cannot be reached or does not answer
        in time is named in ``unreachable`` instead of failing the list.

        :param node: only this node's containers; ``""``: every node's.
        :returns: Deferred firing with a ``PoolListing`` of
            ``PoolContainerListItem`` dicts (a ``ContainerListItem`` with
            ``node``, the id of its node).
        :raises NotFound: ``node`` is not a node of the pool.
        """

    def create_container(nodeid: str, body: CreateContainer) -> Awaitable[None]:
        """
        :param body: a ``CreateContainer`` dict.
        :returns: Deferred firing with ``None`` once creation is under way.
        :raises NotFound: unknown node.
        :raises Conflict: a container of this name exists.
        :raises BadRequest: a ``pool:fs`` entry names an unknown pool or
            filesystem, or the node refuses the container (e.g. a bridge
            it names does not exist).
        """

    def delete_container(nodeid: str, containername: str) -> Awaitable[None]:
        """
        Stop the container and forget it.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or container.
        """

    def get_container(nodeid: str, containername: str) -> Awaitable[Container]:
        """
        :returns: Deferred firing with one ``Container`` dict.
        :raises NotFound: unknown node or container.
        """

    def start_container(nodeid: str, containername: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once it runs.
        :raises NotFound: unknown node or container.
        :raises BadRequest: the node refuses to start it.
        """

    def stop_container(nodeid: str, containername: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once it is halted.
        :raises NotFound: unknown node or container.
        """


class IContainerInfo(Interface):
    """Live facts of one running container, asked of its coreX agent."""

    def ping_container(nodeid: str, containername: str) -> Awaitable[bool]:
        """
        :returns: Deferred firing with ``True`` / ``False`` as for a node.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_state(nodeid: str, containername: str) -> Awaitable[CoreStateResult]:
        """
        :returns: Deferred firing with a ``CoreStateResult`` dict.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_cpu_info(nodeid: str, containername: str) -> Awaitable[list[CPUInfo]]:
        """
        :returns: Deferred firing with a list of ``CPUInfo`` dicts.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_disk_info(nodeid: str, containername: str) -> Awaitable[list[DiskInfo]]:
        """
        :returns: Deferred firing with a list of ``DiskInfo`` dicts.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_mem_info(nodeid: str, containername: str) -> Awaitable[MemInfo]:
        """
        :returns: Deferred firing with one ``MemInfo`` dict.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_nic_info(nodeid: str, containername: str) -> Awaitable[list[NicInfo]]:
        """
        :returns: Deferred firing with a list of ``NicInfo`` dicts.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_os_info(nodeid: str, containername: str) -> Awaitable[OSInfo]:
        """
        :returns: Deferred firing with one ``OSInfo`` dict.
        :raises NotFound: unknown node, or no such running container.
        """


class IContainerJobs(Interface):
    """Jobs run inside a container."""

    def list_container_jobs(nodeid: str, containername: str) -> Awaitable[list[JobListItem]]:
        """
        :returns: Deferred firing with a list of ``JobListItem`` dicts.
        :raises NotFound: unknown node, or no such running container.
        """

    def kill_all_container_jobs(nodeid: str, containername: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, or no such running container.
        """

    def get_container_job(nodeid: str, containername: str, jobid: str) -> Awaitable[JobResult]:
        """
        :returns: Deferred firing with a ``JobResult`` dict (see
            ``INodeJobs.get_node_job``).
        :raises NotFound: unknown node, container or job.
        """

    def send_signal_to_job(
        nodeid: str, containername: str, jobid: str, body: ProcessSignal
    ) -> Awaitable[None]:
        """
        :param body: a ``ProcessSignal`` dict (``signal``).
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, container or running job.
        """

    def kill_container_job(nodeid: str, containername: str, jobid: str) -> Awaitable[None]:
        """
        Send SIGKILL to the job.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, container or running job.
        """

    def get_container_job_output(nodeid: str, containername: str, jobid: str) -> Awaitable[IJobOutput]:
        """
        As ``INodeJobs.get_node_job_output``, for a job inside the container.

        :raises NotFound: unknown node, container or job.
        """


class IContainerProcesses(Interface):
    """Processes inside a container."""

    def list_container_processes(nodeid: str, containername: str) -> Awaitable[list[Process]]:
        """
        :returns: Deferred firing with a list of ``Process`` dicts.
        :raises NotFound: unknown node, or no such running container.
        """

    def start_container_process(
        nodeid: str, containername: str, body: CoreSystem
    ) -> Awaitable[str]:
        """
        Start a process; does not wait for it to end.

        :param body: a ``CoreSystem`` dict (``environment`` as ``K=V``).
        :returns: Deferred firing with the id (``str``) of the job that runs
            the process.
        :raises NotFound: unknown node, or no such running container.
        :raises BackendError: the process could not be started.
        """

    def get_container_process(
        nodeid: str, containername: str, processid: int
    ) -> Awaitable[Process]:
        """
        :returns: Deferred firing with one ``Process`` dict.
        :raises NotFound: unknown node, container or process.
        """

    def kill_container_process(
        nodeid: str, containername: str, processid: int
    ) -> Awaitable[None]:
        """
        SIGTERM, up to three times with a liveness check, then SIGKILL.

        :returns: Deferred firing with ``None`` once the process is gone.
        :raises NotFound: unknown node, container or process.
        :raises BadRequest: the agent refuses to kill this process (PID 1).
        :raises BackendError: the process survived SIGKILL.
        """

    def send_signal_to_process(
        nodeid: str, containername: str, processid: int, body: ProcessSignal
    ) -> Awaitable[None]:
        """
        :param body: a ``ProcessSignal`` dict (``signal``).
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, container or process.
        :raises BadRequest: the agent refuses the signal.
        """


class IFileReader(Interface):
    """An open file being downloaded, read block by block."""

    def read_block() -> Any:
        """
        :returns: Deferred firing with the next block (``bytes``), ``b""``
            at the end of the file.
        """

    def close() -> Any:
        """
        Release the file; safe to call more than once.

        :returns: Deferred firing with ``None``.
        """


class IContainerFiles(Interface):
    """Files inside a container."""

    def file_upload(
        nodeid: str, containername: str, path: str, blocks: Iterable[bytes]
    ) -> Awaitable[None]:
        """
        Write a file, replacing what is there.

        :param path: absolute, normalised path inside the container.
        :param blocks: the content, as an iterable of ``bytes`` blocks; it
            is read as the backend goes, so a large file is never held in
            memory at once.
        :returns: Deferred firing with ``None`` once the file is written.
        :raises NotFound: unknown node, or no such running container.
        :raises BadRequest: the file cannot be opened for writing.
        """

    def file_download(nodeid: str, containername: str, path: str) -> Awaitable[IFileReader]:
        """
        Open a file for reading.

        :returns: Deferred firing with an ``IFileReader``.
        :raises NotFound: unknown node, container or file.
        :raises BadRequest: the file cannot be opened for reading.
        """

    def file_delete(nodeid: str, containername: str, body: DeleteFile) -> Awaitable[None]:
        """
        :param body: a ``DeleteFile`` dict (``path``).
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node, container or path.
        """


class IVMs(Interface):
    """Virtual machines of a node (AYS-based in the original)."""

    def list_vms(nodeid: str) -> Awaitable[list[VMListItem]]:
        """
        :returns: Deferred firing with a list of ``VMListItem`` dicts.
        :raises NotFound: unknown node.
        """

    def list_pool_vms(node: str) -> Awaitable[PoolListing[PoolVMListItem]]:
        """
        The VMs of every node of the pool, as ``IContainers.list_pool_containers``.

        :param node: only this node's VMs; ``""``: every node's.
        :returns: Deferred firing with a ``PoolListing`` of ``PoolVMListItem``
            dicts (a ``VMListItem`` with ``node``).
        :raises NotFound: ``node`` is not a node of the pool.
        """

    def create_vm(nodeid: str, body: VMCreate) -> Awaitable[None]:
        """
        :param body: a ``VMCreate`` dict.
        :returns: Deferred firing with ``None`` once creation is under way.
        :raises NotFound: unknown node.
        :raises Conflict: a VM with this id exists.
        :raises BadRequest: the node refuses the domain, or ``cpu`` or
            ``memory`` is beyond what the backend can keep.
        """

    def delete_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        Stop the VM and forget it.

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or VM.
        """

    def get_vm(nodeid: str, vmid: str) -> Awaitable[VM]:
        """
        :returns: Deferred firing with one ``VM`` dict.
        :raises NotFound: unknown node or VM.
        """

    def update_vm(nodeid: str, vmid: str, body: VMUpdate) -> Awaitable[None]:
        """
        :param body: a ``VMUpdate`` dict.
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node or VM.
        :raises BadRequest: ``cpu`` or ``memory`` changes while the VM is not
            halted, or is beyond what the backend can keep.
        """

    def start_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once the start is scheduled.
        :raises NotFound: unknown node or VM.
        """

    def stop_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once the stop is scheduled.
        :raises NotFound: unknown node or VM.
        """

    def pause_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once the pause is scheduled.
        :raises NotFound: unknown node or VM.
        :raises BadRequest: the VM is not running.
        """

    def resume_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None`` once the resume is scheduled.
        :raises NotFound: unknown node or VM.
        :raises BadRequest: the VM is not paused.
        """

    def shutdown_vm(nodeid: str, vmid: str) -> Awaitable[None]:
        """
        Graceful shutdown.

        :returns: Deferred firing with ``None`` once it is scheduled.
        :raises NotFound: unknown node or VM.
        """

    def migrate_vm(nodeid: str, vmid: str, body: VMMigrate) -> Awaitable[None]:
        """
        :param body: a ``VMMigrate`` dict (``nodeid`` of the target).
        :returns: Deferred firing with ``None`` once it is scheduled.
        :raises NotFound: unknown node, VM or target node.
        """


class IVMInfo(Interface):
    """Live statistics of a VM, asked of the node's hypervisor."""

    def get_vm_info(nodeid: str, vmid: str) -> Awaitable[VMInfo]:
        """
        :returns: Deferred firing with one ``VMInfo`` dict.
        :raises NotFound: unknown node, or no domain of this name.
        """


class IStorageClusters(Interface):
    """Storage clusters spread over several nodes."""

    def deploy_new_cluster(body: ClusterCreate) -> Awaitable[None]:
        """
        :param body: a ``ClusterCreate`` dict.
        :returns: Deferred firing with ``None`` once deployment is scheduled.
        :raises Conflict: a cluster with this label exists.
        :raises BadRequest: ``servers`` is not a multiple of the node count,
            or a node lacks free disks of the type.
        :raises NotFound: a listed node does not exist.
        """

    def list_all_clusters() -> Awaitable[list[str]]:
        """
        :returns: Deferred firing with a list of cluster labels.
        """

    def get_cluster_info(label: str) -> Awaitable[Cluster]:
        """
        :returns: Deferred firing with one ``Cluster`` dict.
        :raises NotFound: unknown label.
        """

    def kill_cluster(label: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown label.
        """


class IVdisks(Interface):
    """Virtual disks stored in storage clusters."""

    def list_vdisks() -> Awaitable[list[VdiskListItem]]:
        """
        :returns: Deferred firing with a list of ``VdiskListItem`` dicts.
        """

    def create_new_vdisk(body: VdiskCreate) -> Awaitable[None]:
        """
        :param body: a ``VdiskCreate`` dict.
        :returns: Deferred firing with ``None``.
        :raises Conflict: a vdisk with this id exists.
        :raises NotFound: ``storagecluster``, ``tlogStoragecluster`` or
            ``templatevdisk`` names something unknown.
        """

    def get_vdisk_info(vdiskid: str) -> Awaitable[Vdisk]:
        """
        :returns: Deferred firing with one ``Vdisk`` dict.
        :raises NotFound: unknown vdisk.
        """

    def delete_vdisk(vdiskid: str) -> Awaitable[None]:
        """
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown vdisk.
        """

    def resize_vdisk(vdiskid: str, body: VdiskResize) -> Awaitable[None]:
        """
        :param body: a ``VdiskResize`` dict (``newSize``, GiB).
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown vdisk.
        :raises BadRequest: ``newSize`` is smaller than the current size.
        """

    def rollback_vdisk(vdiskid: str, body: VdiskRollback) -> Awaitable[None]:
        """
        :param body: a ``VdiskRollback`` dict (``epoch``).
        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown vdisk.
        """


@dataclass(frozen=True)
class Family:
    """
    One resource family: its config name, its interface and the contract
    operations it serves, mapped to the interface's method names (both
    from ``types.json``).
    """

    name: str
    interface: type[Interface]
    operations: dict[str, str] = field(default_factory=dict)


#: The interface of each resource family, by family name (the ``family``
#: of its operations in ``types.json``), in the order families are listed.
FAMILY_INTERFACES: dict[str, type[Interface]] = {
    "nodes": INodes,
    "node_info": INodeInfo,
    "node_jobs": INodeJobs,
    "node_processes": INodeProcesses,
    "bridges": IBridges,
    "storagepools": IStoragePools,
    "filesystems": IFilesystems,
    "zerotiers": IZerotiers,
    "containers": IContainers,
    "container_info": IContainerInfo,
    "container_jobs": IContainerJobs,
    "container_processes": IContainerProcesses,
    "container_files": IContainerFiles,
    "vms": IVMs,
    "vm_info": IVMInfo,
    "storageclusters": IStorageClusters,
    "vdisks": IVdisks,
}


def _families() -> tuple[Family, ...]:
    """The families, each with its operations as ``types.json`` assigns them."""
    operations: dict[str, dict[str, str]] = {name: {} for name in FAMILY_INTERFACES}
    for op in rpoold.contract.ALL_OPERATIONS:
        if op.family in operations:  # not the daemon's own (operations, events)
            operations[op.family][op.name] = op.interface_method
    return tuple(Family(name, interface, operations[name])
                 for name, interface in FAMILY_INTERFACES.items())


FAMILIES: tuple[Family, ...] = _families()
FAMILIES_BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}
FAMILY_OF_OPERATION: dict[str, Family] = {
    operation: f for f in FAMILIES for operation in f.operations
}


class IBackendContext(Interface):
    """What a backend plugin may use while it builds its backend."""

    reactor = Attribute("The reactor the daemon runs on.")
    config_dir = Attribute(
        "Directory of the configuration file (``str``), for relative paths."
    )
    records = Attribute(
        "The instance's records (``rpoold.records.IRecords``): the daemon's "
        "store (``[store]``), under the instance's name.  Everything a backend "
        "keeps that what it manages cannot tell it belongs there."
    )

    def backend(name: str) -> Any:
        """
        :returns: the backend instance configured under ``backends.<name>``,
            built first if need be.
        :raises rpoold.config.ConfigError: no such instance, or a cycle.
        """


class IBackendPlugin(IPlugin):
    """
    A kind of backend, found by ``twisted.plugin`` in the ``plugins``
    package and named in configuration by ``name``.
    """

    name = Attribute("Unique name the configuration refers to (``str``).")
    description = Attribute("One line saying what the backend talks to.")
    options_schema = Attribute(
        "JSON Schema (``dict``) of the plugin's options, the keys of its "
        "``[backends.<instance>]`` table other than ``plugin``.  Unknown "
        "keys must be refused (``additionalProperties: false``)."
    )
    process_bound = Attribute(
        "Why the plugin's backends cannot be shared by worker processes "
        "(``server.workers`` above 1), e.g. state that lives in one "
        "process's memory; empty (``str``) when they can."
    )

    def create(options: dict[str, Any], context: IBackendContext) -> Any:
        """
        Build one backend instance.

        :param options: the instance's options, already checked against
            ``options_schema``, with the schema's defaults filled in.
        :param context: an ``IBackendContext``.
        :returns: the backend.  It provides the family interfaces it serves;
            if it also provides ``twisted.application.service.IService`` it
            is started and stopped with the daemon; if it provides
            ``IHealthCheck`` its state is shown by ``/health``.
        :raises rpoold.config.ConfigError: the options are inconsistent.
        """


class IHealthCheck(Interface):
    """A backend that can tell whether what it talks to is reachable."""

    def check_health() -> Any:
        """
        :returns: Deferred firing with a dict: ``{"ok": bool, ...details}``.
            It never fails; an unreachable peer is ``ok: False``.
        """


class IRequestBounds(Interface):
    """
    A backend that takes less than the contract allows in some request
    fields (what it talks to holds them in fewer bits).  For each family
    the backend serves, the web app narrows the contract's bounds of the
    request types of the family's operations to these, so that the
    validator refuses such a value with a 400 before the backend sees it,
    and ``/openapi.json`` says so.
    """

    request_bounds = Attribute(
        "``{'<Type>.<field>': {'maximum': n, ...}}``: narrower ``maximum``, "
        "``maxLength`` or ``maxItems`` of request fields (``dict``).")
