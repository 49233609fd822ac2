"""
Action handlers acting on simulated nodes (in-process model pool; the
same handlers over the core0 Redis protocol are covered with core0sim).
"""

from __future__ import annotations

import pytest
import pytest_twisted

from plugins.ayssim.blueprints import BlueprintError
from plugins.ayssim.runs import Run
from plugins.ayssim.simulator import Simulator
from plugins.core0 import shapes
from tests.support.ayssim import act, change_done, finished, model_sim, repo, service, tagged
from tests.support.polling import wait_for

NODE = "525400123456"
OTHER = "525400123457"


async def apply(sim: Simulator, content: str) -> Run:
    """Execute a blueprint, run what it scheduled, expect success."""
    await sim.execute_blueprint(repo(sim), content)
    run = await finished(await sim.create_run(repo(sim)))
    assert run.state == "ok", [(j.service.name, j.action, j.logs) for j in run.jobs if j.state == "error"]
    return run


STORAGE = f"""
storagepool__pool1:
  node: "{NODE}"
  dataProfile: raid1
  metadataProfile: raid1
  devices: [{{device: /dev/sdb}}, {{device: /dev/sdc}}]
filesystem__fs1: {{storagePool: pool1, name: fs1, quota: 100}}
actions:
  - {{action: install, actor: filesystem, service: fs1}}
"""


@pytest_twisted.ensureDeferred
async def test_container_lifecycle_on_the_node() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    await apply(sim, STORAGE)
    await apply(sim, f"""
bridge__br0: {{node: "{NODE}", networkMode: none}}
container__web1:
  node: "{NODE}"
  flist: https://hub.example.org/ubuntu.flist
  hostname: web1
  ports: ["8080:80"]
  nics: [{{type: default}}, {{type: bridge, id: br0}}]
  mounts: [{{filesystem: fs1, target: /fs/pool1/fs1}}]
  initProcesses: [{{name: /bin/sleep, args: ["3600"], environment: ["A=1"]}}]
actions:
  - {{action: install, actor: container, service: web1}}
""")
    [container] = tagged(node, "web1")
    arguments = container.arguments
    assert arguments["root"] == "https://hub.example.org/ubuntu.flist"
    assert arguments["hostname"] == "web1" and arguments["port"] == {"8080": 80}
    assert arguments["mount"] == {"/mnt/storagepools/pool1/filesystems/fs1": "/fs/pool1/fs1"}
    assert [n["type"] for n in arguments["nics"]] == ["default", "bridge"]
    assert any(j.arguments.get("name") == "/bin/sleep" and j.arguments.get("env") == {"A": "1"}
               for j in container.jobs.values())
    web1 = service(sim, "container", "web1")
    assert web1.data["status"] == "running"
    # The bridge was installed first (a producer).
    assert "br0" in node.bridges

    await apply(sim, act("stop", "container", "web1"))
    assert tagged(node, "web1") == []
    assert web1.data["status"] == "halted"

    await apply(sim, act("start", "container", "web1"))
    assert len(tagged(node, "web1")) == 1 and web1.data["status"] == "running"


@pytest_twisted.ensureDeferred
async def test_bridge_install_and_delete() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    await apply(sim, f"""
bridge__br0:
  node: "{NODE}"
  hwaddr: "02:00:00:00:00:01"
  networkMode: dnsmasq
  nat: true
  setting: {{cidr: 10.10.0.1/24, start: 10.10.0.10, end: 10.10.0.100}}
actions: [{{action: install, actor: bridge, service: br0}}]
""")
    bridge = node.bridges["br0"]
    assert bridge["hwaddr"] == "02:00:00:00:00:01"
    assert bridge["network"] == {"mode": "dnsmasq", "nat": True, "settings": {
        "cidr": "10.10.0.1/24", "start": "10.10.0.10", "end": "10.10.0.100"}}
    assert service(sim, "bridge", "br0").data["status"] == "up"
    await apply(sim, act("delete", "bridge", "br0"))
    assert "br0" not in node.bridges
    assert service(sim, "bridge", "br0").data["status"] == "down"


