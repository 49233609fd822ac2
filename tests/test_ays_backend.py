"""
The AYS backend's own logic against scripted AYS answers: start-up
(503 until AYS answers, retry with backoff, recovery, a lost repository),
parent checks of gets (Q13), name checks of creates, and the pre-checks
that answer 400/404/409 before anything is posted.  The end-to-end tests
run every operation against the AYS simulator.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import pytest
from treq.testing import StringStubbingResource, StubTreq
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from plugins.ays.backend import AysBackend
from plugins.ays.client import AysClient
from plugins.ays.runs import Timing
from rpoold.errors import BackendUnavailable, BadRequest, Conflict, NotFound, ServiceUnavailable
from rpoold.interfaces import (
    IBridges,
    IContainers,
    IFilesystems,
    IHealthCheck,
    INodes,
    IStorageClusters,
    IStoragePools,
    IVdisks,
    IVMs,
    IZerotiers,
)
from rpoold.nodes import INodeAgents, NodeAddress

JSON = {b"Content-Type": b"application/json"}
NODE = "525400123456"


def service(role: str, instance: str, parent: tuple[str, str] | None = None,
            **data: Any) -> dict[str, Any]:
    return {"key": "k", "name": instance, "role": role, "repository": "objstor", "data": data,
            "state": "ok", "path": "", "actions": [], "producers": [], "consumers": [],
            "children": [], "events": [],
            "parent": {"role": parent[0], "name": parent[1]} if parent else None}


class Scripted:
    """AYS answering from a service table; ``down`` refuses to answer."""

    def __init__(self) -> None:
        self.down = False
        self.repository = True
        self.services: dict[tuple[str, str], dict[str, Any]] = {
            ("node", NODE): service("node", NODE, redisAddr="127.0.0.1", hostname="core0node",
                                    status="running"),
        }
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: bytes, url: str, params: Any, headers: Any, data: bytes) -> Any:
        verb, path = method.decode(), urlparse(url).path
        self.calls.append((verb, path))
        if self.down:
            return 503, {}, b"down"
        if path == "/":
            return 200, {}, b"AYS"
        parts = path.strip("/").split("/")
        if parts[:2] == ["ays", "repository"] and len(parts) == 2:
            self.repository = True
            return 201, JSON, b'{"name": "objstor"}'
        if not self.repository:
            return 404, JSON, b'{"error": "Repository objstor doesn\'t exists"}'
        if len(parts) == 3:
            return 200, JSON, b'{"name": "objstor"}'
        if parts[3] == "service" and len(parts) == 6 and verb == "GET":
            role = parts[4].split(".")[0]
            found = self.services.get((role, parts[5]))
            if found is None:
                return 404, JSON, b'{"error": "Service not found"}'
            return 200, JSON, json.dumps(found).encode()
        if parts[3] == "service" and len(parts) == 5 and verb == "GET":
            role = parts[4].split(".")[0]
            items = [{"role": r, "name": n, "data": s["data"]}
                     for (r, n), s in self.services.items() if r == role]
            return 200, JSON, json.dumps(items).encode()
        return 500, JSON, json.dumps({"error": f"not scripted: {verb} {path}"}).encode()


@pytest.fixture
def ays() -> Scripted:
    return Scripted()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(request: pytest.FixtureRequest, ays: Scripted, clock: Clock) -> AysBackend:
    """The backend on the scripted AYS, with the ``agents`` fixture's nodes when a test takes it."""
    agents = request.getfixturevalue("agents") if "agents" in request.fixturenames else None
    client = AysClient("http://ays", "objstor", StubTreq(StringStubbingResource(ays)), clock)
    b = AysBackend(client, clock, Timing(run_timeout=5), agents=agents, retry_interval=1,
                   retry_max_interval=4)
    b.startService()
    return b


def run(d: Deferred[Any]) -> Any:
    """The result of an operation that needs no time to pass (or raise its error)."""
    assert d.called
    results: list[Any] = []
    d.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def test_provides_the_ays_families(backend: AysBackend) -> None:
    for interface in (INodes, IBridges, IStoragePools, IFilesystems, IZerotiers, IContainers,
                      IVMs, IStorageClusters, IVdisks, IHealthCheck):
        assert verifyObject(interface, backend)


