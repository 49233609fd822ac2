"""
The original's split deployment end to end, over real HTTP and Redis:
rpoold (AYS for the AYS-based families, core0 for the direct ones, nodes
from AYS) + ayssim + core0sim with its redis-server children, all real
processes.  What AYS does is checked on the simulated nodes themselves,
asked with the published g8core client.

Shares the ``ays`` harness's environment: names are unique, everything
made is removed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import yaml

from testbed.ays_split import CORE0, REPO, SplitEnvironment, http_json
from testbed.http_api import Api, call
from tests.support.answers import body_of, error_of, expect, no_content
from tests.support.ays_harness import AYS, environment
from tests.support.ays_split import Sim, containers_on_node, on_node
from tests.support.backends import SECOND_NODE, SEED_CONTAINER, SEED_HOSTNAME, SEED_JOB, SEED_NODE, unique
from tests.support.polling import eventually
from tests.support.resources import storage_cluster, vdisk

PATIENCE = AYS.patience
DOCS_FLIST = "http://192.168.20.132:8080/deboeckj/lede-17.01.0-r3205-59508e3-x86-64-generic-rootfs.flist"

needs_core0 = pytest.mark.skipif(not CORE0, reason="the core0 backend is not installed")


@pytest.fixture(scope="module")
def env() -> SplitEnvironment:
    return environment()


@pytest.fixture
def api(env: SplitEnvironment) -> Api:
    return Api.over_http(env.url)


@pytest.fixture
def sim(env: SplitEnvironment) -> Sim:
    return Sim(env.ays_url)


@pytest.fixture
def nodes_file(env: SplitEnvironment) -> Path:
    return env.nodes_file


async def posted(sim: Sim, prefix: str) -> dict[str, Any]:
    """The content of the last blueprint whose name starts with ``prefix``."""
    matching = [b for b in await sim.blueprints() if b["name"].startswith(prefix)]
    assert matching, f"no blueprint {prefix}*"
    assert all(b["archived"] for b in matching)
    return dict(yaml.safe_load(matching[-1]["content"]))


# The seed examples of the original documentation ---------------------------------------------


@needs_core0
@pytest_twisted.ensureDeferred
async def test_seed_examples(api: Api, nodes_file: Path) -> None:
    """The nine examples, across both backends of the split deployment."""
    nodes = body_of(await api.get("/nodes"), "ListNodes")
    seed = next(n for n in nodes if n["id"] == SEED_NODE)
    assert seed["hostname"] == SEED_HOSTNAME and seed["status"] == "running"
    assert seed["ipaddress"] == "127.0.0.1"

    mem = body_of(await api.get(f"/nodes/{SEED_NODE}/mem"), "GetMemInfo")
    assert mem["total"] > 0

    containers = body_of(await api.get(f"/nodes/{SEED_NODE}/containers"), "ListContainers")
    assert SEED_CONTAINER in [c["name"] for c in containers]

    name = unique("vfw")
    reply = expect(await api.post(f"/nodes/{SEED_NODE}/containers", json={
        "nics": [{"config": {"dhcp": False, "cidr": "192.168.57.217/24",
                             "gateway": "192.168.57.254", "dns": ["8.8.8.8"]},
                  "id": "0", "type": "vlan"}],
        "id": name, "filesystems": [], "flist": DOCS_FLIST, "hostNetworking": False,
        "hostname": name, "initprocesses": [], "ports": []}), 201)
    assert reply.header("location") == f"/nodes/{SEED_NODE}/containers/{name}"
    try:
        jobs = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs"),
                       "ListContainerJobs")
        assert SEED_JOB in [j["id"] for j in jobs]

        processes = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}/processes"),
                            "ListContainerProcesses")
        assert [p["cmdline"].split()[0] for p in processes] == ["/coreX"]

        reply = expect(await api.post(f"/nodes/{SEED_NODE}/containers/{name}/processes", json={
            "name": "/bin/dnsmasq", "pwd": "", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"],
            "env": []}), 202)
        location = reply.header("location") or ""
        assert location.startswith(f"/nodes/{SEED_NODE}/containers/{name}/jobs/"), reply.headers
        assert body_of(await api.get(location), "GetContainerJob")["state"] == "running"
        processes = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}/processes"),
                            "ListContainerProcesses")
        assert "/bin/dnsmasq --conf-file=/etc/dnsmasq.conf -d" in [p["cmdline"] for p in processes]
        no_content(await api.delete(location))
    finally:
        no_content(await api.delete(f"/nodes/{SEED_NODE}/containers/{name}"))

    no_content(await api.post(f"/nodes/{SECOND_NODE}/reboot"))

    async def back() -> int:
        return (await api.post(f"/nodes/{SECOND_NODE}/ping")).status

    await eventually(back, lambda s: s == 200, PATIENCE, "the rebooted node answering")


# A container's life across both backends ---------------------------------------------------------


@needs_core0
@pytest_twisted.ensureDeferred
async def test_container_lifecycle_across_both_backends(api: Api, sim: Sim, nodes_file: Path) -> None:
    name = unique("life")
    base = f"/nodes/{SEED_NODE}/containers"
    expect(await api.post(base, json={"name": name, "hostname": name, "flist": DOCS_FLIST,
                                      "nics": [{"type": "default"}]}), 201)
    # AYS lists it, and the node runs it (corex, tagged with its name).
    listed = {c["name"]: c for c in body_of(await api.get(base), "ListContainers")}
    assert listed[name]["status"] == "running"
    assert name in await containers_on_node(nodes_file, SEED_NODE)

    # The core0 backend finds it and runs a process in it.
    reply = expect(await api.post(f"{base}/{name}/processes", json={
        "name": "/bin/sleep", "args": ["600"]}), 202)
    job = (reply.header("location") or "").rsplit("/", 1)[-1]
    jobs = body_of(await api.get(f"{base}/{name}/jobs"), "ListContainerJobs")
    assert job in [j["id"] for j in jobs]
    no_content(await api.delete(f"{base}/{name}/jobs/{job}"))

    async def job_ids() -> list[str]:
        return [j["id"] for j in (await api.get(f"{base}/{name}/jobs")).json()]

    await eventually(job_ids, lambda ids: job not in ids, PATIENCE, "the killed job gone")

    # Stop and delete through AYS: gone from AYS and from the node.
    no_content(await api.post(f"{base}/{name}/stop"))
    assert body_of(await api.get(f"{base}/{name}"), "GetContainer")["status"] == "halted"
    assert name not in await containers_on_node(nodes_file, SEED_NODE)
    error_of(await api.get(f"{base}/{name}/jobs"), 404, name)
    expect(await api.post(f"{base}/{name}/start"), 201)
    assert name in await containers_on_node(nodes_file, SEED_NODE)
    no_content(await api.delete(f"{base}/{name}"))
    error_of(await api.get(f"{base}/{name}"), 404, name)
    assert name not in [c["name"] for c in (await api.get(base)).json()]
    assert name not in await containers_on_node(nodes_file, SEED_NODE)
    assert await sim.service("container", name) is None


@pytest_twisted.ensureDeferred
async def test_container_blueprint_and_view(api: Api, sim: Sim) -> None:
    """What the create posts (Q9: no hwaddr) and what GET shows back."""
    name = unique("bp")
    base = f"/nodes/{SEED_NODE}/containers"
    body = {"name": name, "hostname": "h-" + name, "flist": DOCS_FLIST, "ports": ["8080:80"],
            "nics": [{"type": "default", "hwaddr": "52:54:00:aa:bb:cc"}],
            "initProcesses": [{"name": "/bin/sleep", "args": ["100"], "environment": ["A=1"]}]}
    expect(await api.post(base, json=body), 201)
    try:
        content = await posted(sim, f"container_{name}_install_")
        data = content[f"container__{name}"]
        assert data["node"] == SEED_NODE and data["ports"] == ["8080:80"]
        assert "hwaddr" not in data["nics"][0]
        assert content["actions"] == [{"action": "install", "actor": "container",
                                       "service": name, "force": False}]
        view = body_of(await api.get(f"{base}/{name}"), "GetContainer")
        assert view["hostname"] == "h-" + name and view["ports"] == ["8080:80"]
        assert view["initprocesses"][0]["args"] == ["100"]
        assert view["status"] == "running"
        error_of(await api.get(f"/nodes/{SECOND_NODE}/containers/{name}"), 404, name)
        error_of(await api.post(base, json=body), 409, name)
    finally:
        no_content(await api.delete(f"{base}/{name}"))


# Bridges -----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bridge_round_trip(api: Api, nodes_file: Path) -> None:
    name = unique("br")
    base = f"/nodes/{SEED_NODE}/bridges"
    setting = {"cidr": "10.42.0.1/24", "start": "10.42.0.10", "end": "10.42.0.100"}
    reply = expect(await api.post(base, json={"name": name, "networkMode": "dnsmasq",
                                              "nat": True, "setting": setting}), 201)
    assert reply.header("location") == f"{base}/{name}"
    assert name in await on_node(nodes_file, SEED_NODE, "bridge.list")
    bridge = body_of(await api.get(f"{base}/{name}"), "GetBridge")
    assert bridge == {"name": name, "setting": setting, "status": "up"}
    assert bridge in body_of(await api.get(base), "ListBridges")
    error_of(await api.get(f"/nodes/{SECOND_NODE}/bridges/{name}"), 404, name)
    no_content(await api.delete(f"{base}/{name}"))
    assert name not in await on_node(nodes_file, SEED_NODE, "bridge.list")
    error_of(await api.get(f"{base}/{name}"), 404, name)


# Storage pools, filesystems, snapshots -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_storage_pool_filesystem_snapshot_round_trip(api: Api, nodes_file: Path) -> None:
    pool, fs, snap = unique("sp"), unique("fs"), unique("snap")
    node = SECOND_NODE
    base = f"/nodes/{node}/storagepools"
    expect(await api.post(base, json={"name": pool, "dataProfile": "single",
                                      "metadataProfile": "single", "devices": ["/dev/sdc"]}), 201)
    try:
        labels = [b.get("label") for b in await on_node(nodes_file, node, "btrfs.list")]
        assert f"sp_{pool}" in labels
        info = body_of(await api.get(f"{base}/{pool}"), "GetStoragePoolInfo")
        assert info["name"] == pool and info["mountpoint"] == f"/mnt/storagepools/{pool}"
        assert info["totalCapacity"] > 0 and info["dataProfile"] == "single"
        assert pool in [p["name"] for p in body_of(await api.get(base), "ListStoragePools")]
        devices = body_of(await api.get(f"{base}/{pool}/devices"), "ListStoragePoolDevices")
        assert [d["deviceName"] for d in devices] == ["/dev/sdc"] and devices[0]["uuid"]
        device = body_of(await api.get(f"{base}/{pool}/devices/{devices[0]['uuid']}"),
                         "GetStoragePoolDeviceInfo")
        assert device == devices[0]
        error_of(await api.post(base, json={"name": unique("sp"), "dataProfile": "single",
                                            "metadataProfile": "single",
                                            "devices": ["/dev/nosuch"]}), 400, "/dev/nosuch")

        # Devices: add one, then remove it.
        no_content(await api.post(f"{base}/{pool}/devices", json=["/dev/sdb"]))
        devices = body_of(await api.get(f"{base}/{pool}/devices"), "ListStoragePoolDevices")
        added = next(d for d in devices if d["deviceName"] == "/dev/sdb")
        assert added["uuid"]
        reply = no_content(await api.delete(f"{base}/{pool}/devices/{added['uuid']}"))
        assert reply.header("location") == f"{base}/{pool}/devices/{added['uuid']}"
        devices = body_of(await api.get(f"{base}/{pool}/devices"), "ListStoragePoolDevices")
        assert [d["deviceName"] for d in devices] == ["/dev/sdc"]
        # A removed device keeps its partition (AYS does not wipe it); wipe
        # it so that the disk is free again for the other tests.
        await on_node(nodes_file, node, "disk.mktable", {"disk": "sdb", "table_type": "gpt"})

        # A filesystem and a snapshot of it.
        expect(await api.post(f"{base}/{pool}/filesystems",
                              json={"name": fs, "quota": 10, "readOnly": False}), 201)
        assert body_of(await api.get(f"{base}/{pool}/filesystems"), "ListFilesystems") == [fs]
        info = body_of(await api.get(f"{base}/{pool}/filesystems/{fs}"), "GetFilesystemInfo")
        assert info == {"name": fs, "parent": pool, "quota": 10, "readOnly": False,
                        "sizeOnDisk": 0, "mountpoint": f"/mnt/storagepools/{pool}/filesystems/{fs}"}
        snaps = f"{base}/{pool}/filesystems/{fs}/snapshots"
        expect(await api.post(snaps, json={"name": snap}), 201)
        assert body_of(await api.get(snaps), "ListFilesystemSnapshots") == [snap]
        snapshot = body_of(await api.get(f"{snaps}/{snap}"), "GetFilesystemSnapshotInfo")
        assert snapshot["name"] == snap and snapshot["timestamp"] > 0
        subvolumes = await on_node(nodes_file, node, "btrfs.subvol_list",
                                   {"path": f"/mnt/storagepools/{pool}"})
        paths = [s.get("Path") or s.get("path") for s in subvolumes or []]
        assert any(str(p).endswith(f"snapshots/{fs}/{snap}") for p in paths), paths
        no_content(await api.post(f"{snaps}/{snap}/rollback"))
        no_content(await api.delete(f"{snaps}/{snap}"))
        assert body_of(await api.get(snaps), "ListFilesystemSnapshots") == []
        no_content(await api.delete(f"{base}/{pool}/filesystems/{fs}"))
        error_of(await api.get(f"{base}/{pool}/filesystems/{fs}"), 404, fs)
    finally:
        no_content(await api.delete(f"{base}/{pool}"))
    error_of(await api.get(f"{base}/{pool}"), 404, pool)
    labels = [b.get("label") for b in await on_node(nodes_file, node, "btrfs.list")]
    assert f"sp_{pool}" not in labels


# ZeroTier -------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_zerotier_round_trip(api: Api, sim: Sim, nodes_file: Path) -> None:
    nwid = "8056c2e21c" + uuid.uuid4().hex[:6]
    base = f"/nodes/{SEED_NODE}/zerotiers"
    reply = expect(await api.post(base, json={"nwid": nwid}), 201)
    assert reply.header("location") == f"{base}/{nwid}"
    content = await posted(sim, f"zerotier_{nwid}_join_")
    assert content[f"zerotier__{SEED_NODE}_{nwid}"] == {"node": SEED_NODE, "nwid": nwid}
    networks = await on_node(nodes_file, SEED_NODE, "zerotier.list")
    assert nwid in [n["nwid"] for n in networks]
    items = body_of(await api.get(base), "ListZerotier")
    assert {"name": f"{SEED_NODE}_{nwid}", "nwid": nwid, "status": "OK",
            "type": "private"} in items
    network = body_of(await api.get(f"{base}/{nwid}"), "GetZerotier")
    assert network["nwid"] == nwid and network["status"] == "OK"
    error_of(await api.post(base, json={"nwid": nwid}), 409, nwid)
    no_content(await api.delete(f"{base}/{nwid}"))
    error_of(await api.get(f"{base}/{nwid}"), 404, nwid)
    networks = await on_node(nodes_file, SEED_NODE, "zerotier.list")
    assert nwid not in [n["nwid"] for n in networks]


# VMs ---------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_vm_round_trip(api: Api, sim: Sim, nodes_file: Path) -> None:
    vmid = unique("vm")
    base = f"/nodes/{SEED_NODE}/vms"

    async def status() -> str:
        return str(body_of(await api.get(f"{base}/{vmid}"), "GetVM")["status"])

    async def domains(node: str = SEED_NODE) -> dict[str, str]:
        return {d["name"]: d["state"] for d in await on_node(nodes_file, node, "kvm.list")}

    async with storage_cluster(api, [SECOND_NODE]) as cluster, vdisk(api, cluster, id="d-" + vmid):
        reply = expect(await api.post(base, json={
            "id": vmid, "memory": 512, "cpu": 1, "nics": [{"type": "default", "id": "", "macaddress": ""}],
            "disks": [{"vdiskid": "d-" + vmid, "maxIOps": 100}],
            "userCloudInit": {"users": ["root"]}, "systemCloudInit": None}), 201)
        assert reply.header("location") == f"{base}/{vmid}"
        content = await posted(sim, f"vm_{vmid}_install_")
        assert content[f"vm__{vmid}"]["userCloudInit"] == '{"users": ["root"]}'
        assert content[f"vm__{vmid}"]["systemCloudInit"] == "null"
        vm = body_of(await api.get(f"{base}/{vmid}"), "GetVM")
        assert vm["status"] == "running" and vm["vnc"] > 0 and vm["cpu"] == 1
        assert {"id": vmid, "status": "running"} in body_of(await api.get(base), "ListVMs")
        assert vmid in await domains()

        no_content(await api.post(f"{base}/{vmid}/pause"))
        assert await status() == "paused"
        error_of(await api.post(f"{base}/{vmid}/pause"), 400, "paused")
        no_content(await api.post(f"{base}/{vmid}/resume"))
        assert await status() == "running"
        error_of(await api.put(f"{base}/{vmid}", json={"memory": 1024, "cpu": 2}), 400, "halted")
        no_content(await api.post(f"{base}/{vmid}/stop"))
        assert await status() == "halted"
        assert vmid not in await domains()
        no_content(await api.put(f"{base}/{vmid}", json={"memory": 1024, "cpu": 2, "nics": [],
                                                          "disks": []}))
        vm = body_of(await api.get(f"{base}/{vmid}"), "GetVM")
        assert (vm["memory"], vm["cpu"], vm["vnc"]) == (1024, 2, -1)
        no_content(await api.post(f"{base}/{vmid}/start"))
        assert await status() == "running"
        assert vmid in await domains()

        no_content(await api.post(f"{base}/{vmid}/migrate", json={"nodeid": SECOND_NODE}))
        moved = f"/nodes/{SECOND_NODE}/vms/{vmid}"
        assert body_of(await api.get(moved), "GetVM")["status"] == "running"
        error_of(await api.get(f"{base}/{vmid}"), 404, vmid)
        assert vmid in await domains(SECOND_NODE) and vmid not in await domains()

        no_content(await api.post(f"{moved}/shutdown"))

        async def moved_status() -> str:
            return str((await api.get(moved)).json().get("status"))

        await eventually(moved_status, lambda s: s == "halted", PATIENCE, "the vm shut down")
        no_content(await api.delete(moved))
        error_of(await api.get(moved), 404, vmid)
        assert vmid not in await domains(SECOND_NODE)


# Storage clusters and vdisks ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_storage_cluster_and_vdisk_round_trip(api: Api) -> None:
    label, disk = unique("sc"), unique("vd")
    reply = expect(await api.post("/storageclusters", json={
        "label": label, "servers": 2, "driveType": "hdd", "nodes": [SEED_NODE, SECOND_NODE]}), 201)
    assert reply.header("location") == f"/storageclusters/{label}"
    try:
        assert label in body_of(await api.get("/storageclusters"), "ListAllClusters")
        cluster = body_of(await api.get(f"/storageclusters/{label}"), "GetClusterInfo")
        assert cluster["status"] == "ready" and cluster["driveType"] == "hdd"
        assert cluster["nodes"] == [SEED_NODE, SECOND_NODE]
        assert len(cluster["dataStorage"]) == 2 and len(cluster["metadataStorage"]) == 1
        assert all(s["status"] == "ready" and s["port"] >= 2000 for s in cluster["dataStorage"])
        refused = unique("sc")
        error_of(await api.post("/storageclusters", json={
            "label": refused, "servers": 4, "driveType": "nvme", "nodes": [SEED_NODE]}),
            400, "nvme")
        assert refused not in body_of(await api.get("/storageclusters"), "ListAllClusters")

        reply = expect(await api.post("/vdisks", json={
            "id": disk, "size": 10, "type": "db", "storagecluster": label}), 201)
        assert reply.header("location") == f"/vdisks/{disk}"
        items = body_of(await api.get("/vdisks"), "ListVdisks")
        assert {"id": disk, "storageCluster": label, "storagecluster": label, "type": "db",
                "status": "halted"} in items
        error_of(await api.post("/vdisks/" + disk + "/resize", json={"newSize": 5}), 400, "smaller")
        no_content(await api.post(f"/vdisks/{disk}/resize", json={"newSize": 20}))
        vdisk = body_of(await api.get(f"/vdisks/{disk}"), "GetVdiskInfo")
        assert (vdisk["size"], vdisk["blocksize"], vdisk["storagecluster"]) == (20, 4096, label)
        no_content(await api.post(f"/vdisks/{disk}/rollback", json={"epoch": 1494925200}))
        assert body_of(await api.get(f"/vdisks/{disk}"), "GetVdiskInfo")["status"] == "running"
        error_of(await api.post("/vdisks", json={
            "id": disk, "size": 10, "type": "db", "storagecluster": label}), 409, disk)
        no_content(await api.delete(f"/vdisks/{disk}"))
        error_of(await api.get(f"/vdisks/{disk}"), 404, disk)
    finally:
        no_content(await api.delete(f"/storageclusters/{label}"))
    error_of(await api.get(f"/storageclusters/{label}"), 404, label)
    assert label not in body_of(await api.get("/storageclusters"), "ListAllClusters")


@needs_core0
def test_delete_a_node() -> None:
    """
    ``DELETE /nodes/{id}`` through AYS (on an environment of its own: the
    node stays gone): 204, then unknown to AYS, to the node list and to the
    direct calls; the other nodes are still served.
    """
    env = SplitEnvironment(nodes=3).start()
    try:
        listed = {n["id"] for n in call(env.url, "GET", "/nodes").json()}
        [third] = sorted(listed - {SEED_NODE, SECOND_NODE})
        assert call(env.url, "GET", f"/nodes/{third}/mem").status == 200
        assert call(env.url, "DELETE", f"/nodes/{third}").status == 204
        code, _ = http_json(f"{env.ays_url}/ays/repository/{REPO}/service/node.g8os/{third}")
        assert code == 404
        assert call(env.url, "GET", f"/nodes/{third}").status == 404
        assert third not in {n["id"] for n in call(env.url, "GET", "/nodes").json()}
        reply = call(env.url, "GET", f"/nodes/{third}/mem")
        assert reply.status == 404 and third in reply.json()["error"]
        assert call(env.url, "DELETE", f"/nodes/{third}").status == 404
        assert call(env.url, "GET", f"/nodes/{SEED_NODE}/mem").status == 200
    finally:
        env.stop()
