"""
The core0 backend answers as the mock does.  Both run the same command
kit (``plugins.core0.kit``); what differs is how a command reaches a node:
the mock runs it on its model nodes in process (``plugins.poolsim.local``),
the core0 backend sends it over a real ``redis-server`` (one database per
node) to model nodes served by the in-process test agent, through the
Redis client, the connection pools and the core0 protocol.  The same
operations run on both and the answers are compared: values, and for a
refusal its error, message and HTTP status.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from plugins.core0.backend import Core0Backend
from plugins.mock.backend import MockBackend
from plugins.poolsim.mock import mock_backend
from plugins.poolsim.pool import SEED_CONTAINER, SEED_JOB, SEED_NODE, Pool
from rpoold.config import ConfigError, build
from rpoold.errors import RpoolError
from rpoold.interfaces import FAMILIES, IFileReader
from rpoold.records import MemoryRecords
from rpoold.request_validation import RequestValidator
from testbed.core0_agent import AgentOnRedis
from testbed.redis_server import RedisServer
from tests.support.polling import eventually

OTHER_NODE = "525400123457"
#: Validates request bodies as the web app does.
REQUESTS = RequestValidator()
FLIST = "http://192.168.20.132:8080/deboeckj/lede-17.01.0-r3205-59508e3-x86-64-generic-rootfs.flist"


def body(operation: str, value: Any) -> Any:
    """A request body as the web app hands it to a backend."""
    return REQUESTS.body(operation, json.dumps(value).encode())


def outcome(value: Any) -> Any:
    if isinstance(value, RpoolError):
        return (value.status, type(value).__name__, value.message)
    return value


def without(value: Any, *keys: str) -> Any:
    """``value`` with ``keys`` dropped from every dict inside it."""
    if isinstance(value, dict):
        return {k: without(v, *keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, *keys) for v in value]
    return value


class Pair:
    def __init__(self, mock: MockBackend, core0: Core0Backend, pool: Pool) -> None:
        self.mock = mock
        self.core0 = core0
        self.pool = pool

    async def both(self, method: str, **kwargs: Any) -> tuple[Any, Any]:
        answers = []
        for backend in (self.mock, self.core0):
            try:
                answers.append(outcome(await getattr(backend, method)(**kwargs)))
            except RpoolError as e:
                answers.append(outcome(e))
        return answers[0], answers[1]

    async def same(self, method: str, *, drop: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """Run on both; assert the answers agree (``drop``: keys that may differ)."""
        mock, core0 = await self.both(method, **kwargs)
        assert without(core0, *drop) == without(mock, *drop), method
        return core0


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest_twisted.async_yield_fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[Pair]:
    pool = Pool(reactor, nodes=2, reboot_seconds=0.3)
    agents = [await AgentOnRedis(redis_server.port, node=node, db=index).start()
              for index, node in enumerate(pool.nodes.values())]
    raw = {"backends": {"core0": {"plugin": "core0", "timeout": 5, "transition_seconds": 0.05,
                                  "nodes": [{"id": nodeid, "host": "127.0.0.1", "port": redis_server.port,
                                             "db": index} for index, nodeid in enumerate(pool.nodes)]}},
           "families": {"default": "core0"}}
    core0 = build(raw, "test", ".").backends["core0"]
    mock = mock_backend({"nodes": 2, "reboot_seconds": 0.3, "transition_seconds": 0.05},
                        SimpleNamespace(reactor=reactor, records=MemoryRecords()))
    yield Pair(mock, core0, pool)
    await core0.stopService()
    for agent in agents:
        await agent.stop()


# Configuration --------------------------------------------------------------------------


def test_claims_every_family_but_clusters_and_vdisks(tmp_path: Any) -> None:
    raw = {"backends": {"core0": {"plugin": "core0", "nodes": [{"id": SEED_NODE, "host": "127.0.0.1"}]}},
           "families": {"default": "core0"}}
    settings = build(raw, "test", str(tmp_path))
    backend = settings.backends["core0"]
    assert set(settings.routing) == {f.name for f in FAMILIES} - {"storageclusters", "vdisks"}
    for family in FAMILIES:
        if family.name in settings.routing:
            assert verifyObject(family.interface, backend)


@pytest.mark.parametrize(("options", "expected"), [
    ({"nodes": [{"id": "a", "host": "h", "port": "6379"}]},
     "at 'backends.core0.nodes[0].port': expected integer, got str '6379'"),
    ({"nodes": [{"id": "a", "host": "h", "colour": 1}]}, "at 'backends.core0.nodes[0].colour': unknown key"),
    ({"nodes": [], "pool_sise": 3}, "at 'backends.core0.pool_sise': unknown key"),
    ({"nodes": [], "timeout": 0}, "at 'backends.core0.timeout'"),
    ({}, "at 'backends.core0': give exactly one node source"),
    ({"nodes": [], "nodes_file": "x.toml"}, "give exactly one node source: 'nodes', 'nodes_file' or"),
    ({"nodes": [{"id": "a", "host": "h"}, {"id": "a", "host": "g"}]},
     "duplicate node id 'a' at 'nodes[1].id'"),
    ({"registry": "ays:nowhere"}, "no backend instance 'nowhere' is configured"),
    ({"registry": "ays:other"}, "'registry': backend instance 'other' does not provide INodeRegistry"),
])
def test_config_errors_name_the_key(tmp_path: Any, options: dict[str, Any], expected: str) -> None:
    raw = {"backends": {"core0": {"plugin": "core0", **options}, "other": {"plugin": "mock"}},
           "families": {"nodes": "core0", "vdisks": "other"}}
    with pytest.raises(ConfigError) as caught:
        build(raw, "configuration file 'x.toml'", str(tmp_path))
    assert any(expected in line and line.startswith("configuration file 'x.toml'")
               for line in caught.value.problems), caught.value.problems


def test_node_file_is_read_again_when_it_changes(tmp_path: Any) -> None:
    path = tmp_path / "nodes.toml"
    raw = {"backends": {"core0": {"plugin": "core0", "nodes_file": "nodes.toml"}},
           "families": {"default": "core0"}}
    registry = build(raw, "test", str(tmp_path)).backends["core0"].registry
    assert registry.list_nodes().result == []
    path.write_text('[[nodes]]\nid = "n1"\nhost = "127.0.0.1"\nport = 7001\n')
    assert [n.id for n in registry.list_nodes().result] == ["n1"]
    path.write_text('[[nodes]]\nid = "n1"\nhost = "127.0.0.1"\nport = 7001\n'
                    '[[nodes]]\nid = "n2"\nhost = "127.0.0.1"\nport = 7002\ndb = 2\nhostname = "two"\n')
    nodes = registry.list_nodes().result
    assert [(n.id, n.port, n.db, n.hostname) for n in nodes] == [("n1", 7001, 0, ""), ("n2", 7002, 2, "two")]
    path.write_text("[[nodes]]\nid = 3\n")  # broken: the last good list stays
    assert [n.id for n in registry.list_nodes().result] == ["n1", "n2"]
    path.write_text('[[nodes]]\nid = "n1"\nhost = "h"\nport = "x"\n')
    with pytest.raises(ConfigError, match=r"node file '.*nodes.toml' \(nodes_file\) at 'nodes\[0\].port'"):
        build(raw, "test", str(tmp_path))


# Nodes ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_nodes_and_their_facts(pair: Pair) -> None:
    nodes = await pair.same("list_nodes")
    assert [n["id"] for n in nodes] == [SEED_NODE, OTHER_NODE]
    assert nodes[0]["hostname"] == "core0node" and nodes[0]["status"] == "running"
    await pair.same("get_node", nodeid=OTHER_NODE)
    for method in ("get_mem_info", "get_cpu_info", "get_disk_info", "get_nic_info", "get_node_state",
                   "ping_node", "list_node_processes"):
        for nodeid in (SEED_NODE, OTHER_NODE):
            await pair.same(method, nodeid=nodeid, drop=("createtime",))
    await pair.same("get_node_os_info", nodeid=SEED_NODE, drop=("uptime", "bootTime"))
    for method in ("get_node", "get_mem_info", "list_node_jobs"):
        mock, core0 = await pair.both(method, nodeid="nosuchnode")
        assert core0 == mock == (404, "NotFound", "node 'nosuchnode' does not exist")
    processes = await pair.same("list_node_processes", nodeid=SEED_NODE, drop=("createtime",))
    pid = processes[0]["pid"]
    await pair.same("get_node_process", nodeid=SEED_NODE, processid=pid, drop=("createtime",))
    await pair.same("get_node_process", nodeid=SEED_NODE, processid=99999)
    await pair.same("kill_node_process", nodeid=SEED_NODE, processid=99999)


@pytest_twisted.ensureDeferred
async def test_node_jobs(pair: Pair) -> None:
    jobs = await pair.same("list_node_jobs", nodeid=SEED_NODE, drop=("startTime",))
    assert {j["id"] for j in jobs} == {"redis.public", "core-9"}
    await pair.same("get_node_job", nodeid=SEED_NODE, jobid="redis.public", drop=("startTime",))
    # At once: waiting for the job would end in the backend's timeout, not in NotFound.
    await pair.same("get_node_job", nodeid=SEED_NODE, jobid="no-such-job")
    await pair.same("kill_node_job", nodeid=SEED_NODE, jobid="no-such-job")
    await pair.same("reboot_node", nodeid=OTHER_NODE)
    await pair.same("get_mem_info", nodeid=OTHER_NODE)


@pytest_twisted.ensureDeferred
async def test_delete_node(pair: Pair) -> None:
    await pair.same("delete_node", nodeid=OTHER_NODE)
    await pair.same("list_nodes")
    await pair.same("get_node", nodeid=OTHER_NODE)
    await pair.same("delete_node", nodeid=OTHER_NODE)


# Containers -------------------------------------------------------------------------------


CREATE = {"nics": [{"config": {"dhcp": False, "cidr": "192.168.57.217/24", "gateway": "192.168.57.254",
                               "dns": ["8.8.8.8"]}, "id": "0", "type": "vlan"}],
          "id": "vfw_22", "filesystems": [], "flist": FLIST, "hostNetworking": False,
          "hostname": "vfw_22", "initprocesses": [], "ports": ["8080:80"]}


@pytest_twisted.ensureDeferred
async def test_container_lifecycle(pair: Pair) -> None:
    await pair.same("list_containers", nodeid=SEED_NODE)
    await pair.same("get_container", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("create_container", nodeid=SEED_NODE, body=body("CreateContainer", CREATE))
    await pair.same("create_container", nodeid=OTHER_NODE, body=body("CreateContainer", CREATE))
    listed = await pair.same("list_containers", nodeid=SEED_NODE)
    assert [c["name"] for c in listed] == ["vfw_22", SEED_CONTAINER] or \
        {c["name"] for c in listed} == {"vfw_22", SEED_CONTAINER}
    await pair.same("get_container", nodeid=SEED_NODE, containername="vfw_22")
    for method in ("get_container_state", "get_container_cpu_info", "get_container_disk_info",
                   "get_container_mem_info", "get_container_nic_info", "ping_container",
                   "list_container_processes"):
        await pair.same(method, nodeid=SEED_NODE, containername="vfw_22", drop=("createtime",))
    await pair.same("get_container_os_info", nodeid=SEED_NODE, containername="vfw_22",
                    drop=("uptime", "bootTime"))
    process = body("StartContainerProcess", {"name": "/bin/dnsmasq", "pwd": "",
                                             "args": ["--conf-file=/etc/dnsmasq.conf", "-d"], "env": []})
    mock_job, core0_job = await pair.both("start_container_process", nodeid=SEED_NODE,
                                          containername="vfw_22", body=process)
    assert isinstance(core0_job, str) and isinstance(mock_job, str)
    jobs = await pair.core0.list_container_jobs(nodeid=SEED_NODE, containername="vfw_22")
    assert [j["id"] for j in jobs] == [core0_job]
    running = await pair.core0.get_container_job(nodeid=SEED_NODE, containername="vfw_22", jobid=core0_job)
    assert running["state"] == "running" and running["name"] == "core.system"
    processes = await pair.same("list_container_processes", nodeid=SEED_NODE, containername="vfw_22",
                                drop=("createtime",))
    dnsmasq = next(p for p in processes if p["name"] == "dnsmasq")
    await pair.same("send_signal_to_process", nodeid=SEED_NODE, containername="vfw_22",
                    processid=dnsmasq["pid"], body=body("SendSignalToProcess", {"signal": 10}))
    await pair.mock.kill_container_job(nodeid=SEED_NODE, containername="vfw_22", jobid=mock_job)
    await pair.core0.kill_container_job(nodeid=SEED_NODE, containername="vfw_22", jobid=core0_job)
    finished = await pair.core0.get_container_job(nodeid=SEED_NODE, containername="vfw_22", jobid=core0_job)
    assert finished["state"] == "killed" and finished["id"] == core0_job
    assert await pair.core0.list_container_jobs(nodeid=SEED_NODE, containername="vfw_22") == []
    await pair.same("list_container_processes", nodeid=SEED_NODE, containername="vfw_22",
                    drop=("createtime",))
    await pair.same("stop_container", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("list_containers", nodeid=SEED_NODE)
    await pair.same("get_container_state", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("start_container", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("get_container", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("delete_container", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("get_container", nodeid=SEED_NODE, containername="vfw_22")
    await pair.same("delete_container", nodeid=SEED_NODE, containername="vfw_22")


@pytest_twisted.ensureDeferred
async def test_seed_container_jobs(pair: Pair) -> None:
    await pair.same("list_container_jobs", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("get_container_job", nodeid=SEED_NODE, containername=SEED_CONTAINER, jobid=SEED_JOB)
    await pair.same("send_signal_to_job", nodeid=SEED_NODE, containername=SEED_CONTAINER, jobid=SEED_JOB,
                    body=body("SendSignalToJob", {"signal": 1}))
    await pair.same("kill_container_job", nodeid=SEED_NODE, containername=SEED_CONTAINER, jobid=SEED_JOB)
    await pair.same("kill_container_job", nodeid=SEED_NODE, containername=SEED_CONTAINER, jobid=SEED_JOB)
    await pair.same("get_container_job", nodeid=SEED_NODE, containername=SEED_CONTAINER, jobid=SEED_JOB,
                    drop=("startTime",))
    await pair.same("kill_all_container_jobs", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("stop_container", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("get_container", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("list_container_jobs", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("start_container", nodeid=SEED_NODE, containername=SEED_CONTAINER)
    await pair.same("list_containers", nodeid=SEED_NODE)


@pytest_twisted.ensureDeferred
async def test_node_kill_all_stops_containers(pair: Pair) -> None:
    await pair.same("kill_all_node_jobs", nodeid=SEED_NODE)
    await pair.same("list_containers", nodeid=SEED_NODE)
    await pair.same("list_node_jobs", nodeid=SEED_NODE, drop=("startTime",))
    await pair.same("ping_container", nodeid=SEED_NODE, containername=SEED_CONTAINER)


async def read_all(reader: Any) -> bytes:
    reader = IFileReader(reader)
    blocks = []
    while True:
        block = await reader.read_block()
        if not block:
            break
        blocks.append(block)
    await reader.close()
    await reader.close()
    return b"".join(blocks)


@pytest_twisted.ensureDeferred
async def test_container_files(pair: Pair) -> None:
    content = bytes(range(256)) * 5000
    blocks = [content[i:i + 512 * 1024] for i in range(0, len(content), 512 * 1024)]
    for backend in (pair.mock, pair.core0):
        await backend.file_upload(nodeid=SEED_NODE, containername=SEED_CONTAINER, path="/tmp/blob",
                                  blocks=iter(blocks))
        reader = await backend.file_download(nodeid=SEED_NODE, containername=SEED_CONTAINER, path="/tmp/blob")
        assert await read_all(reader) == content
    await pair.same("file_download", nodeid=SEED_NODE, containername=SEED_CONTAINER, path="/tmp/none")
    await pair.same("file_upload", nodeid=SEED_NODE, containername=SEED_CONTAINER, path="/no/dir/x",
                    blocks=iter([b"x"]))
    await pair.same("file_delete", nodeid=SEED_NODE, containername=SEED_CONTAINER,
                    body=body("FileDelete", {"path": "/tmp/blob"}))
    await pair.same("file_delete", nodeid=SEED_NODE, containername=SEED_CONTAINER,
                    body=body("FileDelete", {"path": "/tmp/blob"}))
    await pair.same("file_download", nodeid=SEED_NODE, containername="nosuch", path="/tmp/blob")
    # Nothing is left open in the container.
    assert not pair.pool.nodes[SEED_NODE].containers[9].files.descriptors


# Networks -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bridges(pair: Pair) -> None:
    create = body("CreateBridge", {"name": "br1", "hwaddr": "", "networkMode": "static", "nat": True,
                                   "setting": {"cidr": "10.20.0.1/24"}})
    await pair.same("list_bridges", nodeid=SEED_NODE)
    await pair.same("create_bridge", nodeid=SEED_NODE, body=create)
    await pair.same("create_bridge", nodeid=SEED_NODE, body=create)
    await pair.same("list_bridges", nodeid=SEED_NODE)
    await pair.same("get_bridge", nodeid=SEED_NODE, bridgeid="br1")
    await pair.same("get_bridge", nodeid=SEED_NODE, bridgeid="core0")
    await pair.same("delete_bridge", nodeid=SEED_NODE, bridgeid="br1")
    await pair.same("delete_bridge", nodeid=SEED_NODE, bridgeid="br1")


@pytest_twisted.ensureDeferred
async def test_zerotiers(pair: Pair) -> None:
    join = body("JoinZerotier", {"nwid": "8056c2e21c000001"})
    await pair.same("join_zerotier", nodeid=SEED_NODE, body=join)
    await pair.same("join_zerotier", nodeid=SEED_NODE, body=join)
    await pair.same("list_zerotiers", nodeid=SEED_NODE)
    await pair.same("get_zerotier", nodeid=SEED_NODE, zerotierid="8056c2e21c000001")
    await pair.same("exit_zerotier", nodeid=SEED_NODE, zerotierid="8056c2e21c000001")
    await pair.same("get_zerotier", nodeid=SEED_NODE, zerotierid="8056c2e21c000001")


# Storage ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_storage_pools_filesystems_snapshots(pair: Pair) -> None:
    create = body("CreateStoragePool", {"name": "data", "metadataProfile": "single", "dataProfile": "raid1",
                                        "devices": ["/dev/sdb", "/dev/sdc"]})
    await pair.same("create_storage_pool", nodeid=SEED_NODE, body=create)
    await pair.same("create_storage_pool", nodeid=SEED_NODE, body=create)
    bad = body("CreateStoragePool", {"name": "other", "metadataProfile": "single",
                                     "dataProfile": "single", "devices": ["/dev/sdx"]})
    await pair.same("create_storage_pool", nodeid=SEED_NODE, body=bad)
    await pair.same("list_storage_pools", nodeid=SEED_NODE)
    await pair.same("get_storage_pool_info", nodeid=SEED_NODE, storagepoolname="data")
    devices = await pair.same("list_storage_pool_devices", nodeid=SEED_NODE, storagepoolname="data",
                              drop=("uuid",))
    assert [d["deviceName"] for d in devices] == ["/dev/sdb", "/dev/sdc"]
    await pair.same("create_storage_pool_devices", nodeid=SEED_NODE, storagepoolname="data",
                    body=["/dev/sdc", "/dev/sdd"])
    await pair.same("list_storage_pool_devices", nodeid=SEED_NODE, storagepoolname="data", drop=("uuid",))
    await pair.same("get_storage_pool_device_info", nodeid=SEED_NODE, storagepoolname="data",
                    deviceuuid="nosuch")
    core0_devices = await pair.core0.list_storage_pool_devices(nodeid=SEED_NODE, storagepoolname="data")
    uuid = core0_devices[-1]["uuid"]
    assert (await pair.core0.get_storage_pool_device_info(
        nodeid=SEED_NODE, storagepoolname="data", deviceuuid=uuid))["deviceName"] == "/dev/sdd"
    await pair.core0.delete_storage_pool_device(nodeid=SEED_NODE, storagepoolname="data", deviceuuid=uuid)
    mock_uuid = (await pair.mock.list_storage_pool_devices(nodeid=SEED_NODE, storagepoolname="data"))[-1]
    await pair.mock.delete_storage_pool_device(nodeid=SEED_NODE, storagepoolname="data",
                                               deviceuuid=mock_uuid["uuid"])
    await pair.same("list_storage_pool_devices", nodeid=SEED_NODE, storagepoolname="data", drop=("uuid",))
    # The removed disk is wiped (no partition left on it); the pool's are not.
    node = pair.pool.nodes[SEED_NODE]
    assert node.block_device("/dev/sdd1") is None and node.block_device("/dev/sdc1") is not None

    fs = body("CreateFilesystem", {"name": "fs1", "quota": 10, "readOnly": False})
    await pair.same("create_filesystem", nodeid=SEED_NODE, storagepoolname="data", body=fs)
    await pair.same("create_filesystem", nodeid=SEED_NODE, storagepoolname="data", body=fs)
    await pair.same("create_filesystem", nodeid=SEED_NODE, storagepoolname="nosuch", body=fs)
    await pair.same("list_filesystems", nodeid=SEED_NODE, storagepoolname="data")
    await pair.same("get_filesystem_info", nodeid=SEED_NODE, storagepoolname="data", filesystemname="fs1")
    snap = body("CreateSnapshot", {"name": "s1"})
    await pair.same("create_snapshot", nodeid=SEED_NODE, storagepoolname="data", filesystemname="fs1",
                    body=snap)
    await pair.same("create_snapshot", nodeid=SEED_NODE, storagepoolname="data", filesystemname="fs1",
                    body=snap)
    await pair.same("list_filesystem_snapshots", nodeid=SEED_NODE, storagepoolname="data",
                    filesystemname="fs1")
    info = await pair.same("get_filesystem_snapshot_info", nodeid=SEED_NODE, storagepoolname="data",
                           filesystemname="fs1", snapshotname="s1", drop=("timestamp",))
    assert abs(info["timestamp"] - time.time()) < 60
    await pair.same("rollback_filesystem_snapshot", nodeid=SEED_NODE, storagepoolname="data",
                    filesystemname="fs1", snapshotname="s1")
    await pair.same("get_filesystem_info", nodeid=SEED_NODE, storagepoolname="data", filesystemname="fs1")
    # A container mounts a filesystem of the pool.
    with_fs = body("CreateContainer", {**CREATE, "id": "withfs", "hostname": "withfs",
                                       "filesystems": ["data:fs1"]})
    await pair.same("create_container", nodeid=SEED_NODE, body=with_fs)
    await pair.same("get_container", nodeid=SEED_NODE, containername="withfs")
    await pair.same("create_container", nodeid=SEED_NODE,
                    body=body("CreateContainer", {**CREATE, "id": "nofs", "filesystems": ["data:nope"]}))
    await pair.same("delete_container", nodeid=SEED_NODE, containername="withfs")
    await pair.same("delete_filesystem_snapshot", nodeid=SEED_NODE, storagepoolname="data",
                    filesystemname="fs1", snapshotname="s1")
    await pair.same("delete_filesystem_snapshot", nodeid=SEED_NODE, storagepoolname="data",
                    filesystemname="fs1", snapshotname="s1")
    await pair.same("delete_filesystem", nodeid=SEED_NODE, storagepoolname="data", filesystemname="fs1")
    await pair.same("list_filesystems", nodeid=SEED_NODE, storagepoolname="data")
    await pair.same("delete_storage_pool", nodeid=SEED_NODE, storagepoolname="data")
    await pair.same("list_storage_pools", nodeid=SEED_NODE)
    await pair.same("get_disk_info", nodeid=SEED_NODE)


# VMs -------------------------------------------------------------------------------------------


#: VM states that end by themselves after ``transition_seconds``.
TRANSITIONAL = frozenset({"deploying", "starting", "migrating", "halting"})


async def settled(pair: Pair, nodeid: str, vmid: str) -> None:
    """
    Wait until the VM is out of its transition on both backends: each began
    it at its own moment, so right after a change they may be a transition
    apart however fast the machine is.
    """
    for backend in (pair.mock, pair.core0):
        async def status(backend: Any = backend) -> str:
            return str((await backend.get_vm(nodeid=nodeid, vmid=vmid))["status"])

        await eventually(status, lambda s: s not in TRANSITIONAL, 10.0, f"vm {vmid} settled")


@pytest_twisted.ensureDeferred
async def test_vms(pair: Pair) -> None:
    create = body("CreateVM", {"id": "vm1", "memory": 256, "cpu": 2,
                               "nics": [{"type": "default", "id": "", "macaddress": ""}],
                               "disks": [{"vdiskid": "disk1", "maxIOps": 100}]})
    await pair.same("create_vm", nodeid=SEED_NODE, body=create)
    await pair.same("create_vm", nodeid=OTHER_NODE, body=create)
    await settled(pair, SEED_NODE, "vm1")
    await pair.same("list_vms", nodeid=SEED_NODE)
    assert (await pair.same("get_vm", nodeid=SEED_NODE, vmid="vm1"))["status"] == "running"
    # Statistics move with the clock: compare their shape.
    mock_info, core0_info = await pair.both("get_vm_info", nodeid=SEED_NODE, vmid="vm1")
    assert {k: len(v) for k, v in core0_info.items()} == {k: len(v) for k, v in mock_info.items()} \
        == {"cpu": 2, "disks": 1, "nics": 1}
    await pair.same("update_vm", nodeid=SEED_NODE, vmid="vm1",
                    body=body("UpdateVM", {"memory": 512, "cpu": 2, "nics": [], "disks": []}))
    await pair.same("update_vm", nodeid=SEED_NODE, vmid="vm1",
                    body=body("UpdateVM", {"memory": 256, "cpu": 2, "nics": [],
                                           "disks": [{"vdiskid": "disk2", "maxIOps": 5}]}))
    assert pair.pool.nodes[SEED_NODE].domains["vm1"].media[0]["url"].startswith("nbd+unix:///disk2")
    await pair.same("pause_vm", nodeid=SEED_NODE, vmid="vm1")
    await pair.same("pause_vm", nodeid=SEED_NODE, vmid="vm1")
    await pair.same("resume_vm", nodeid=SEED_NODE, vmid="vm1")
    await pair.same("migrate_vm", nodeid=SEED_NODE, vmid="vm1",
                    body=body("MigrateVM", {"nodeid": OTHER_NODE}))
    assert "vm1" in pair.pool.nodes[OTHER_NODE].domains
    await settled(pair, OTHER_NODE, "vm1")
    await pair.same("list_vms", nodeid=OTHER_NODE)
    await pair.same("stop_vm", nodeid=OTHER_NODE, vmid="vm1")
    assert (await pair.same("get_vm", nodeid=OTHER_NODE, vmid="vm1"))["status"] == "halted"
    await pair.same("get_vm_info", nodeid=OTHER_NODE, vmid="vm1")
    await pair.same("start_vm", nodeid=OTHER_NODE, vmid="vm1")
    await settled(pair, OTHER_NODE, "vm1")
    await pair.same("shutdown_vm", nodeid=OTHER_NODE, vmid="vm1")
    await settled(pair, OTHER_NODE, "vm1")
    assert (await pair.same("get_vm", nodeid=OTHER_NODE, vmid="vm1"))["status"] == "halted"
    await pair.same("delete_vm", nodeid=OTHER_NODE, vmid="vm1")
    await pair.same("get_vm", nodeid=OTHER_NODE, vmid="vm1")


def test_two_instances_are_services_of_the_daemon(tmp_path: Any) -> None:
    """Both instances are children of the daemon's service (started and stopped with it)."""
    from rpoold.tap import Options, makeService

    path = tmp_path / "two.toml"
    path.write_text('[families]\ndefault = "a"\nnodes = "b"\n\n'
                    '[backends.a]\nplugin = "core0"\nnodes = [{id = "n1", host = "127.0.0.1"}]\n\n'
                    '[backends.b]\nplugin = "core0"\nnodes = [{id = "n2", host = "127.0.0.1"}]\n')
    options = Options()
    options.parseOptions(["--config", str(path), "--port", "tcp:0:interface=127.0.0.1"])
    service = makeService(options)
    try:
        backends = [s for s in service if isinstance(s, Core0Backend)]
        assert len(backends) == 2
        assert all(backend.parent is service for backend in backends)
    finally:
        service.web.stopService()  # it listens from the moment it is made