def test_ready_at_once_when_ays_answers(backend: AysBackend, ays: Scripted) -> None:
    assert backend.ready
    assert run(backend.list_nodes()) == [
        {"id": NODE, "hostname": "core0node", "status": "running", "ipaddress": "127.0.0.1"}]
    assert run(backend.check_health())["ok"] is True


def test_503_until_ays_answers_then_recovers(ays: Scripted, clock: Clock) -> None:
    ays.down = True
    client = AysClient("http://ays", "objstor", StubTreq(StringStubbingResource(ays)), clock)
    backend = AysBackend(client, clock, Timing(), retry_interval=1, retry_max_interval=4)
    backend.startService()
    with pytest.raises(ServiceUnavailable) as caught:
        run(backend.list_nodes())
    assert caught.value.status == 503 and "not ready" in caught.value.message
    health = run(backend.check_health())
    assert health["ok"] is False and "503" in health["problem"]
    attempts = []
    for _ in range(4):
        attempts.append(len(ays.calls))
        clock.advance(4)
    assert attempts == sorted(attempts) and attempts[-1] > attempts[0]
    pauses = [c.getTime() - clock.seconds() for c in clock.getDelayedCalls()]
    assert pauses and max(pauses) <= 4
    ays.down = False
    clock.advance(4)
    assert backend.ready
    assert run(backend.get_node(NODE))["hostname"] == "core0node"
    backend.stopService()
    assert clock.getDelayedCalls() == []


def test_stopping_while_waiting_for_ays_cancels_the_retries(ays: Scripted, clock: Clock) -> None:
    ays.down = True
    client = AysClient("http://ays", "objstor", StubTreq(StringStubbingResource(ays)), clock)
    backend = AysBackend(client, clock, Timing(), retry_interval=1)
    backend.startService()
    assert clock.getDelayedCalls()
    backend.stopService()
    assert clock.getDelayedCalls() == []


def test_a_lost_repository_is_created_again(backend: AysBackend, ays: Scripted,
                                             clock: Clock) -> None:
    ays.repository = False
    with pytest.raises(ServiceUnavailable, match="repository 'objstor'"):
        run(backend.get_node(NODE))
    assert ("POST", "/ays/repository") in ays.calls
    assert backend.ready
    assert run(backend.get_node(NODE))["id"] == NODE


def test_gets_check_the_parent_in_the_url(backend: AysBackend, ays: Scripted) -> None:
    other = "525400123457"
    ays.services[("node", other)] = service("node", other)
    ays.services[("bridge", "br0")] = service("bridge", "br0", ("node", NODE),
                                              setting={"cidr": "10.0.0.1/24"}, status="up")
    assert run(backend.get_bridge(NODE, "br0"))["setting"]["cidr"] == "10.0.0.1/24"
    with pytest.raises(NotFound, match=f"does not exist on node '{other}'"):
        run(backend.get_bridge(other, "br0"))
    with pytest.raises(NotFound, match="node '525400999999' does not exist"):
        run(backend.get_bridge("525400999999", "br0"))


def test_filesystem_gets_check_the_whole_chain(backend: AysBackend, ays: Scripted) -> None:
    ays.services[("storagepool", "p1")] = service("storagepool", "p1", ("node", NODE))
    ays.services[("storagepool", "p2")] = service("storagepool", "p2", ("node", NODE))
    ays.services[("filesystem", "fs1")] = service("filesystem", "fs1", ("storagepool", "p1"),
                                                  mountpoint="/mnt/storagepools/p1/filesystems/fs1")
    ays.services[("fssnapshot", "s1")] = service("fssnapshot", "s1", ("filesystem", "fs1"),
                                                 name="s1", timestamp=7)
    assert run(backend.get_filesystem_info(NODE, "p1", "fs1"))["parent"] == "p1"
    with pytest.raises(NotFound, match="in storage pool 'p2'"):
        run(backend.get_filesystem_info(NODE, "p2", "fs1"))
    assert run(backend.get_filesystem_snapshot_info(NODE, "p1", "fs1", "s1"))["timestamp"] == 7
    with pytest.raises(NotFound):
        run(backend.get_filesystem_snapshot_info(NODE, "p2", "fs1", "s1"))


