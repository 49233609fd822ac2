"""
The contract, operation by operation: every operation of ``types.json``'s
operation list is called on the mock, after preparing what it needs, and
answers its documented success status, a body valid against the contract's
response schema with a JSON content type (or no body), and the documented
Location header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_twisted

import rpoold.contract
from rpoold.contract import OPERATIONS, Operation
from rpoold.interfaces import FAMILY_INTERFACES
from testbed.http_api import Api, Reply, multipart_body
from tests.support.answers import body_of, expect
from tests.support.backends import SECOND_NODE, SEED_FLIST, SEED_NODE, mock_backend, serve_all
from tests.support.polling import eventually

NWID = "8056c2e21c000001"
FILE = "/tmp/contract.txt"

#: A valid request body per operation that takes one.
BODIES: dict[str, Any] = {
    "CreateBridge": {"name": "br2", "networkMode": "dnsmasq", "nat": False,
                     "setting": {"cidr": "10.1.0.1/24", "start": "10.1.0.10", "end": "10.1.0.20"}},
    "CreateStoragePool": {"name": "sp2", "metadataProfile": "single", "dataProfile": "single",
                          "devices": ["/dev/sdd"]},
    "CreateStoragePoolDevices": ["/dev/nvme0n1"],
    "CreateFilesystem": {"name": "fs2", "quota": 100, "readOnly": False},
    "CreateSnapshot": {"name": "snap2"},
    "JoinZerotier": {"nwid": "8056c2e21c000002"},
    "CreateContainer": {"name": "ct2", "hostname": "ct2", "flist": SEED_FLIST,
                        "nics": [{"type": "default"}], "ports": ["2222:22"]},
    "SendSignalToJob": {"signal": 10},
    "StartContainerProcess": {"name": "/bin/dnsmasq", "args": ["-d"], "environment": ["A=1"]},
    "SendSignalToProcess": {"signal": 10},
    "FileDelete": {"path": FILE},
    "CreateVM": {"id": "vm2", "memory": 256, "cpu": 1, "nics": [{"type": "default"}],
                 "disks": [{"vdiskid": "vd", "maxIOps": 100}]},
    "UpdateVM": {"memory": 512, "cpu": 1, "nics": [], "disks": []},
    "MigrateVM": {"nodeid": SECOND_NODE},
    "DeployNewCluster": {"label": "cl2", "servers": 2, "driveType": "hdd", "nodes": [SEED_NODE, SECOND_NODE]},
    "CreateNewVdisk": {"id": "vd2", "size": 5, "type": "cache", "storagecluster": "cl"},
    "ResizeVdisk": {"newSize": 50},
    "RollbackVdisk": {"epoch": 1491984742},
}


@dataclass
class World:
    """A mock pool with one of everything, and the path parameters naming them."""

    api: Api
    params: dict[str, str] = field(default_factory=dict)
    node_job: str = ""
    node_process: str = ""


def _without_status(resource: Any) -> Any:
    return {k: v for k, v in resource.items() if k != "status"} if isinstance(resource, dict) else resource


async def _ids(api: Api, path: str, key: str) -> set[str]:
    return {str(item[key]) for item in (await api.get(path)).json()}


async def build_world() -> World:
    api = Api.in_memory(serve_all(mock_backend()).resource())
    world = World(api)
    node = f"/nodes/{SEED_NODE}"
    jobs_before = await _ids(api, f"{node}/jobs", "id")
    procs_before = await _ids(api, f"{node}/processes", "pid")
    expect(await api.post(f"{node}/containers", json={
        "name": "ct", "hostname": "ct", "flist": SEED_FLIST, "nics": [{"type": "default"}]}), 201)
    [world.node_job] = await _ids(api, f"{node}/jobs", "id") - jobs_before
    [world.node_process] = await _ids(api, f"{node}/processes", "pid") - procs_before
    ct = f"{node}/containers/ct"
    reply = expect(await api.post(f"{ct}/processes", json={"name": "/bin/dnsmasq", "args": ["-d"]}), 202)
    location = reply.header("location") or ""
    container_job = location.rsplit("/", 1)[1]
    [container_process] = await _ids(api, f"{ct}/processes", "pid") - {"1"}
    body, ctype = multipart_body([("file", "contract.txt", b"contract\n")])
    expect(await api.post(f"{ct}/filesystem", body=body, headers={"Content-Type": ctype},
                          params={"path": FILE}), 204)

    expect(await api.post(f"{node}/bridges", json={"name": "br", "networkMode": "none"}), 201)
    sp = f"{node}/storagepools/sp"
    expect(await api.post(f"{node}/storagepools", json={
        "name": "sp", "metadataProfile": "single", "dataProfile": "single",
        "devices": ["/dev/sdb", "/dev/sdc"]}), 201)
    devices = {d["deviceName"]: d["uuid"] for d in (await api.get(f"{sp}/devices")).json()}
    expect(await api.post(f"{sp}/filesystems", json={"name": "fs"}), 201)
    expect(await api.post(f"{sp}/filesystems/fs/snapshots", json={"name": "snap"}), 201)
    expect(await api.post(f"{node}/zerotiers", json={"nwid": NWID}), 201)
    expect(await api.post("/storageclusters", json={
        "label": "cl", "servers": 1, "driveType": "hdd", "nodes": [SECOND_NODE]}), 201)
    expect(await api.post("/vdisks", json={
        "id": "vd", "size": 10, "type": "boot", "storagecluster": "cl"}), 201)
    expect(await api.post(f"{node}/vms", json={"id": "vm", "memory": 512, "cpu": 1}), 201)

    async def vm_status() -> str:
        return str((await api.get(f"{node}/vms/vm")).json()["status"])

    await eventually(vm_status, lambda s: s == "running", 5.0, "vm running")
    world.params = {
        "nodeid": SEED_NODE, "containername": "ct", "jobid": container_job,
        "processid": container_process, "bridgeid": "br", "storagepoolname": "sp",
        "deviceuuid": devices["/dev/sdc"], "filesystemname": "fs", "snapshotname": "snap",
        "zerotierid": NWID, "vmid": "vm", "label": "cl", "vdiskid": "vd",
    }
    return world


def fill(template: str, params: dict[str, str], body: Any) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(body[key[5:]]) if key.startswith("body.") else params[key]

    return re.sub(r"{([^}]+)}", value, template)


def params_for(op: Operation, world: World) -> dict[str, str]:
    params = dict(world.params)
    if "/containers/" not in op.path:
        params["jobid"] = world.node_job
        params["processid"] = world.node_process
    return params


async def call(op: Operation, world: World, path_template: str | None = None) -> tuple[Reply, str]:
    api = world.api
    params = params_for(op, world)
    path = fill(path_template or op.path, params, None)
    if op.name == "ResumeVM":
        expect(await api.post(f"/nodes/{SEED_NODE}/vms/vm/pause"), 204)
    if op.name == "FileUpload":
        body, ctype = multipart_body([("file", "up.bin", b"\x00\x01 uploaded")])
        reply = await api.post(path, body=body, headers={"Content-Type": ctype},
                               params={"path": "/tmp/uploaded.bin"})
    elif op.name == "FileDownload":
        reply = await api.get(path, params={"path": FILE})
    else:
        reply = await api.request(op.method, path, json=BODIES.get(op.name))
    return reply, path


def test_the_operation_list_is_complete() -> None:
    """
    93 operations (GET 46, POST 28, PUT 1, DELETE 18): the original's 91
    and the two pool-wide lists; each with a sample body if it takes one.
    """
    assert len(OPERATIONS) == 93
    assert len({op.name for op in OPERATIONS}) == 93
    methods = [op.method for op in OPERATIONS]
    assert {m: methods.count(m) for m in set(methods)} == {"GET": 46, "POST": 28, "PUT": 1, "DELETE": 18}
    json_bodies = {op.name for op in OPERATIONS if op.request is not None}
    assert set(BODIES) == json_bodies


def test_each_operation_names_a_method_of_its_family_interface() -> None:
    """
    ``types.json`` is the dispatch table: each operation's ``family`` is a
    configured family and its ``interface_method`` a method of that
    family's interface, taking the route's path parameters by name; every
    interface method serves one operation.
    """
    served: dict[str, set[str]] = {name: set() for name in FAMILY_INTERFACES}
    document = rpoold.contract.load()
    for op in document["operations"] + document["rpoold_operations"]:
        if op["family"] in ("operations", "events"):
            continue  # served by the daemon itself, not by a backend family
        interface = FAMILY_INTERFACES[op["family"]]
        method = interface[op["interface_method"]]
        parameters = method.getSignatureInfo()["positional"]
        assert list(parameters[:len(re.findall(r"{(\w+)}", op["path"]))]) == re.findall(
            r"{(\w+)}", op["path"]), op["name"]
        served[op["family"]].add(op["interface_method"])
    for name, interface in FAMILY_INTERFACES.items():
        assert served[name] == set(interface.names()), name


def test_each_interface_method_takes_the_arguments_the_web_app_passes() -> None:
    """
    ``Operation.arguments`` (what the web app calls the interface method
    with, and what configuration checks a backend's methods against) are the
    interface method's parameters, in order.
    """
    for op in OPERATIONS:
        method = FAMILY_INTERFACES[op.family][op.interface_method]
        assert tuple(method.getSignatureInfo()["positional"]) == op.arguments, op.name


@pytest.mark.parametrize("op", OPERATIONS, ids=[f"{op.number:02d}-{op.name}" for op in OPERATIONS])
@pytest_twisted.ensureDeferred
async def test_operation(op: Operation) -> None:
    world = await build_world()
    reply, path = await call(op, world)
    assert reply.status == op.success, f"{op.method} {path}: expected {op.success}, got {reply}"
    if op.response is not None and op.response_media_type == "application/json":
        value = body_of(reply, op.name, op.success)
        if op.response.endswith("[]"):
            assert isinstance(value, list) and value, f"{op.name}: the world should make this list non-empty"
    elif op.name == "FileDownload":
        assert reply.header("content-type") == "application/octet-stream"
        assert reply.body == b"contract\n"
    else:
        assert reply.body == b"", reply
        assert reply.header("content-type") is None, reply.headers
    location = reply.header("location")
    if op.created is not None:
        # A 201 carries the resource it made: what its GET answers (but for
        # a status that may have moved on since).
        read = rpoold.contract.OPERATIONS_BY_NAME[op.created]
        again = await world.api.get(location or fill(read.path, params_for(op, world), None))
        expect(again, 200)
        assert _without_status(body_of(reply, op.name, op.success)) == _without_status(again.json())
    if op.response == "JobReference":
        assert location is not None
        assert body_of(reply, op.name, op.success) == {"id": location.rsplit("/", 1)[1]}
    if op.name == "StartContainerProcess":
        prefix = fill("/nodes/{nodeid}/containers/{containername}/jobs/", world.params, None)
        assert location is not None and location.startswith(prefix), reply.headers
        assert location.rsplit("/", 1)[1] in await _ids(world.api, prefix.rstrip("/"), "id")
    elif op.location is not None:
        assert location == fill(op.location, params_for(op, world), BODIES.get(op.name)), reply.headers
    else:
        assert location is None, reply.headers


@pytest_twisted.ensureDeferred
async def test_container_mem_alias_mems() -> None:
    """The reference server's ``.../mems`` route answers as ``.../mem``."""
    [op] = [op for op in OPERATIONS if op.name == "GetContainerMemInfo"]
    assert op.path_aliases == ("/nodes/{nodeid}/containers/{containername}/mems",)
    world = await build_world()
    reply, _ = await call(op, world, op.path_aliases[0])
    mems = body_of(reply, op.name)
    reply, _ = await call(op, world)
    assert body_of(reply, op.name)["total"] == mems["total"]


EMPTY_LISTS = [
    f"/nodes/{SECOND_NODE}/bridges",
    f"/nodes/{SECOND_NODE}/storagepools",
    f"/nodes/{SECOND_NODE}/zerotiers",
    f"/nodes/{SECOND_NODE}/containers",
    f"/nodes/{SECOND_NODE}/vms",
    "/storageclusters",
    "/vdisks",
]


@pytest.mark.parametrize("path", EMPTY_LISTS)
@pytest_twisted.ensureDeferred
async def test_empty_lists_are_empty_arrays(path: str) -> None:
    api = Api.in_memory(serve_all(mock_backend()).resource())
    reply = expect(await api.get(path), 200)
    assert reply.header("content-type") == "application/json"
    assert reply.body == b"[]"


@pytest_twisted.ensureDeferred
async def test_empty_lists_of_a_new_thing() -> None:
    """A new pool has no filesystems, a new filesystem no snapshots, a new container no jobs once killed."""
    world = await build_world()
    api = world.api
    sp = f"/nodes/{SEED_NODE}/storagepools"
    expect(await api.post(sp, json=BODIES["CreateStoragePool"]), 201)
    assert (await api.get(f"{sp}/sp2/filesystems")).body == b"[]"
    expect(await api.post(f"{sp}/sp2/filesystems", json={"name": "empty"}), 201)
    assert (await api.get(f"{sp}/sp2/filesystems/empty/snapshots")).body == b"[]"
    jobs = f"/nodes/{SEED_NODE}/containers/ct/jobs"
    expect(await api.delete(jobs), 204)
    assert (await api.get(jobs)).body == b"[]"


def test_the_typed_dicts_are_generated_from_types_json() -> None:
    """``rpoold/contract/wire.py`` is what ``python -m rpoold.contract.generate`` writes now."""
    from rpoold.contract import generate

    assert generate.TARGET.read_text() == generate.source()