@pytest_twisted.ensureDeferred
async def test_nodes_follow_the_node_file(tmp_path: Any) -> None:
    servers = [RedisServer().start(), RedisServer().start()]
    pool = Pool(reactor, nodes=1)
    agents = [await AgentOnRedis(s.port, node=pool.nodes[SEED_NODE]).start() for s in servers]
    path = tmp_path / "nodes.toml"

    def point_at(server: RedisServer, *extra: str) -> None:
        # Replaced as core0sim replaces it (a new file renamed over it): a
        # rewrite in place to the same size may keep the modification time
        # where the file system's clock is coarser than the test is fast.
        text = f'[[nodes]]\nid = "{SEED_NODE}"\nhost = "127.0.0.1"\nport = {server.port}\n'
        written = path.with_suffix(".new")
        written.write_text(text + "".join(extra))
        os.replace(written, path)

    point_at(servers[0])
    raw = {"backends": {"core0": {"plugin": "core0", "nodes_file": "nodes.toml"}},
           "families": {"default": "core0"}}
    backend = build(raw, "test", str(tmp_path)).backends["core0"]
    try:
        await backend.get_mem_info(nodeid=SEED_NODE)
        assert [c["command"] for c in agents[0].received] == ["info.mem"]
        point_at(servers[1])  # the simulator came back on other ports
        await backend.get_mem_info(nodeid=SEED_NODE)
        assert [c["command"] for c in agents[1].received] == ["info.mem"]
        point_at(servers[1],
                 f'[[nodes]]\nid = "{OTHER_NODE}"\nhost = "127.0.0.1"\nport = {servers[0].port}\n')
        assert [n["id"] for n in await backend.list_nodes()] == [SEED_NODE, OTHER_NODE]
        path.write_text("")
        assert await backend.list_nodes() == []
        assert backend.directory.clients() == []
    finally:
        await backend.stopService()
        for agent in agents:
            await agent.stop()
        for server in servers:
            server.stop()
