"""
Blueprint parsing and execution: errors, input rules, parents, producers,
``init``, ``processChange`` and scheduling.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from plugins.ayssim.blueprints import BlueprintError, parse
from plugins.ayssim.controls import ActionFault
from plugins.ayssim.simulator import Simulator
from plugins.ayssim.templates import Catalogue, Template
from tests.support.ayssim import change_done, model_sim, repo, service
from tests.support.polling import wait_for

NODE = "525400123456"


async def execute(sim: Simulator, content: str) -> None:
    await sim.execute_blueprint(repo(sim), content)


async def failing(sim: Simulator, content: str) -> str:
    with pytest.raises(BlueprintError) as info:
        await execute(sim, content)
    return str(info.value)


POOL = f"""
storagepool__pool1:
  node: "{NODE}"
  dataProfile: raid1
  metadataProfile: raid1
  devices: [{{device: /dev/sdb}}, {{device: /dev/sdc}}]
"""
FILESYSTEM = POOL + """
filesystem__fs1:
  storagePool: pool1
  name: fs1
"""

# Parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "reason"), [
    ("container__a: [1", "invalid YAML"),
    ("- just a list", "a blueprint is a mapping"),
    ("containerweb1: {}", "is not of the form"),
    ("__web1: {}", "is not of the form"),
    ("nosuchactor__x: {}", "actor 'nosuchactor' does not exist"),
    ("container__we/b: {}", "may only hold"),
    ("container__web1: [1, 2]", "must be a mapping"),
    ("actions: {action: install}", "'actions' must be a list"),
    ("actions: [{actor: container}]", "'action' must be a non-empty string"),
    ("actions: [{action: install}]", "'actor' must be a non-empty string"),
    ("actions: [{action: install, actor: container, force: maybe}]", "'force' must be a boolean"),
    ("actions: [{action: install, actor: container, when: now}]", "unknown key"),
])
def test_parse_errors(content: str, reason: str) -> None:
    with pytest.raises(BlueprintError, match=reason):
        parse(content, Catalogue())


def test_parse_keeps_file_order_and_splits_actions() -> None:
    parsed = parse("b__x: {}\nactions:\n - {action: 'start, stop', actor: b, service: x}\na__y:\n",
                   Catalogue([Template("a", ()), Template("b", ())]))
    assert [(s.actor, s.instance, s.arguments) for s in parsed.services] == [("b", "x", {}), ("a", "y", {})]
    [entry] = parsed.actions
    assert entry.actions == ("start", "stop") and entry.service == "x" and entry.force is False


def test_empty_blueprint_is_nothing_to_do() -> None:
    parsed = parse("", Catalogue())
    assert parsed.services == () and parsed.actions == ()


# New services: schema -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unknown_field_and_bad_values_fail() -> None:
    sim, _, _ = model_sim()
    assert "'nope' is not in the schema of bridge" in await failing(
        sim, f'bridge__br0: {{node: "{NODE}", nope: 1}}')
    assert "not one of none, static, dnsmasq" in await failing(
        sim, f'bridge__br0: {{node: "{NODE}", networkMode: bogus}}')
    assert "no field 'hwaddr' in Nic" in await failing(
        sim, f'container__c: {{node: "{NODE}", nics: [{{type: default, hwaddr: "aa"}}]}}')
    assert "out of range for UInt16" in await failing(sim, f'vm__vm1: {{node: "{NODE}", memory: 70000}}')
    # An unquoted node id is read as a number by YAML: AYS cannot use it.
    assert "expected text" in await failing(sim, "bridge__br0: {node: 525400123456}")
    assert repo(sim).find("bridge", "br0") is None


@pytest_twisted.ensureDeferred
async def test_new_service_has_every_field_with_defaults() -> None:
    sim, _, _ = model_sim()
    await execute(sim, f'vm__vm1: {{node: "{NODE}", memory: 2048}}')
    vm = service(sim, "vm", "vm1")
    assert vm.data["memory"] == 2048 and vm.data["cpu"] == 0
    assert vm.data["vnc"] == -1 and vm.data["status"] == "deploying" and vm.data["nics"] == []
    assert vm.state == "ok"
    assert (vm.actions["input"], vm.actions["init"], vm.actions["install"]) == ("ok", "ok", "new")
    cluster_template = Catalogue().get("storage_cluster")
    assert cluster_template is not None
    assert cluster_template.initial_data()["nrServer"] == 256
    assert cluster_template.initial_data()["diskType"] == "ssd"


# Input rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "reason"), [
    (f'container__c: {{node: "{NODE}", filesystems: [fs1]}}', "filesystems must not be given"),
    (f'vm__v: {{node: "{NODE}", vdisks: [d1]}}', "vdisks must not be given"),
    ("filesystem__f: {storagePool: pool1, name: f, mountpoint: /x}", "mountpoint must not be given"),
    ("filesystem__f: {storagePool: pool1}", "name is required"),
    ("fssnapshot__s: {filesystem: fs1, path: /x}", "path must not be given"),
    (f'storagepool__p: {{node: "{NODE}", devices: [{{device: /dev/sdb}}]}}', "metadataProfile is required"),
    (f'storagepool__p: {{node: "{NODE}", metadataProfile: raid1, dataProfile: raid1}}',
     "devices is required"),
    ("storage_cluster__c: {label: c, nrServer: 3, nodes: ['525400123456', '525400123457']}",
     "must be divisible"),
    ("storage_cluster__c: {label: c, nrServer: 2}", "nodes is required"),
])
@pytest_twisted.ensureDeferred
async def test_input_rules_reject(content: str, reason: str) -> None:
    sim, _, _ = model_sim()
    message = await failing(sim, content)
    assert message.startswith("input of ") and reason in message
    assert len(repo(sim).services) == 2  # only the nodes


@pytest_twisted.ensureDeferred
async def test_container_input_derives_links() -> None:
    sim, _, _ = model_sim()
    await execute(sim, FILESYSTEM + f"""
