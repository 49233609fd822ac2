"""
The AYS simulator's actions over the real core0 Redis protocol: core0sim
(real ``redis-server`` children) and the simulator in this process, the
simulator's API over real HTTP on loopback.  The node model behind
core0sim is inspected directly to see each action's effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from plugins.ayssim.core0_commands import Core0Commands
from plugins.ayssim.node_commands import CommandFailed, NodeAddress
from plugins.ayssim.nodelist import NodeListSeeder
from plugins.ayssim.simulator import Simulator
from plugins.core0 import shapes
from plugins.core0sim.service import Core0SimService
from plugins.poolsim.node import Node
from plugins.poolsim.pool import SEED_CONTAINER
from testbed.ports import free_port
from tests.support.ayssim import REPO, Served, act, tagged
from tests.support.polling import wait_for

NODE = "525400123456"
OTHER = "525400123457"
R = f"/ays/repository/{REPO}"


@pytest.fixture(scope="module")
def core0sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core0SimService]:
    path = tmp_path_factory.mktemp("core0sim") / "nodes.toml"
    service = Core0SimService(nodes=2, nodes_per_redis=2, config_out=str(path), reboot_seconds=0.2)
    service.startService()
    pytest_twisted.blockon(service.ready)
    yield service
    pytest_twisted.blockon(service.stopService())


@pytest.fixture
def served(core0sim: Core0SimService) -> Iterator[Served]:
    """Here (instead of the model pool's): the simulator acting on core0sim's nodes over Redis."""
    commands = Core0Commands(timeout=5.0)
    sim = Simulator(commands, default_repository=REPO, wait_timeout=5.0, poll_interval=0.05)
    assert core0sim.config_out is not None
    seeder = NodeListSeeder(sim, core0sim.config_out, REPO, interval=0.05)
    seeder.startService()
    served = Served(sim)
    yield served
    seeder.stopService()
    pytest_twisted.blockon(served.stop())
    pytest_twisted.blockon(commands.close())


def model(core0sim: Core0SimService, node: str = NODE) -> Node:
    assert core0sim.pool is not None
    return core0sim.pool.nodes[node]


async def apply(served: Served, name: str, content: str) -> dict[str, Any]:
    code, body = await served.post_blueprint(name, content)
    assert code == 200, body
    run = await served.run()
    assert run["state"] == "ok", [j["logs"] for s in run["steps"] for j in s["jobs"] if j["state"] != "ok"]
    return run


@pytest_twisted.ensureDeferred
async def test_nodes_and_seed_container_from_core0sim(served: Served, core0sim: Core0SimService) -> None:
    await wait_for(lambda: served.sim.repositories[REPO].find("container", SEED_CONTAINER), "seed container")
    code, items, _ = await served.request("GET", f"{R}/service/node.g8os?fields=hostname,redisAddr,redisPort")
    ports = {e.id: e.port for e in core0sim.entries}
    assert {i["name"]: i["data"] for i in items} == {
        NODE: {"hostname": "core0node", "redisAddr": "127.0.0.1", "redisPort": ports[NODE]},
        OTHER: {"hostname": f"node-{OTHER}", "redisAddr": "127.0.0.1", "redisPort": ports[OTHER]}}
    # Both nodes share one redis-server: the second one is in database 1.
    other = served.sim.repositories[REPO].find("node", OTHER)
    assert other is not None and served.sim.node_address(other).db == 1
    code, items, _ = await served.request(
        "GET", f"{R}/service/container?parent=node.g8os!{NODE}&fields=flist,hostname,status")
    assert code == 200
    assert items == [{"role": "container", "name": SEED_CONTAINER, "data": {
        "flist": next(iter(tagged(model(core0sim), SEED_CONTAINER))).arguments["root"],
        "hostname": SEED_CONTAINER, "status": "running"}}]


@pytest_twisted.ensureDeferred
async def test_container_install_and_stop_on_the_node(served: Served, core0sim: Core0SimService) -> None:
    node = model(core0sim)
    await apply(served, "c_install", f"""
container__web1:
  node: "{NODE}"
  flist: https://hub.example.org/ubuntu.flist
  hostname: web1
  ports: ["8080:80"]
  nics: [{{type: default}}]
  initProcesses: [{{name: /bin/sleep, args: ["3600"]}}]
actions: [{{action: install, actor: container, service: web1}}]
""")
    [container] = tagged(node, "web1")
    assert container.arguments["hostname"] == "web1" and container.arguments["port"] == {"8080": 80}
    processes = [j.arguments["name"] for j in container.jobs.values() if j.command == "core.system"]
    assert processes == ["/bin/sleep"]
    await apply(served, "c_stop", act("stop", "container", "web1"))
    assert tagged(node, "web1") == []
    code, web1, _ = await served.request("GET", f"{R}/service/container/web1")
    assert code == 200
    assert web1["data"]["status"] == "halted"


@pytest_twisted.ensureDeferred
async def test_storage_on_the_node(served: Served, core0sim: Core0SimService) -> None:
    node = model(core0sim, OTHER)
    await apply(served, "sp_install", f"""
storagepool__pool9:
  node: "{OTHER}"
  dataProfile: single
  metadataProfile: single
  devices: [{{device: /dev/sdd}}]
filesystem__fs9: {{storagePool: pool9, name: fs9}}
fssnapshot__snap9: {{filesystem: fs9, name: snap9}}
container__box9:
  node: "{OTHER}"
  flist: https://hub.example.org/ubuntu.flist
  mounts: [{{filesystem: fs9, target: /fs/pool9/fs9}}]
actions:
  - {{action: install, actor: fssnapshot, service: snap9}}
  - {{action: install, actor: container, service: box9}}
""")
    fs = node.btrfs["sp_pool9"]
    assert fs.mountpoint == "/mnt/storagepools/pool9"
    assert shapes.filesystem_path("pool9", "fs9") in fs.subvolumes
    assert shapes.snapshot_path("pool9", "fs9", "snap9") in fs.subvolumes
    [box] = tagged(node, "box9")
    assert box.arguments["mount"] == {shapes.filesystem_path("pool9", "fs9"): "/fs/pool9/fs9"}
    code, pool9, _ = await served.request("GET", f"{R}/service/storagepool/pool9")
    assert code == 200
    [device] = pool9["data"]["devices"]
    assert device["device"] == "/dev/sdd" and device["partUUID"]
    assert pool9["data"]["totalCapacity"] == 1999

    # Deleting the pool stops the container mounting its filesystem first.
    await apply(served, "sp_delete", act("delete", "storagepool", "pool9"))
    assert "sp_pool9" not in node.btrfs and tagged(node, "box9") == []


@pytest_twisted.ensureDeferred
async def test_bridge_zerotier_vm_reboot(served: Served, core0sim: Core0SimService) -> None:
    node = model(core0sim)
    zt = f"{NODE}_8056c2e21c000009"
    await apply(served, "net", f"""
bridge__br9: {{node: "{NODE}", networkMode: static, setting: {{cidr: 10.9.0.1/24}}}}
zerotier__{zt}: {{node: "{NODE}", nwid: "8056c2e21c000009"}}
vm__vm9: {{node: "{NODE}", memory: 256, cpu: 1}}
actions:
  - {{action: install, actor: bridge, service: br9}}
  - {{action: install, actor: zerotier, service: {zt}}}
  - {{action: install, actor: vm, service: vm9}}
""")
    assert node.bridges["br9"]["network"]["mode"] == "static"
    assert "8056c2e21c000009" in node.zerotiers
    code, member, _ = await served.request("GET", f"{R}/service/zerotier/{zt}")
    assert code == 200
    assert member["data"]["status"] == "OK" and member["data"]["type"] == "private"
    assert node.domains["vm9"].memory == 256
    await apply(served, "vm_pause", act("pause", "vm", "vm9"))
    assert node.domains["vm9"].state == "paused"
    await apply(served, "vm_stop", act("stop", "vm", "vm9"))
    assert "vm9" not in node.domains
    await apply(served, "cleanup", f"""
actions:
  - {{action: delete, actor: bridge, service: br9, force: true}}
  - {{action: delete, actor: zerotier, service: {zt}, force: true}}
""")
    assert "br9" not in node.bridges and "8056c2e21c000009" not in node.zerotiers

    before = node.boot_time
    await apply(served, "reboot", act("reboot", "node.g8os", NODE))
    await wait_for(lambda: node.running and node.boot_time != before, "node rebooted")


@pytest_twisted.ensureDeferred
async def test_core0_commands_answers_and_errors(core0sim: Core0SimService) -> None:
    commands = Core0Commands(timeout=2.0)
    entry = core0sim.entries[0]
    address = NodeAddress(entry.host, entry.port, db=entry.db, name=entry.id)
    try:
        assert str(await commands.execute(address, "core.ping", {})).startswith("PONG")
        with pytest.raises(CommandFailed) as info:
            await commands.execute(address, "corex.terminate", {"container": 999})
        assert info.value.state == "ERROR" and "no container with id '999'" in info.value.message
        with pytest.raises(CommandFailed) as info:
            await commands.execute(NodeAddress("127.0.0.1", free_port(), name="gone"), "core.ping", {})
        assert info.value.state == "UNREACHABLE"

        [seed] = tagged(model(core0sim), SEED_CONTAINER)
        facts = await commands.execute(address, "info.os", {}, container=seed.container_id)
        assert facts["hostname"] == SEED_CONTAINER
        job = await commands.spawn(address, "core.system", {"name": "/bin/sleep", "args": ["60"]},
                                   container=seed.container_id)
        assert seed.jobs[job].arguments["name"] == "/bin/sleep"
        await commands.execute(address, "job.kill", {"id": job, "signal": 15}, container=seed.container_id)
        await wait_for(lambda: job not in seed.jobs, "job killed")
    finally:
        await commands.close()