@pytest_twisted.ensureDeferred
async def test_storage_pool_filesystem_snapshot() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    await apply(sim, STORAGE)
    fs = node.btrfs["sp_pool1"]
    assert (fs.data, fs.metadata, fs.mountpoint) == ("raid1", "raid1", "/mnt/storagepools/pool1")
    pool1 = service(sim, "storagepool", "pool1").data
    uuids = {p["partuuid"] for d in node.disks if d["name"] in ("sdb", "sdc") for p in d["children"]}
    assert {d["partUUID"] for d in pool1["devices"]} == uuids
    assert [d["device"] for d in pool1["devices"]] == ["/dev/sdb", "/dev/sdc"]
    assert pool1["mountpoint"] == "/mnt/storagepools/pool1"
    assert pool1["totalCapacity"] == 199 and 0 < pool1["freeCapacity"] <= 199
    path = shapes.filesystem_path("pool1", "fs1")
    assert fs.subvolumes[path]["quota"] == 100
    assert service(sim, "filesystem", "fs1").data["mountpoint"] == path

    node.files.put(f"{path}/hello", b"v1")
    await apply(sim, "fssnapshot__snap1: {filesystem: fs1, name: snap1}\n" +
                act("install", "fssnapshot", "snap1"))
    snap_path = shapes.snapshot_path("pool1", "fs1", "snap1")
    assert snap_path in fs.subvolumes
    snap = service(sim, "fssnapshot", "snap1").data
    assert snap["path"] == snap_path and snap["timestamp"] > 0

    node.files.put(f"{path}/hello", b"v2")
    await apply(sim, act("rollback", "fssnapshot", "snap1"))
    assert node.files.files[f"{path}/hello"] == b"v1"
    assert fs.subvolumes[path]["quota"] == 100

    await apply(sim, act("delete", "fssnapshot", "snap1"))
    assert snap_path not in fs.subvolumes
    await apply(sim, act("delete", "filesystem", "fs1"))
    assert path not in fs.subvolumes
    await apply(sim, act("delete", "storagepool", "pool1"))
    assert "sp_pool1" not in node.btrfs
    assert not any(d.get("children") for d in node.disks if d["name"] in ("sdb", "sdc"))


@pytest_twisted.ensureDeferred
async def test_storage_pool_devices_change() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    await apply(sim, STORAGE)
    devices = service(sim, "storagepool", "pool1").data["devices"]
    kept = devices[0]
    await sim.execute_blueprint(repo(sim), f"""
storagepool__pool1:
  devices:
    - {{device: {kept["device"]}, partUUID: {kept["partUUID"]}, status: healthy}}
    - {{device: /dev/sdc, partUUID: {devices[1]["partUUID"]}, status: healthy}}
    - {{device: /dev/sdd}}
""")
    assert (await change_done(sim))["state"] == "ok", sim.changes
    assert len(node.btrfs["sp_pool1"].devices) == 3
    await sim.execute_blueprint(repo(sim), f"storagepool__pool1: {{devices: [{{device: {kept['device']}}}]}}")
    assert (await change_done(sim, 2))["state"] == "ok", sim.changes
    assert [d["device"] for d in service(sim, "storagepool", "pool1").data["devices"]] == [kept["device"]]
    assert len(node.btrfs["sp_pool1"].devices) == 1


@pytest_twisted.ensureDeferred
async def test_zerotier_join_and_leave() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    name = f"{NODE}_8056c2e21c000001"
    await apply(sim, f'zerotier__{name}: {{node: "{NODE}", nwid: "8056c2e21c000001"}}\n' +
                act("install", "zerotier", name))
    assert "8056c2e21c000001" in node.zerotiers
    data = service(sim, "zerotier", name).data
    assert data["status"] == "OK" and data["type"] == "private"
    assert data["assignedAddresses"] and data["routes"][0]["via"] == ""
    assert data["name"] == node.zerotiers["8056c2e21c000001"]["name"]
    await apply(sim, act("delete", "zerotier", name))
    assert node.zerotiers == {}