bridge__br0: {{node: "{NODE}"}}
container__web1:
  node: "{NODE}"
  flist: x
  nics: [{{type: bridge, id: br0}}, {{type: default}}]
  mounts: [{{filesystem: fs1, target: /fs/pool1/fs1}}, {{filesystem: ghost, target: /g}}]
""")
    web1 = service(sim, "container", "web1")
    assert web1.data["filesystems"] == ["fs1", "ghost"]
    assert web1.data["bridges"] == ["br0"]
    # Producers: the parent, the filesystem and the bridge; the missing one is skipped.
    assert [p.name for p in web1.producers] == [NODE, "fs1", "br0"]
    assert web1 in service(sim, "filesystem", "fs1").consumers


@pytest_twisted.ensureDeferred
async def test_vm_input_derives_vdisks() -> None:
    sim, _, _ = model_sim()
    await execute(sim, f'vm__vm1: {{node: "{NODE}", disks: [{{vdiskid: d1, maxIOps: 5}}, {{vdiskid: d2}}]}}')
    assert service(sim, "vm", "vm1").data["vdisks"] == ["d1", "d2"]


# Parents and producers ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_missing_parent_fails() -> None:
    sim, _, _ = model_sim()
    assert "could not find parent node!999" in await failing(sim, 'bridge__br0: {node: "999"}')
    assert "could not find parent node!" in await failing(sim, "bridge__br0: {}")
    assert "could not find parent storagepool!nope" in await failing(
        sim, "filesystem__f: {storagePool: nope, name: f}")


@pytest_twisted.ensureDeferred
async def test_filesystem_parent_chain() -> None:
    sim, _, _ = model_sim()
    await execute(sim, FILESYSTEM + "fssnapshot__s1: {filesystem: fs1, name: s1}\n")
    snapshot = service(sim, "fssnapshot", "s1")
    assert [s.name for s in snapshot.ancestors()] == [NODE, "pool1", "fs1"]
    assert snapshot.path.endswith(f"node!{NODE}/storagepool!pool1/filesystem!fs1/fssnapshot!s1")


@pytest_twisted.ensureDeferred
async def test_vdisk_needs_a_storage_cluster() -> None:
    sim, _, _ = model_sim()
    assert "not enough producers of role storage_cluster" in await failing(
        sim, "vdisk__d1: {size: 10, storageCluster: c1}")


@pytest_twisted.ensureDeferred
async def test_vdisk_links_some_cluster_for_a_missing_name() -> None:
    sim, _, _ = model_sim()
    await execute(sim, "storage_cluster__c1: {label: c1, nrServer: 2, diskType: ssd, "
                       f"nodes: ['{NODE}']}}\n")
    await execute(sim, "vdisk__d1: {size: 10, storageCluster: other}\n")
    vdisk = service(sim, "vdisk", "d1")
    assert [p.name for p in vdisk.producers] == ["c1"]
    assert vdisk.data["tlogStoragecluster"] == "" and vdisk.data["storageCluster"] == "other"


@pytest_twisted.ensureDeferred
async def test_failing_init_keeps_the_service_in_error() -> None:
    sim, _, _ = model_sim()
    sim.faults.actions.append(ActionFault("bridge", "init", error="init exploded"))
    message = await failing(sim, f'bridge__br0: {{node: "{NODE}"}}')
    assert message == "init of bridge!br0 failed: init exploded"
    br0 = service(sim, "bridge", "br0")
    assert br0.actions["init"] == "error" and br0.state == "error"


# Existing services ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_existing_service_data_is_not_overwritten() -> None:
    clock = Clock()
    sim, _, _ = model_sim(clock=clock)
    await execute(sim, f'bridge__br0: {{node: "{NODE}", nat: true}}')
    await execute(sim, f'bridge__br0: {{node: "{NODE}", nat: false}}')
    assert service(sim, "bridge", "br0").data["nat"] is True
    # A processChange would be scheduled on the simulator's clock: nothing
    # is, and running what is due calls none.
    assert clock.getDelayedCalls() == []
    clock.advance(0)
    assert sim.changes == []  # bridge has no processChange


@pytest_twisted.ensureDeferred
async def test_changed_values_go_to_process_change() -> None:
    sim, _, _ = model_sim()
    calls: list[tuple[str, dict[str, Any]]] = []

    async def record(ctx: Any) -> None:
        calls.append((ctx.service.name, dict(ctx.arguments)))

    sim.handlers[("vdisk", "processChange")] = record
    await execute(sim, "storage_cluster__c1: {label: c1, nrServer: 2, diskType: ssd, "
                       f"nodes: ['{NODE}']}}\n")
    await execute(sim, "vdisk__d1: {size: 10, storageCluster: c1}\n")
    await execute(sim, "vdisk__d1: {size: 10}\n")
    await execute(sim, "vdisk__d1: {size: 20}\n")
    await wait_for(lambda: calls, "processChange")
    assert calls == [("d1", {"size": 20})]
    assert service(sim, "vdisk", "d1").data["size"] == 10
    change = await change_done(sim)
    assert (change["state"], change["service"]) == ("ok", "vdisk!d1")


# Scheduling -------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scheduling_rules() -> None:
    sim, _, _ = model_sim()
    await execute(sim, f'bridge__br0: {{node: "{NODE}"}}\ncontainer__c1: {{node: "{NODE}", flist: x}}')
    br0, c1 = service(sim, "bridge", "br0"), service(sim, "container", "c1")
    br0.actions["install"] = c1.actions["install"] = c1.actions["stop"] = "ok"

    await execute(sim, "actions: [{action: install, actor: bridge, service: br0}]")
    assert br0.actions["install"] == "ok"
    await execute(sim, "actions: [{action: install, actor: bridge, service: br0, force: true}]")
    assert br0.actions["install"] == "scheduled"
    await execute(sim, "actions: [{action: 'start,stop,nosuch', actor: container, service: c1}]")
    assert (c1.actions["start"], c1.actions["stop"]) == ("scheduled", "scheduled")
    # The actor must match, not the role.
    await execute(sim, "actions: [{action: reboot, actor: node, service: '525400123456'}]")
    assert service(sim, "node", NODE).actions["reboot"] == "new"
    await execute(sim, "actions: [{action: reboot, actor: node.g8os, service: '525400123456'}]")
    assert service(sim, "node", NODE).actions["reboot"] == "scheduled"


@pytest_twisted.ensureDeferred
async def test_services_are_created_before_actions_are_scheduled() -> None:
    sim, _, _ = model_sim()
    await execute(sim, f"""
actions:
  - {{action: install, actor: bridge, service: br0}}
bridge__br0: {{node: "{NODE}"}}
""")
    assert service(sim, "bridge", "br0").actions["install"] == "scheduled"