def test_a_create_under_a_taken_name_is_409(backend: AysBackend, ays: Scripted) -> None:
    ays.services[("container", "web1")] = service("container", "web1", ("node", "525400123457"))
    with pytest.raises(Conflict, match="container 'web1' exists \\(on node '525400123457'\\)"):
        run(backend.create_container(NODE, {"name": "web1", "hostname": "w", "flist": "f"}))
    assert not any(path.endswith("/blueprint") for _, path in ays.calls)


def test_container_filesystems_must_be_on_this_node_and_in_that_pool(
        backend: AysBackend, ays: Scripted) -> None:
    ays.services[("storagepool", "p1")] = service("storagepool", "p1", ("node", NODE))
    ays.services[("storagepool", "p2")] = service("storagepool", "p2", ("node", NODE))
    ays.services[("filesystem", "fs1")] = service("filesystem", "fs1", ("storagepool", "p2"))
    body = {"name": "web1", "hostname": "w", "flist": "f", "filesystems": ["p1:fs1"]}
    with pytest.raises(BadRequest, match="filesystem 'fs1' does not exist in storage pool 'p1'"):
        run(backend.create_container(NODE, body))
    with pytest.raises(BadRequest, match="storage pool 'p9' does not exist"):
        run(backend.create_container(NODE, {**body, "filesystems": ["p9:fs1"]}))


def test_vm_sizes_beyond_the_template_are_400(backend: AysBackend) -> None:
    with pytest.raises(BadRequest, match="memory"):
        run(backend.create_vm(NODE, {"id": "vm1", "memory": 70000, "cpu": 1}))


def test_vm_cpu_change_needs_a_halted_vm(backend: AysBackend, ays: Scripted) -> None:
    ays.services[("vm", "vm1")] = service("vm", "vm1", ("node", NODE), status="running",
                                          cpu=1, memory=512, nics=[], disks=[])
    with pytest.raises(BadRequest, match="must be halted"):
        run(backend.update_vm(NODE, "vm1", {"cpu": 2, "memory": 512, "nics": [], "disks": []}))
    # Nothing changes: nothing is posted.
    run(backend.update_vm(NODE, "vm1", {"cpu": 1, "memory": 512, "nics": [], "disks": []}))
    assert not any("blueprint" in path for _, path in ays.calls)


def test_pause_and_resume_need_the_right_state(backend: AysBackend, ays: Scripted) -> None:
    ays.services[("vm", "vm1")] = service("vm", "vm1", ("node", NODE), status="halted")
    with pytest.raises(BadRequest, match="is halted, not running"):
        run(backend.pause_vm(NODE, "vm1"))
    with pytest.raises(BadRequest, match="is halted, not paused"):
        run(backend.resume_vm(NODE, "vm1"))


def test_storage_cluster_servers_must_divide_by_nodes(backend: AysBackend) -> None:
    with pytest.raises(BadRequest, match="multiple of the number of nodes"):
        run(backend.deploy_new_cluster({"label": "c1", "servers": 3, "driveType": "ssd",
                                        "nodes": [NODE, "525400123457"]}))


def test_vdisk_references_must_exist(backend: AysBackend, ays: Scripted) -> None:
    body = {"id": "d1", "size": 1, "blocksize": 4096, "type": "boot", "readOnly": False,
            "templatevdisk": "", "storagecluster": "c1", "tlogStoragecluster": ""}
    with pytest.raises(NotFound, match="storage cluster 'c1' \\(storagecluster\\)"):
        run(backend.create_new_vdisk(body))
    ays.services[("storage_cluster", "c1")] = service("storage_cluster", "c1", label="c1")
    with pytest.raises(NotFound, match="tlogStoragecluster"):
        run(backend.create_new_vdisk({**body, "tlogStoragecluster": "c2"}))
    with pytest.raises(NotFound, match="template vdisk 'base'"):
        run(backend.create_new_vdisk({**body, "templatevdisk": "base"}))


def test_vdisk_resize_smaller_is_400_and_equal_is_nothing(backend: AysBackend, ays: Scripted) -> None:
    ays.services[("vdisk", "d1")] = service("vdisk", "d1", size=10)
    with pytest.raises(BadRequest, match="smaller"):
        run(backend.resize_vdisk("d1", {"newSize": 9}))
    run(backend.resize_vdisk("d1", {"newSize": 10}))
    assert not any("blueprint" in path for _, path in ays.calls)


