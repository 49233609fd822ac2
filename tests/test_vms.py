"""
Virtual machines of a node (``/nodes/{nodeid}/vms[/{vmid}]``) and their
actions (``info``, ``start``, ``stop``, ``pause``, ``resume``, ``shutdown``,
``migrate``).

A VM passes through states (``deploying``, ``starting``, ``halting``,
``migrating``) on its way; the tests wait for the state they expect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, SEED_NODE, Harness, unique
from tests.support.polling import eventually
from tests.support.resources import bridge, storage_cluster, vdisk, vm

FAMILY = "vms"
VMS = f"/nodes/{SEED_NODE}/vms"
NICS = [{"type": "default"}, {"type": "vlan", "id": "100", "macaddress": "52:54:00:aa:bb:cc"}]

@pytest_twisted.async_yield_fixture
async def disks(api: Api, harness: Harness) -> AsyncIterator[list[dict[str, Any]]]:
    """
    A VM's disks: one vdisk, in a storage cluster of its own (a name only
    where the backend serves no vdisks: nothing to check it against).
    """
    if not harness.serves(frozenset({"vdisks", "storageclusters"})):
        yield [{"vdiskid": unique("vd"), "maxIOps": 2000}]
        return
    async with storage_cluster(api, [SECOND_NODE]) as cluster, vdisk(api, cluster) as name:
        yield [{"vdiskid": name, "maxIOps": 2000}]


async def status_of(api: Api, nodeid: str, vmid: str) -> str:
    reply = await api.get(f"/nodes/{nodeid}/vms/{vmid}")
    return str(reply.json().get("status")) if reply.status == 200 else f"HTTP {reply.status}"


async def reaches(api: Api, harness: Harness, vmid: str, status: str, nodeid: str = SEED_NODE) -> None:
    async def probe() -> str:
        return await status_of(api, nodeid, vmid)

    await eventually(probe, lambda s: s == status, harness.patience, f"vm {vmid} {status}")


@pytest_twisted.ensureDeferred
async def test_create_and_read(api: Api, harness: Harness, disks: list[dict[str, Any]]) -> None:
    """Create answers 201 with Location; the VM is listed, deploys and then runs."""
    name = unique("vm")
    body = {"id": name, "memory": 1024, "cpu": 2, "nics": NICS, "disks": disks,
            "userCloudInit": {"users": ["me"]}, "systemCloudInit": None}
    reply = expect(await api.post(VMS, json=body), 201)
    try:
        assert reply.header("location") == f"{VMS}/{name}"
        assert name in [v["id"] for v in body_of(await api.get(VMS), "ListVMs")]
        assert name not in [v["id"] for v in body_of(await api.get(f"/nodes/{SECOND_NODE}/vms"), "ListVMs")]
        await reaches(api, harness, name, "running")
        got = body_of(await api.get(f"{VMS}/{name}"), "GetVM")
        assert (got["id"], got["memory"], got["cpu"]) == (name, 1024, 2)
        assert [(n["type"], n.get("id", "")) for n in got["nics"]] == [("default", ""), ("vlan", "100")]
        assert got["disks"] == disks
        assert got["vnc"] > 0
    finally:
        no_content(await api.delete(f"{VMS}/{name}"))
    assert name not in [v["id"] for v in (await api.get(VMS)).json()]
    error_of(await api.get(f"{VMS}/{name}"), 404, name)
    error_of(await api.delete(f"{VMS}/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_power_transitions(api: Api, harness: Harness) -> None:
    """pause -> paused, resume -> running, stop -> halted, start -> running, shutdown -> halted; each 204."""
    async with vm(api, SEED_NODE) as name:
        path = f"{VMS}/{name}"
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{path}/pause"))
        await reaches(api, harness, name, "paused")
        no_content(await api.post(f"{path}/resume"))
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{path}/stop"))
        await reaches(api, harness, name, "halted")
        assert body_of(await api.get(path), "GetVM")["vnc"] == -1
        no_content(await api.post(f"{path}/start"))
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{path}/shutdown"))
        await reaches(api, harness, name, "halted")


@pytest_twisted.ensureDeferred
async def test_pause_needs_a_running_vm(api: Api, harness: Harness) -> None:
    async with vm(api, SEED_NODE) as name:
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{VMS}/{name}/stop"))
        await reaches(api, harness, name, "halted")
        error_of(await api.post(f"{VMS}/{name}/pause"), 400, name)
        error_of(await api.post(f"{VMS}/{name}/resume"), 400, name)


@pytest_twisted.ensureDeferred
async def test_update(api: Api, harness: Harness, disks: list[dict[str, Any]]) -> None:
    """``PUT`` (204) changes nics and disks at any time, cpu and memory only while halted (else 400)."""
    async with vm(api, SEED_NODE) as name:
        path = f"{VMS}/{name}"
        await reaches(api, harness, name, "running")
        no_content(await api.put(path, json={"memory": 512, "cpu": 2, "nics": NICS, "disks": disks}))
        got = body_of(await api.get(path), "GetVM")
        assert len(got["nics"]) == 2 and got["disks"] == disks
        error_of(await api.put(path, json={"memory": 2048, "cpu": 4}), 400, "halted")
        assert body_of(await api.get(path), "GetVM")["memory"] == 512
        no_content(await api.post(f"{path}/stop"))
        await reaches(api, harness, name, "halted")
        no_content(await api.put(path, json={"memory": 2048, "cpu": 4}))
        got = body_of(await api.get(path), "GetVM")
        assert (got["memory"], got["cpu"], got["nics"], got["disks"]) == (2048, 4, [], [])


@pytest_twisted.ensureDeferred
async def test_migrate(api: Api, harness: Harness) -> None:
    """``migrate`` (204) moves the VM to the other node, where it runs."""
    async with vm(api, SEED_NODE) as name:
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{VMS}/{name}/migrate", json={"nodeid": SECOND_NODE}))
        await reaches(api, harness, name, "running", nodeid=SECOND_NODE)
        assert name not in [v["id"] for v in (await api.get(VMS)).json()]
        error_of(await api.get(f"{VMS}/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_migrate_to_unknown_node_is_404(api: Api, harness: Harness) -> None:
    async with vm(api, SEED_NODE) as name:
        reply = await api.post(f"{VMS}/{name}/migrate", json={"nodeid": "000000000000"})
        error_of(reply, 404, "000000000000")
        assert name in [v["id"] for v in (await api.get(VMS)).json()]


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api) -> None:
    async with vm(api, SEED_NODE) as name:
        error_of(await api.post(VMS, json={"id": name, "memory": 128, "cpu": 1}), 409, name)


@pytest.mark.parametrize("action", ["start", "stop", "pause", "resume", "shutdown"])
@pytest_twisted.ensureDeferred
async def test_actions_on_unknown_vm_are_404(api: Api, action: str) -> None:
    error_of(await api.post(f"{VMS}/nosuchvm/{action}"), 404, "nosuchvm")


@pytest_twisted.ensureDeferred
async def test_unknown_vm_or_node_is_404(api: Api) -> None:
    error_of(await api.get(f"{VMS}/nosuchvm"), 404, "nosuchvm")
    error_of(await api.put(f"{VMS}/nosuchvm", json={"memory": 1, "cpu": 1}), 404, "nosuchvm")
    error_of(await api.post(f"{VMS}/nosuchvm/migrate", json={"nodeid": SECOND_NODE}), 404, "nosuchvm")
    error_of(await api.get("/nodes/000000000000/vms"), 404, "000000000000")
    error_of(await api.post("/nodes/000000000000/vms", json={"id": unique("vm"), "memory": 1, "cpu": 1}),
             404, "000000000000")


# References ---------------------------------------------------------------------------


@pytest.mark.families("vms", "vdisks", "storageclusters")
@pytest_twisted.ensureDeferred
async def test_a_vdisk_that_does_not_exist_is_404(api: Api, disks: list[dict[str, Any]]) -> None:
    """Checked before the VM is made or changed, naming the vdisk and where the body names it."""
    name = unique("vm")
    missing = {"vdiskid": "nosuchvdisk", "maxIOps": 100}
    body = {"id": name, "memory": 128, "cpu": 1, "disks": [*disks, missing]}
    error_of(await api.post(VMS, json=body), 404, "disks[1].vdiskid", "vdisk 'nosuchvdisk' does not exist")
    assert name not in [v["id"] for v in (await api.get(VMS)).json()]
    async with vm(api, SEED_NODE, disks=disks) as name:
        change = {"memory": 512, "cpu": 2, "disks": [missing]}
        error_of(await api.put(f"{VMS}/{name}", json=change), 404, "disks[0].vdiskid", "nosuchvdisk")
        assert body_of(await api.get(f"{VMS}/{name}"), "GetVM")["disks"] == disks


@pytest.mark.families("vms", "bridges")
@pytest_twisted.ensureDeferred
async def test_a_bridge_that_does_not_exist_is_400(api: Api) -> None:
    """As for a container's nic; on a node that does not exist, the node is the 404."""
    name = unique("vm")
    body = {"id": name, "memory": 128, "cpu": 1,
            "nics": [{"type": "default"}, {"type": "bridge", "id": "nosuchbr"}]}
    error_of(await api.post(VMS, json=body), 400, "nics[1].id", f"bridge 'nosuchbr' on node '{SEED_NODE}'")
    assert name not in [v["id"] for v in (await api.get(VMS)).json()]
    error_of(await api.post("/nodes/000000000000/vms", json=body), 404, "000000000000")
    async with bridge(api, SEED_NODE) as br, vm(api, SEED_NODE, nics=[{"type": "bridge", "id": br}]) as name:
        nics = body_of(await api.get(f"{VMS}/{name}"), "GetVM")["nics"]
        assert [(n["type"], n["id"]) for n in nics] == [("bridge", br)]


