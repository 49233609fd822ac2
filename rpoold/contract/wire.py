"""
The contract's types as ``TypedDict`` classes: what backends answer and
what request bodies hold, under their wire names.

Generated from ``types.json`` by ``python -m rpoold.contract.generate``;
do not edit.  Every key is optional (``total=False``): a backend answers
what it knows, and the web app fills each field the contract always shows
with its zero value, in one place (``rpoold.response_shaping``).  A
request body reaches a backend with every field filled.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Node(TypedDict, total=False):
    id: str
    ipaddress: str
    status: str
    hostname: str


class CPUInfo(TypedDict, total=False):
    cacheSize: int
    cores: int
    family: str
    flags: list[str]
    mhz: float


class MemInfo(TypedDict, total=False):
    active: int
    available: int
    buffers: int
    cached: int
    free: int
    inactive: int
    total: int
    used: int
    usedPercent: float
    wired: int


class OSInfo(TypedDict, total=False):
    bootTime: int
    hostname: str
    os: str
    platform: str
    platformFamily: str
    platformVersion: str
    procs: int
    uptime: int
    virtualizationRole: str
    virtualizationSystem: str


class NicInfo(TypedDict, total=False):
    addrs: list[str]
    flags: list[str]
    hardwareaddr: str
    mtu: int
    name: str


class DiskInfo(TypedDict, total=False):
    device: str
    fstype: str
    mountpoint: str
    opts: str
    size: int
    type: str


class BridgeCreate(TypedDict, total=False):
    name: str
    hwaddr: str
    networkMode: str
    nat: bool
    setting: BridgeCreateSetting


class BridgeCreateSetting(TypedDict, total=False):
    cidr: str
    start: str
    end: str


class Job(TypedDict, total=False):
    id: str
    queue: str
    tags: str
    statsInterval: int
    maxTime: int
    maxRestart: int
    recurringPeriod: int
    logLevels: list[int]


class WriteFile(TypedDict, total=False):
    path: str
    contents: str


class DeleteFile(TypedDict, total=False):
    path: str


class CPUStats(TypedDict, total=False):
    user: float
    system: float
    idle: float
    nice: float
    iowait: float
    irq: float
    softirq: float
    steal: float
    guestnice: float
    stolen: float


class Process(TypedDict, total=False):
    cmdline: str
    cpu: CPUStats
    pid: int
    rss: int
    swap: int
    vms: int


class ProcessSignal(TypedDict, total=False):
    signal: int


class NicLink(TypedDict, total=False):
    id: str
    type: str
    macaddress: str


class VDiskLink(TypedDict, total=False):
    vdiskid: str
    maxIOps: int


class VMListItem(TypedDict, total=False):
    id: str
    status: str


class VM(TypedDict, total=False):
    id: str
    status: str
    vnc: int
    memory: int
    cpu: int
    nics: list[NicLink]
    disks: list[VDiskLink]


class VMCreate(TypedDict, total=False):
    id: str
    memory: int
    cpu: int
    nics: list[NicLink]
    disks: list[VDiskLink]
    userCloudInit: Any
    systemCloudInit: Any


class VMUpdate(TypedDict, total=False):
    memory: int
    cpu: int
    nics: list[NicLink]
    disks: list[VDiskLink]


class Bridge(TypedDict, total=False):
    name: str
    setting: BridgeCreateSetting
    status: str


class ContainerNIC(TypedDict, total=False):
    type: str
    id: str
    hwaddr: str
    config: ContainerNICConfig
    status: str


class ContainerListItem(TypedDict, total=False):
    name: str
    id: str
    hostname: str
    flist: str
    status: str


class Container(TypedDict, total=False):
    status: str
    hostname: str
    flist: str
    initprocesses: list[CoreSystem]
    filesystems: list[str]
    nics: list[ContainerNIC]
    hostNetworking: bool
    ports: list[str]
    storage: str
    zerotier: str


class CreateContainer(TypedDict, total=False):
    name: str
    hostname: str
    flist: str
    initProcesses: list[CoreSystem]
    filesystems: list[str]
    nics: list[ContainerNIC]
    hostNetworking: bool
    ports: list[str]
    storage: str


class JobListItem(TypedDict, total=False):
    id: str
    startTime: int


class JobResult(TypedDict, total=False):
    id: str
    name: str
    level: int
    startTime: int
    stdout: str
    stderr: str
    state: str
    data: str


class CoreStateResult(TypedDict, total=False):
    cpu: float
    rss: int
    vms: int
    swap: int


class ZerotierRoute(TypedDict, total=False):
    flags: int
    metric: int
    target: str
    via: str


class ZerotierListItem(TypedDict, total=False):
    name: str
    nwid: str
    status: str
    type: str


class ZerotierJoin(TypedDict, total=False):
    nwid: str


class Zerotier(TypedDict, total=False):
    allowDefault: bool
    allowGlobal: bool
    allowManaged: bool
    assignedAddresses: list[str]
    bridge: bool
    broadcastEnabled: bool
    dhcp: bool
    mac: str
    mtu: int
    name: str
    netconfRevision: int
    nwid: str
    portDeviceName: str
    portError: int
    routes: list[ZerotierRoute]
    status: str
    type: str


class CoreSystem(TypedDict, total=False):
    name: str
    pwd: str
    args: list[str]
    environment: list[str]
    stdin: str


class StoragePoolListItem(TypedDict, total=False):
    name: str
    capacity: int
    status: str


class StoragePool(TypedDict, total=False):
    name: str
    status: str
    totalCapacity: int
    capacity: int
    metadataProfile: str
    dataProfile: str
    mountpoint: str


class StoragePoolCreate(TypedDict, total=False):
    name: str
    metadataProfile: str
    dataProfile: str
    devices: list[str]


class StoragePoolDevice(TypedDict, total=False):
    deviceName: str
    uuid: str
    status: str


class Filesystem(TypedDict, total=False):
    name: str
    parent: str
    sizeOnDisk: int
    readOnly: bool
    quota: int
    mountpoint: str


class FilesystemCreate(TypedDict, total=False):
    name: str
    quota: int
    readOnly: bool


class Snapshot(TypedDict, total=False):
    name: str
    sizeOnDisk: int
    timestamp: int


class VMDiskInfo(TypedDict, total=False):
    readIops: int
    writeIops: int
    readThroughput: int
    writeThroughput: int


class VMNicInfo(TypedDict, total=False):
    receivedPackets: int
    transmittedPackets: int
    receivedThroughput: int
    transmittedThroughput: int


class VMInfo(TypedDict, total=False):
    disks: list[VMDiskInfo]
    nics: list[VMNicInfo]
    cpu: list[float]


class VMMigrate(TypedDict, total=False):
    nodeid: str


class StorageServer(TypedDict, total=False):
    id: int
    ip: str
    port: int
    container: str
    status: str


class ClusterCreate(TypedDict, total=False):
    label: str
    servers: int
    driveType: str
    nodes: list[str]


class Cluster(TypedDict, total=False):
    label: str
    status: str
    driveType: str
    nodes: list[str]
    dataStorage: list[StorageServer]
    metadataStorage: list[StorageServer]


class VdiskCreate(TypedDict, total=False):
    id: str
    size: int
    blocksize: int
    type: str
    templatevdisk: str
    readOnly: bool
    storagecluster: str
    tlogStoragecluster: str


class Vdisk(TypedDict, total=False):
    id: str
    status: str
    size: int
    blocksize: int
    type: str
    readOnly: bool
    storagecluster: str
    tlogStoragecluster: str


class VdiskListItem(TypedDict, total=False):
    id: str
    status: str
    type: str
    storageCluster: str
    storagecluster: str


class VdiskResize(TypedDict, total=False):
    newSize: int


class VdiskRollback(TypedDict, total=False):
    epoch: int


class ContainerNICConfig(TypedDict, total=False):
    dhcp: bool
    cidr: str
    gateway: str
    dns: list[str]


class SnapshotCreate(TypedDict, total=False):
    name: str


class Error(TypedDict, total=False):
    error: str


class JobReference(TypedDict, total=False):
    """The job a 202 started: its id, the last segment of the Location."""

    id: str


class PoolContainerListItem(TypedDict, total=False):
    """rpoold: a ContainerListItem of the pool-wide list, with the node it is on."""

    node: str
    name: str
    id: str
    hostname: str
    flist: str
    status: str


class PoolVMListItem(TypedDict, total=False):
    """rpoold: a VMListItem of the pool-wide list, with the node it is on."""

    node: str
    id: str
    status: str


class Operation(TypedDict, total=False):
    """A write followed to its end (rpoold's own, not in the 2017 contract)."""

    id: str
    operation: str
    resource: str
    status: str
    created: str
    updated: str
    result: OperationResult
    error: OperationError
    steps: list[OperationStep]


class OperationResult(TypedDict, total=False):
    """The answer of a write: its status code, its Location, its body."""

    status: int
    location: str
    body: Any


class OperationError(TypedDict, total=False):
    """Why an operation failed or was cancelled."""

    message: str
    status: int
    logs: list[OperationJobLog]


class OperationJobLog(TypedDict, total=False):
    """One failed job of an AYS run and what it logged."""

    job: str
    logs: list[str]


class OperationStep(TypedDict, total=False):
    """One thing learnt of an operation's progress."""

    time: str
    message: str
    data: dict[str, Any]


class Event(TypedDict, total=False):
    """One change in the pool, as GET /events sends it (the SSE event's data)."""

    id: int
    type: str
    time: str
    resource: str
    data: dict[str, Any]


class JobOutput(TypedDict, total=False):
    """A piece of a job's output (the data of a stdout or stderr SSE event, or of the end event)."""

    text: str
    state: str