def test_cluster_view_from_its_ardbs(backend: AysBackend, ays: Scripted) -> None:
    ardbs = ["cluster_n_c1_sdb_data_0", "cluster_n_c1_sdc_data_1", "cluster_n_c1_sdc_metadata_2"]
    ays.services[("storage_cluster", "c1")] = service(
        "storage_cluster", "c1", label="c1", status="ready", diskType="ssd",
        nodes=[NODE], ardbs=ardbs)
    for index, name in enumerate(ardbs):
        ays.services[("ardb", name)] = service("ardb", name, ("container", name),
                                               bind=f"10.0.0.5:{2000 + index}", container=name)
    ays.services[("ardb", ardbs[1])]["state"] = "error"
    view = run(backend.get_cluster_info("c1"))
    assert view["label"] == "c1" and view["driveType"] == "ssd" and view["nodes"] == [NODE]
    assert [(s["id"], s["ip"], s["port"], s["status"]) for s in view["dataStorage"]] == [
        (0, "10.0.0.5", 2000, "ready"), (1, "10.0.0.5", 2001, "error")]
    assert [s["container"] for s in view["metadataStorage"]] == [ardbs[2]]


# As the core0 backend's node registry ------------------------------------------------------------


def test_is_a_node_registry_for_the_core0_backend(backend: AysBackend, ays: Scripted, clock: Clock) -> None:
    from rpoold.nodes import INodeRegistry, NodeAddress

    ays.services[("node", NODE)]["data"].update(redisPort=6380, redisPassword="pw")
    registry = backend.node_registry()
    assert backend.node_registry() is registry
    assert verifyObject(INodeRegistry, registry)
    expected = NodeAddress(id=NODE, host="127.0.0.1", port=6380, password="pw", hostname="core0node")
    assert run(registry.list_nodes()) == [expected]
    assert run(registry.get_node(NODE)) == expected
    with pytest.raises(NotFound, match="node '525400999999' does not exist"):
        run(registry.get_node("525400999999"))


def test_registry_reuses_addresses_then_asks_again(backend: AysBackend, ays: Scripted,
                                                    clock: Clock) -> None:

    registry = backend.node_registry()
    run(registry.get_node(NODE))
    asked = len(ays.calls)
    run(registry.get_node(NODE))
    assert len(ays.calls) == asked
    clock.advance(backend.registry_ttl + 1)
    ays.services[("node", NODE)]["data"]["redisAddr"] = "10.0.0.9"
    assert run(registry.get_node(NODE)).host == "10.0.0.9"
    assert len(ays.calls) == asked + 1


def test_registry_uses_the_last_address_while_ays_is_down(backend: AysBackend, ays: Scripted,
                                                          clock: Clock) -> None:

    registry = backend.node_registry()
    known = run(registry.get_node(NODE))
    clock.advance(backend.registry_ttl + 1)
    ays.down = True
    assert run(registry.get_node(NODE)) == known
    assert run(registry.list_nodes()) == [known]
    with pytest.raises(BackendUnavailable):
        run(registry.get_node("525400123457"))


def test_registry_is_not_ready_before_ays(ays: Scripted, clock: Clock) -> None:

    ays.down = True
    client = AysClient("http://ays", "objstor", StubTreq(StringStubbingResource(ays)), clock)
    backend = AysBackend(client, clock, Timing(), retry_interval=1)
    backend.startService()
    with pytest.raises(ServiceUnavailable):
        run(backend.node_registry().list_nodes())
    backend.stopService()


# What the nodes themselves say ---------------------------------------------------------------------