# VM info ------------------------------------------------------------------------------


@pytest.mark.families("vms", "vm_info")
@pytest_twisted.ensureDeferred
async def test_info_of_a_running_vm(api: Api, harness: Harness, disks: list[dict[str, Any]]) -> None:
    """One cpu figure per vCPU, one entry per disk and per nic."""
    async with vm(api, SEED_NODE, cpu=3, nics=NICS, disks=disks) as name:
        await reaches(api, harness, name, "running")
        info = body_of(await api.get(f"{VMS}/{name}/info"), "GetVMInfo")
        assert len(info["cpu"]) == 3
        assert len(info["disks"]) == 1 and len(info["nics"]) == 2


@pytest.mark.families("vms", "vm_info")
@pytest_twisted.ensureDeferred
async def test_info_of_a_halted_vm_is_404(api: Api, harness: Harness) -> None:
    async with vm(api, SEED_NODE) as name:
        await reaches(api, harness, name, "running")
        no_content(await api.post(f"{VMS}/{name}/stop"))
        await reaches(api, harness, name, "halted")
        error_of(await api.get(f"{VMS}/{name}/info"), 404, name)


@pytest.mark.families("vm_info")
@pytest_twisted.ensureDeferred
async def test_info_of_unknown_vm_is_404(api: Api) -> None:
    error_of(await api.get(f"{VMS}/nosuchvm/info"), 404, "nosuchvm")
    error_of(await api.get("/nodes/000000000000/vms/any/info"), 404, "000000000000")
    error_of(await api.get(f"{VMS}/a%20b/info"), 400, "vmid")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", VMS)
    async with vm(api, SEED_NODE) as name:
        await malformed_json_is_400(api, "PUT", f"{VMS}/{name}")
        await malformed_json_is_400(api, "POST", f"{VMS}/{name}/migrate")