@pytest_twisted.ensureDeferred
async def test_vm_lifecycle_and_migration() -> None:
    sim, pool, _ = model_sim()
    node, other = pool.nodes[NODE], pool.nodes[OTHER]
    await apply(sim, f"""
vm__vm1:
  node: "{NODE}"
  memory: 2048
  cpu: 2
  nics: [{{id: "100", type: vlan, macaddress: "52:54:00:00:00:01"}}]
  disks: [{{vdiskid: disk1, maxIOps: 2000}}]
actions: [{{action: install, actor: vm, service: vm1}}]
""")
    domain = node.domains["vm1"]
    assert (domain.cpu, domain.memory) == (2, 2048)
    assert domain.nics == [{"type": "vlan", "id": "100", "hwaddr": "52:54:00:00:00:01"}]
    assert domain.media == shapes.vm_media([{"vdiskid": "disk1", "maxIOps": 2000}])
    vm = service(sim, "vm", "vm1")
    assert vm.data["status"] == "running" and vm.data["vnc"] == domain.vnc

    await apply(sim, act("pause", "vm", "vm1"))
    assert domain.state == "paused" and vm.data["status"] == "paused"
    await apply(sim, act("resume", "vm", "vm1"))
    assert domain.state == "running" and vm.data["status"] == "running"

    # The migrate blueprint changes node (processChange) and schedules migrate.
    await apply(sim, f'vm__vm1: {{node: "{OTHER}"}}\n' + act("migrate", "vm", "vm1"))
    await wait_for(lambda: "vm1" in other.domains and vm.parent is not None and vm.parent.name == OTHER,
                   "migration")
    assert "vm1" not in node.domains
    assert vm.data["status"] == "running" and vm.data["node"] == OTHER

    await apply(sim, act("stop", "vm", "vm1"))
    assert other.domains == {} and vm.data["status"] == "halted" and vm.data["vnc"] == -1
    await apply(sim, act("start", "vm", "vm1"))
    assert "vm1" in other.domains and vm.data["status"] == "running"
    await apply(sim, act("shutdown", "vm", "vm1"))
    assert other.domains == {} and vm.data["status"] == "halted"


@pytest_twisted.ensureDeferred
async def test_vm_update_through_process_change() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    await apply(sim, f"""
vm__vm1:
  node: "{NODE}"
  memory: 512
  cpu: 1
  nics: [{{id: "100", type: vlan}}]
actions: [{{action: install, actor: vm, service: vm1}}]
""")
    await sim.execute_blueprint(repo(sim), """
vm__vm1:
  memory: 1024
  cpu: 2
  nics: [{id: "200", type: vlan}]
  disks: [{vdiskid: disk2, maxIOps: 10}]
""")
    assert (await change_done(sim))["state"] == "ok", sim.changes
    data = service(sim, "vm", "vm1").data
    assert (data["memory"], data["cpu"], data["vdisks"]) == (1024, 2, ["disk2"])
    domain = node.domains["vm1"]
    assert domain.nics == [{"type": "vlan", "id": "200", "hwaddr": ""}]
    assert domain.media == shapes.vm_media([{"vdiskid": "disk2", "maxIOps": 10}])


@pytest_twisted.ensureDeferred
async def test_vdisk_actions_and_resize() -> None:
    sim, _, _ = model_sim()
    await apply(sim, f"storage_cluster__c1: {{label: c1, nrServer: 2, diskType: ssd, nodes: ['{NODE}']}}\n"
                     "vdisk__d1: {size: 10, blocksize: 4096, type: db, storageCluster: c1}\n" +
                act("install", "vdisk", "d1"))
    d1 = service(sim, "vdisk", "d1")
    assert d1.data["status"] == "halted"
    await sim.execute_blueprint(repo(sim), "vdisk__d1: {size: 5}\n")
    change = await change_done(sim)
    assert change["state"] == "error" and "smaller" in change["message"]
    await sim.execute_blueprint(repo(sim), "vdisk__d1: {size: 20}\n")
    await change_done(sim, 2)
    assert d1.data["size"] == 20
    await apply(sim, act("rollback", "vdisk", "d1"))
    assert d1.data["status"] == "running"
    await apply(sim, act("pause", "vdisk", "d1"))
    assert d1.data["status"] == "halted"