@implementer(INodeAgents)
class FakeAgents:
    """Node answers from tables; ``down`` nodes do not answer."""

    def __init__(self) -> None:
        #: Each node's ``disk.list`` block devices.
        self.disk_list: dict[str, list[dict[str, Any]]] = {NODE: [
            {"name": "sda", "kname": "sda", "size": 20 * 2**30, "rota": "0",
             "children": [{"name": "sda1", "kname": "sda1", "mountpoint": "/var/cache",
                           "fstype": "btrfs"}]},
            {"name": "sdb", "kname": "sdb", "size": 100 * 2**30, "rota": "0"},
            {"name": "sdc", "kname": "sdc", "size": 100 * 2**30, "rota": "0",
             "children": [{"name": "sdc1", "kname": "sdc1"}]},
        ]}
        self.running: dict[str, set[str]] = {NODE: set()}
        self.down: set[str] = set()
        self.asked: list[tuple[str, str]] = []

    def _check(self, node: NodeAddress) -> None:
        assert (node.host, node.port) == ("127.0.0.1", 6379)
        if node.id in self.down:
            raise BackendUnavailable(f"node '{node.id}' is unreachable")

    def disks(self, node: NodeAddress) -> Deferred[dict[str, dict[str, Any]]]:
        self.asked.append((node.id, "disk.list"))
        try:
            self._check(node)
        except BackendUnavailable as e:
            return fail(e)
        return succeed({f"/dev/{d['kname']}": d for d in self.disk_list.get(node.id, [])})

    def running_containers(self, node: NodeAddress, timeout: float) -> Deferred[set[str]]:
        self.asked.append((node.id, "corex.list"))
        try:
            self._check(node)
        except BackendUnavailable as e:
            return fail(e)
        return succeed(set(self.running.get(node.id, set())))

    def close(self) -> Deferred[None]:
        return succeed(None)


@pytest.fixture
def agents() -> FakeAgents:
    """The nodes' agents, given to the ``backend`` of the tests that take this fixture."""
    fake = FakeAgents()
    assert verifyObject(INodeAgents, fake)
    return fake


def test_container_status_is_what_the_node_says(backend: AysBackend, ays: Scripted,
                                                agents: FakeAgents) -> None:
    ays.services[("container", "web1")] = service(
        "container", "web1", ("node", NODE), status="running", flist="f", hostname="web1")
    assert run(backend.get_container(NODE, "web1"))["status"] == "halted"
    assert run(backend.list_containers(NODE))[0]["status"] == "halted"
    agents.running[NODE].add("web1")
    assert run(backend.get_container(NODE, "web1"))["status"] == "running"
    assert run(backend.list_containers(NODE))[0]["status"] == "running"
    ays.services[("container", "web1")]["data"]["status"] = "halted"
    assert run(backend.get_container(NODE, "web1"))["status"] == "running"


def test_container_status_is_ays_when_the_node_is_silent(backend: AysBackend, ays: Scripted,
                                                         agents: FakeAgents) -> None:
    ays.services[("container", "web1")] = service(
        "container", "web1", ("node", NODE), status="running", flist="f", hostname="web1")
    agents.down.add(NODE)
    assert run(backend.get_container(NODE, "web1"))["status"] == "running"
    assert run(backend.list_containers(NODE))[0]["status"] == "running"


def test_no_container_no_node_question(backend: AysBackend, agents: FakeAgents) -> None:
    assert run(backend.list_containers(NODE)) == []
    assert agents.asked == []


@pytest.mark.parametrize(("devices", "words"), [
    (["/dev/nosuch"], ["/dev/nosuch", "not a disk"]),
    (["/dev/sda"], ["/dev/sda", "in use"]),
    (["/dev/sdb", "/dev/sda"], ["/dev/sda", "in use"]),
])
def test_pool_devices_must_be_free_disks_of_the_node(backend: AysBackend, ays: Scripted,
                                                     agents: FakeAgents, devices: list[str],
                                                     words: list[str]) -> None:
    body = {"name": "p1", "dataProfile": "single", "metadataProfile": "single", "devices": devices}
    with pytest.raises(BadRequest) as caught:
        run(backend.create_storage_pool(NODE, body))
    for word in words:
        assert word in caught.value.message
    assert not any("blueprint" in path for _, path in ays.calls)


def test_cluster_needs_enough_free_disks(backend: AysBackend, ays: Scripted,
                                         agents: FakeAgents) -> None:
    body = {"label": "c1", "servers": 2, "driveType": "ssd", "nodes": [NODE]}
    with pytest.raises(BadRequest, match="has 1 free ssd disk\\(s\\), 2 needed"):
        run(backend.deploy_new_cluster(body))
    with pytest.raises(NotFound, match="node '525400999999' does not exist"):
        run(backend.deploy_new_cluster({**body, "nodes": [NODE, "525400999999"]}))


def test_an_unreachable_node_fails_the_disk_check(backend: AysBackend, agents: FakeAgents) -> None:
    agents.down.add(NODE)
    with pytest.raises(BackendUnavailable):
        run(backend.create_storage_pool(NODE, {"name": "p1", "dataProfile": "single",
                                               "metadataProfile": "single",
                                               "devices": ["/dev/sdb"]}))