@pytest.mark.parametrize(("change", "words"), [
    ({"memory": None}, ["missing", "memory"]),
    ({"memory": 0}, ["memory", "at least 1"]),
    ({"cpu": "two"}, ["cpu", "integer"]),
    ({"id": "a b"}, ["id"]),
    ({"nics": [{"type": "zerotier", "id": "x"}]}, ["nics[0].type", "vlan"]),
    ({"nics": [{"type": "bridge"}]}, ["nics[0].id"]),
    ({"nics": [{"type": "default", "macaddress": "52:54:00"}]}, ["nics[0].macaddress"]),
    ({"disks": [{"vdiskid": "vd1", "maxIOps": 0}]}, ["disks[0].maxIOps"]),
    ({"disks": [{"maxIOps": 10}]}, ["disks[0].vdiskid"]),
], ids=["missing-memory", "zero-memory", "wrong-type", "bad-id", "bad-nic-type", "nic-without-id",
        "bad-mac", "zero-iops", "disk-without-vdisk"])
@pytest_twisted.ensureDeferred
async def test_invalid_create_is_400(api: Api, change: dict[str, Any], words: list[str]) -> None:
    name = unique("vm")
    body = {k: v for k, v in {"id": name, "memory": 128, "cpu": 1, **change}.items() if v is not None}
    error_of(await api.post(VMS, json=body), 400, *words)
    assert name not in [v["id"] for v in (await api.get(VMS)).json()]


@pytest_twisted.ensureDeferred
async def test_invalid_update_and_migrate_are_400(api: Api) -> None:
    async with vm(api, SEED_NODE) as name:
        error_of(await api.put(f"{VMS}/{name}", json={"cpu": 1}), 400, "missing", "memory")
        error_of(await api.put(f"{VMS}/{name}", json={"cpu": 1, "memory": 1,
                                                       "nics": [{"type": "wifi"}]}), 400, "nics[0].type")
        error_of(await api.post(f"{VMS}/{name}/migrate", json={}), 400, "missing", "nodeid")
        error_of(await api.post(f"{VMS}/{name}/migrate", json={"nodeid": "a b"}), 400, "nodeid")


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api) -> None:
    error_of(await api.get(f"{VMS}/a%20b"), 400, "vmid")
    error_of(await api.post(f"{VMS}/a%20b/start"), 400, "vmid")
    error_of(await api.get("/nodes/a%20b/vms"), 400, "nodeid")