@pytest_twisted.ensureDeferred
async def test_storage_cluster_deploys_and_deletes() -> None:
    sim, pool, _ = model_sim()
    await apply(sim, f"storage_cluster__c1: {{label: c1, nrServer: 4, diskType: ssd, "
                     f"nodes: ['{NODE}', '{OTHER}']}}\n" + act("install", "storage_cluster", "c1"))
    cluster = service(sim, "storage_cluster", "c1")
    assert cluster.data["status"] == "ready"
    ardbs = cluster.data["ardbs"]
    assert ardbs == [f"cluster_{NODE}_c1_sdb_data_0", f"cluster_{NODE}_c1_sdc_data_1",
                     f"cluster_{OTHER}_c1_sdb_data_2", f"cluster_{OTHER}_c1_sdc_data_3",
                     f"cluster_{OTHER}_c1_sdc_metadata_4"]
    assert cluster.data["filesystems"] == ardbs
    first = service(sim, "ardb", ardbs[0])
    assert first.data["bind"] == f"{pool.nodes[NODE].address}:2000"
    assert service(sim, "ardb", ardbs[4]).data["bind"] == f"{pool.nodes[OTHER].address}:2004"
    for name in ardbs:
        [container] = tagged(pool.nodes[name.split("_")[1]], name)
        assert container.arguments["host_network"] is True
        assert any(j.arguments.get("name") == "/bin/ardb-server" for j in container.jobs.values())
    assert f"sp_cluster_{NODE}_c1_sdb" in pool.nodes[NODE].btrfs

    await apply(sim, act("stop", "storage_cluster", "c1"))
    [container] = tagged(pool.nodes[NODE], ardbs[0])
    assert not any(j.arguments.get("name") == "/bin/ardb-server" for j in container.jobs.values())

    await apply(sim, act("delete", "storage_cluster", "c1"))
    assert cluster.data["status"] == "empty"
    for name in ardbs:
        assert repo(sim).find("ardb", name) is None and repo(sim).find("container", name) is None
        assert tagged(pool.nodes[name.split("_")[1]], name) == []
    assert f"sp_cluster_{NODE}_c1_sdb" not in pool.nodes[NODE].btrfs


@pytest_twisted.ensureDeferred
async def test_storage_cluster_needs_free_disks() -> None:
    sim, _, _ = model_sim()
    with pytest.raises(BlueprintError, match=f"node {NODE} has 1 free nvme disk\\(s\\), 4 needed"):
        await sim.execute_blueprint(repo(sim), f"storage_cluster__c1: {{label: c1, nrServer: 4, "
                                               f"diskType: nvme, nodes: ['{NODE}']}}")
    # Disks promised to another cluster's pools (not installed yet) are not free.
    await sim.execute_blueprint(repo(sim), f"storage_cluster__c2: {{label: c2, nrServer: 2, "
                                           f"diskType: ssd, nodes: ['{NODE}']}}")
    with pytest.raises(BlueprintError, match="has 0 free ssd disk"):
        await sim.execute_blueprint(repo(sim), f"storage_cluster__c3: {{label: c3, nrServer: 1, "
                                               f"diskType: ssd, nodes: ['{NODE}']}}")
    c3 = service(sim, "storage_cluster", "c3")
    assert c3.actions["init"] == "error" and c3.state == "error"


@pytest_twisted.ensureDeferred
async def test_node_reboot_and_unreachable_node() -> None:
    sim, pool, _ = model_sim()
    node = pool.nodes[NODE]
    before = node.boot_time
    await apply(sim, act("reboot", "node.g8os", NODE))
    await wait_for(lambda: node.running and node.boot_time != before, "reboot")
    # A node that does not answer makes the action fail with the reason.
    node.status = "halted"
    await sim.execute_blueprint(repo(sim),
                                f'bridge__br0: {{node: "{NODE}"}}\n' + act("install", "bridge", "br0"))
    run = await finished(await sim.create_run(repo(sim)))
    assert run.state == "error"
    assert "UNREACHABLE" in run.jobs[0].logs[-2]["log"]
    node.status = "running"
