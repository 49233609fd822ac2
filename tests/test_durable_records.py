"""
Records that outlive the daemon, for real: ``twistd rpoold`` processes on
the core0 backend against one ``twistd core0sim`` (the module's), over
real HTTP, with an SQLite file or a ``redis-server`` as the store.

- A restart (SIGTERM or SIGKILL) keeps what only the records know: a
  halted container's create body, a VM's spec, a bridge's settings.
- A SIGKILL right after a write was answered loses nothing answered.
- Two daemons on one Redis store and one node list are one pool: what one
  writes the other uses; a name created through both at once is one 201
  and one 409; a node deleted through one is gone through the other.
- A store that goes away makes the writes that need it 503 (reads that do
  not, 200) and is used again once it is back, without a restart.
- A store that cannot be used stops start-up with one line.
- Creating and deleting again and again leaves the store as it was.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import g8core
import pytest

from rpoold.operations import SCOPE as OPERATIONS_SCOPE
from testbed.core0sim import Core0Sim
from testbed.http_api import Reply, call
from testbed.ports import free_port
from testbed.processes import ROOT, Child, python_env, wait_until
from testbed.redis_server import RedisServer
from testbed.toml_text import toml
from testbed.twistd import start_rpoold, twistd
from tests.support.answers import error_of
from tests.support.backends import SECOND_NODE, SEED_FLIST, SEED_NODE, unique

N = SEED_NODE
#: Seconds a Redis store call may take (``?timeout=``), short for the outage tests.
STORE_TIMEOUT = 1.0
#: Seconds a VM stays in a passing state (deploying, halting, ...).
TRANSITION = 0.3
#: Seconds to wait for what takes time (a VM's state, a store coming back).
PATIENCE = 15.0


class Daemon:
    """
    ``twistd rpoold`` on the core0 backend for every family it serves,
    with ``sim``'s nodes and the store ``store_url``; its configuration
    file is ``directory/<name>.toml`` (a relative SQLite path is relative
    to ``directory``).  Each start listens on a free port.
    """

    def __init__(self, sim: Core0Sim, directory: Path, store_url: str, name: str = "rpoold",
                 sections: dict[str, Any] | None = None) -> None:
        self.config = directory / f"{name}.toml"
        self.config.write_text(toml({
            **(sections or {}),
            "store": {"url": store_url},
            "families": {"default": "core0"},
            "backends": {"core0": {
                "plugin": "core0", "nodes_file": str(sim.node_file), "timeout": 10.0,
                "ping_timeout": 1.0, "transition_seconds": TRANSITION,
            }},
        }))
        self.child: Child | None = None
        self.url = ""
        #: Everything each process printed, for failures after a restart.
        self.outputs: list[str] = []

    def start(self) -> Daemon:
        self.child, self.url = start_rpoold(str(self.config))
        return self

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        return call(self.url, method, path, **kwargs)

    def end(self, sig: int) -> int:
        """Send ``sig``, wait for the exit; :returns: the exit status."""
        assert self.child is not None
        child, self.child = self.child, None
        child.signal(sig)
        status = child.process.wait(30)
        child.stop()
        self.outputs.append(child.output())
        return status

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Stop with ``sig`` (SIGTERM: a clean exit, status 0) and start again."""
        status = self.end(sig)
        if sig == signal.SIGTERM:
            assert status == 0, self.outputs[-1][-3000:]
        self.start()

    def stop(self) -> None:
        if self.child is not None:
            self.end(signal.SIGTERM)


def expect(reply: Reply, status: int) -> Reply:
    assert reply.status == status, f"expected {status}, got {reply}"
    return reply


def settles(daemon: Daemon, path: str, accept: Callable[[Reply], bool], what: str) -> Reply:
    """Ask ``path`` until ``accept`` takes the answer; :returns: that answer."""
    last: list[Reply] = []

    def taken() -> bool:
        last[:] = [daemon.call("GET", path)]
        return accept(last[0])

    try:
        wait_until(taken, PATIENCE, what)
    except TimeoutError:
        raise AssertionError(f"{what}: last answer {last[0] if last else None}") from None
    return last[0]


# What is written ------------------------------------------------------------------------

def container_body(name: str) -> dict[str, Any]:
    """A create body with something of each kind that must come back from the record."""
    return {
        "name": name, "hostname": f"h{name}", "flist": SEED_FLIST,
        "nics": [{"type": "default"},
                 {"type": "vlan", "id": "100", "config": {"dhcp": False, "cidr": "192.168.57.217/24",
                                                          "gateway": "192.168.57.254", "dns": ["8.8.8.8"]}}],
        "ports": ["8080:80"],
        "initProcesses": [{"name": "sleep", "args": ["600"]}],
    }


def bridge_body(name: str, cidr: str = "10.30.0.1/24") -> dict[str, Any]:
    return {"name": name, "hwaddr": "52:54:00:12:34:56", "networkMode": "dnsmasq", "nat": True,
            "setting": {"cidr": cidr, "start": cidr.rsplit(".", 1)[0] + ".10",
                        "end": cidr.rsplit(".", 1)[0] + ".99"}}


VM_NICS = [{"type": "default"}, {"type": "vlan", "id": "200", "macaddress": "52:54:00:aa:bb:cc"}]
VM_DISKS = [{"vdiskid": "vd1", "maxIOps": 2000}]
VM_UPDATE = {"cpu": 4, "memory": 2048, "nics": VM_NICS, "disks": VM_DISKS}


def containers(nodeid: str) -> str:
    return f"/nodes/{nodeid}/containers"


def vms(nodeid: str) -> str:
    return f"/nodes/{nodeid}/vms"


def bridges(nodeid: str) -> str:
    return f"/nodes/{nodeid}/bridges"


def create_container(daemon: Daemon, name: str, nodeid: str = N) -> dict[str, Any]:
    body = container_body(name)
    expect(daemon.call("POST", containers(nodeid), json=body), 201)
    return body


def assert_runs_with_its_spec(daemon: Daemon, name: str, body: dict[str, Any], nodeid: str = N) -> None:
    """
    The container runs as ``body`` asked: what the node reports (hostname,
    flist, nics, ports) and its init process, started from the record.
    """
    got = expect(daemon.call("GET", f"{containers(nodeid)}/{name}"), 200).json()
    assert got["status"] == "running", got
    assert (got["hostname"], got["flist"], got["ports"]) == (body["hostname"], body["flist"], body["ports"])
    assert [(n["type"], n.get("id", ""), n.get("config", {}).get("cidr", "")) for n in got["nics"]] == \
        [("default", "", ""), ("vlan", "100", "192.168.57.217/24")]
    assert [(p["name"], p["args"]) for p in got["initprocesses"]] == [("sleep", ["600"])]
    processes = expect(daemon.call("GET", f"{containers(nodeid)}/{name}/processes"), 200).json()
    assert "sleep 600" in [p["cmdline"] for p in processes], processes


def assert_halted_as_recorded(daemon: Daemon, name: str, body: dict[str, Any], nodeid: str = N) -> None:
    got = expect(daemon.call("GET", f"{containers(nodeid)}/{name}"), 200).json()
    assert got["status"] == "halted", got
    assert (got["hostname"], got["flist"], got["ports"]) == (body["hostname"], body["flist"], body["ports"])
    listed = expect(daemon.call("GET", containers(nodeid)), 200).json()
    [item] = [c for c in listed if c["name"] == name]
    assert (item["hostname"], item["flist"], item["status"]) == (body["hostname"], body["flist"], "halted")


def create_halted_vm(daemon: Daemon, vmid: str, nodeid: str = N) -> None:
    """A VM that deployed, ran and was stopped."""
    expect(daemon.call("POST", vms(nodeid), json={"id": vmid, "memory": 512, "cpu": 1}), 201)
    vm_reaches(daemon, vmid, "running", nodeid)
    expect(daemon.call("POST", f"{vms(nodeid)}/{vmid}/stop"), 204)


def vm_reaches(daemon: Daemon, vmid: str, status: str, nodeid: str = N) -> dict[str, Any]:
    reply = settles(daemon, f"{vms(nodeid)}/{vmid}",
                    lambda r: r.status == 200 and r.json()["status"] == status, f"vm {vmid} {status}")
    found: dict[str, Any] = reply.json()
    return found


def assert_vm_updated(daemon: Daemon, vmid: str, nodeid: str = N) -> None:
    got = expect(daemon.call("GET", f"{vms(nodeid)}/{vmid}"), 200).json()
    assert (got["status"], got["cpu"], got["memory"], got["disks"]) == ("halted", 4, 2048, VM_DISKS), got
    assert [(n["type"], n.get("id", "")) for n in got["nics"]] == [("default", ""), ("vlan", "200")]


def assert_bridge_as_created(daemon: Daemon, body: dict[str, Any], nodeid: str = N) -> None:
    got = expect(daemon.call("GET", f"{bridges(nodeid)}/{body['name']}"), 200).json()
    assert (got["name"], got["setting"]) == (body["name"], body["setting"]), got


def cleanup(daemon: Daemon, *paths: str) -> None:
    """DELETE each path (gone already is fine)."""
    for path in paths:
        reply = daemon.call("DELETE", path)
        assert reply.status in (204, 404), f"cleaning up {path}: {reply}"


def tagged(sim: Core0Sim, nodeid: str, name: str) -> int:
    """How many running containers of the node are tagged ``name`` (asked with g8core)."""
    entry = next(e for e in sim.entries if e.id == nodeid)
    client = g8core.Client(entry.host, port=entry.port, db=entry.db, password=entry.password)
    listing = client.container.list()
    return sum(1 for c in listing.values() if name in (c["container"]["arguments"]["tags"] or []))


# Fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def sqlite_daemon(core0sim: Core0Sim, tmp_path: Path) -> Iterator[Daemon]:
    """rpoold with ``sqlite:///records.db`` (in the test's directory)."""
    daemon = Daemon(core0sim, tmp_path, "sqlite:///records.db").start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One redis-server for the tests whose Redis stays up (each test has a prefix of its own)."""
    server = RedisServer().start()
    yield server
    server.stop()


def redis_url(server: RedisServer, prefix: str | None = None) -> str:
    return (f"redis://127.0.0.1:{server.port}/0?timeout={STORE_TIMEOUT:g}"
            f"&prefix={prefix or unique('t')}:")


@pytest.fixture
def pair(core0sim: Core0Sim, shared_redis: RedisServer, tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    """Two daemons on one Redis store (a fresh prefix) and one node list."""
    url = redis_url(shared_redis)
    one = Daemon(core0sim, tmp_path, url, "one").start()
    try:
        two = Daemon(core0sim, tmp_path, url, "two").start()
    except BaseException:
        one.stop()
        raise
    yield one, two
    two.stop()
    one.stop()


# Restarts -----------------------------------------------------------------------------------

SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGKILL, id="SIGKILL")]


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_halted_container_starts_with_its_spec_after_a_restart(sqlite_daemon: Daemon, sig: int) -> None:
    name = unique("ct")
    body = create_container(sqlite_daemon, name)
    try:
        expect(sqlite_daemon.call("POST", f"{containers(N)}/{name}/stop"), 204)
        sqlite_daemon.restart(sig)
        assert_halted_as_recorded(sqlite_daemon, name, body)
        expect(sqlite_daemon.call("POST", f"{containers(N)}/{name}/start"), 201)
        assert_runs_with_its_spec(sqlite_daemon, name, body)
    finally:
        cleanup(sqlite_daemon, f"{containers(N)}/{name}")


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_vm_update_survives_a_restart(sqlite_daemon: Daemon, sig: int) -> None:
    vmid = unique("vm")
    create_halted_vm(sqlite_daemon, vmid)
    try:
        expect(sqlite_daemon.call("PUT", f"{vms(N)}/{vmid}", json=VM_UPDATE), 204)
        sqlite_daemon.restart(sig)
        assert_vm_updated(sqlite_daemon, vmid)
        assert vmid in [v["id"] for v in expect(sqlite_daemon.call("GET", vms(N)), 200).json()]
        expect(sqlite_daemon.call("POST", f"{vms(N)}/{vmid}/start"), 204)
        running = vm_reaches(sqlite_daemon, vmid, "running")
        assert (running["cpu"], running["memory"]) == (4, 2048) and running["vnc"] > 0
    finally:
        cleanup(sqlite_daemon, f"{vms(N)}/{vmid}")


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_bridges_settings_survive_a_restart(sqlite_daemon: Daemon, sig: int) -> None:
    body = bridge_body(unique("br"))
    expect(sqlite_daemon.call("POST", bridges(N), json=body), 201)
    try:
        sqlite_daemon.restart(sig)
        assert_bridge_as_created(sqlite_daemon, body)
        assert body["name"] in [b["name"] for b in expect(sqlite_daemon.call("GET", bridges(N)), 200).json()]
    finally:
        cleanup(sqlite_daemon, f"{bridges(N)}/{body['name']}")


def test_a_redis_store_keeps_records_across_a_restart(core0sim: Core0Sim, shared_redis: RedisServer,
                                                       tmp_path: Path) -> None:
    """The same three with a Redis store, which stays up while rpoold restarts."""
    daemon = Daemon(core0sim, tmp_path, redis_url(shared_redis)).start()
    name, vmid, bridge = unique("ct"), unique("vm"), bridge_body(unique("br"))
    try:
        body = create_container(daemon, name)
        expect(daemon.call("POST", f"{containers(N)}/{name}/stop"), 204)
        create_halted_vm(daemon, vmid)
        expect(daemon.call("PUT", f"{vms(N)}/{vmid}", json=VM_UPDATE), 204)
        expect(daemon.call("POST", bridges(N), json=bridge), 201)
        daemon.restart(signal.SIGKILL)
        assert_halted_as_recorded(daemon, name, body)
        assert_vm_updated(daemon, vmid)
        assert_bridge_as_created(daemon, bridge)
        daemon.restart(signal.SIGTERM)
        expect(daemon.call("POST", f"{containers(N)}/{name}/start"), 201)
        assert_runs_with_its_spec(daemon, name, body)
        assert_vm_updated(daemon, vmid)
        assert_bridge_as_created(daemon, bridge)
    finally:
        cleanup(daemon, f"{containers(N)}/{name}", f"{vms(N)}/{vmid}", f"{bridges(N)}/{bridge['name']}")
        daemon.stop()


# Crash safety -------------------------------------------------------------------------------

def killed_after(daemon: Daemon, method: str, path: str, status: int, body: Any = None) -> None:
    """One write, and SIGKILL as soon as its answer is in; then a new daemon on the same store."""
    expect(daemon.call(method, path, json=body), status)
    daemon.end(signal.SIGKILL)
    daemon.start()


def test_a_sigkill_right_after_an_answered_write_loses_nothing(sqlite_daemon: Daemon) -> None:
    """
    Each write, then SIGKILL at once, then a restart on the file: the
    write is there.  A VM killed while it deploys comes up after the
    restart (its passing state is not left hanging).
    """
    daemon = sqlite_daemon
    name, vmid, bridge = unique("ct"), unique("vm"), bridge_body(unique("br"))
    pool, fs, snap = unique("sp"), unique("fs"), unique("sn")
    fs_path = f"/nodes/{N}/storagepools/{pool}/filesystems"
    try:
        body = container_body(name)
        killed_after(daemon, "POST", containers(N), 201, body)
        got = expect(daemon.call("GET", f"{containers(N)}/{name}"), 200).json()
        assert got["initprocesses"] == [{"name": "sleep", "pwd": "", "args": ["600"], "environment": [],
                                         "stdin": ""}]

        killed_after(daemon, "POST", f"{containers(N)}/{name}/stop", 204)
        assert_halted_as_recorded(daemon, name, body)
        expect(daemon.call("POST", f"{containers(N)}/{name}/start"), 201)
        assert_runs_with_its_spec(daemon, name, body)

        killed_after(daemon, "POST", vms(N), 201, {"id": vmid, "memory": 512, "cpu": 1})
        vm_reaches(daemon, vmid, "running")
        expect(daemon.call("POST", f"{vms(N)}/{vmid}/stop"), 204)
        killed_after(daemon, "PUT", f"{vms(N)}/{vmid}", 204, VM_UPDATE)
        assert_vm_updated(daemon, vmid)

        killed_after(daemon, "POST", bridges(N), 201, bridge)
        assert_bridge_as_created(daemon, bridge)

        expect(daemon.call("POST", f"/nodes/{N}/storagepools", json={
            "name": pool, "metadataProfile": "single", "dataProfile": "single",
            "devices": ["/dev/sdb"]}), 201)
        killed_after(daemon, "POST", fs_path, 201, {"name": fs, "quota": 1024, "readOnly": True})
        got = expect(daemon.call("GET", f"{fs_path}/{fs}"), 200).json()
        assert (got["quota"], got["readOnly"]) == (1024, True), got
        before = int(time.time())
        killed_after(daemon, "POST", f"{fs_path}/{fs}/snapshots", 201, {"name": snap})
        got = expect(daemon.call("GET", f"{fs_path}/{fs}/snapshots/{snap}"), 200).json()
        assert before - 1 <= got["timestamp"] <= time.time() + 1, got
    finally:
        cleanup(daemon, f"{containers(N)}/{name}", f"{vms(N)}/{vmid}", f"{bridges(N)}/{bridge['name']}",
                f"/nodes/{N}/storagepools/{pool}")


def test_a_sigkill_in_a_burst_of_creates_loses_no_answered_one(sqlite_daemon: Daemon) -> None:
    """
    Clients create bridges as fast as they can; SIGKILL once some are
    answered.  After the restart every bridge answered 201 has its
    settings (those in flight may or may not have been made).
    """
    daemon = sqlite_daemon
    url = daemon.url
    answered: list[dict[str, Any]] = []
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        while not stop.is_set():
            body = bridge_body(unique(f"b{worker}"), cidr=f"10.{40 + worker}.{n % 250}.1/24")
            n += 1
            with lock:
                attempted.append(body["name"])
            try:
                reply = call(url, "POST", bridges(N), json=body, timeout=10)
            except OSError:
                return
            if reply.status == 201:
                with lock:
                    answered.append(body)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answered) >= 30, 60, "bridges answered")
        daemon.end(signal.SIGKILL)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    daemon.start()
    try:
        listed = {b["name"]: b for b in expect(daemon.call("GET", bridges(N)), 200).json()}
        for body in answered:
            assert body["name"] in listed, body["name"]
            assert listed[body["name"]]["setting"] == body["setting"], listed[body["name"]]
    finally:
        cleanup(daemon, *[f"{bridges(N)}/{name}" for name in attempted])


# Two daemons, one pool ----------------------------------------------------------------------

def test_a_container_stopped_through_one_daemon_starts_through_the_other(
        pair: tuple[Daemon, Daemon]) -> None:
    one, two = pair
    name = unique("ct")
    body = create_container(one, name)
    try:
        expect(one.call("POST", f"{containers(N)}/{name}/stop"), 204)
        assert_halted_as_recorded(two, name, body)
        expect(two.call("POST", f"{containers(N)}/{name}/start"), 201)
        assert_runs_with_its_spec(two, name, body)
        assert_runs_with_its_spec(one, name, body)
    finally:
        cleanup(two, f"{containers(N)}/{name}")
    expect(one.call("GET", f"{containers(N)}/{name}"), 404)


def test_a_vm_updated_through_one_daemon_shows_through_the_other(pair: tuple[Daemon, Daemon]) -> None:
    one, two = pair
    vmid = unique("vm")
    create_halted_vm(one, vmid)
    try:
        expect(one.call("PUT", f"{vms(N)}/{vmid}", json=VM_UPDATE), 204)
        assert_vm_updated(two, vmid)
        expect(two.call("POST", f"{vms(N)}/{vmid}/start"), 204)
        vm_reaches(one, vmid, "running")
    finally:
        cleanup(one, f"{vms(N)}/{vmid}")
    expect(two.call("GET", f"{vms(N)}/{vmid}"), 404)


def test_a_node_deleted_through_one_daemon_is_gone_through_the_other(pair: tuple[Daemon, Daemon]) -> None:
    """Right after the answer: the other daemon heard of it from the store, nobody polls."""
    one, two = pair
    assert two.call("GET", f"/nodes/{SECOND_NODE}").status == 200
    expect(one.call("DELETE", f"/nodes/{SECOND_NODE}"), 204)
    error_of(two.call("GET", f"/nodes/{SECOND_NODE}"), 404, SECOND_NODE)
    assert SECOND_NODE not in [n["id"] for n in expect(two.call("GET", "/nodes"), 200).json()]
    expect(two.call("GET", f"/nodes/{N}"), 200)


def together(requests: list[tuple[str, str, str, Any]]) -> list[Reply]:
    """
    Send ``(base, method, path, json)`` requests at the same moment: each
    on a connection of its own, all connected first, then released at once.
    """
    connections = []
    for base, _, _, _ in requests:
        host, port = base.rsplit("/", 1)[1].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.connect()
        connections.append(connection)
    gate = threading.Barrier(len(requests))
    replies: list[Reply | BaseException | None] = [None] * len(requests)

    def send(i: int) -> None:
        _, method, path, body = requests[i]
        try:
            gate.wait(10)
            connections[i].request(method, path, body=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"})
            answer = connections[i].getresponse()
            content = answer.read()
            headers = {k.lower(): (v,) for k, v in answer.getheaders()}
            replies[i] = Reply(status=answer.status, headers=headers, body=content)
        except BaseException as e:
            replies[i] = e
        finally:
            connections[i].close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    for reply in replies:
        if not isinstance(reply, Reply):
            raise AssertionError(f"a request got no answer: {reply!r}")
    return [r for r in replies if isinstance(r, Reply)]


ROUNDS = 5


def test_one_container_name_created_through_both_at_once_is_one_201_and_one_409(
        pair: tuple[Daemon, Daemon], core0sim: Core0Sim) -> None:
    one, two = pair
    for _ in range(ROUNDS):
        name = unique("ct")
        bodies = [{**container_body(name), "hostname": hostname} for hostname in ("first", "second")]
        try:
            replies = together([(one.url, "POST", containers(N), bodies[0]),
                                (two.url, "POST", containers(N), bodies[1])])
            assert sorted(r.status for r in replies) == [201, 409], [str(r) for r in replies]
            loser = next(r for r in replies if r.status == 409)
            assert name in loser.error() and "exists" in loser.error()
            winner = bodies[[r.status for r in replies].index(201)]
            assert tagged(core0sim, N, name) == 1
            for daemon in pair:
                got = expect(daemon.call("GET", f"{containers(N)}/{name}"), 200).json()
                assert (got["status"], got["hostname"]) == ("running", winner["hostname"]), got
        finally:
            cleanup(one, f"{containers(N)}/{name}")
        assert tagged(core0sim, N, name) == 0


def test_one_bridge_name_created_through_both_at_once_is_one_201_and_one_409(
        pair: tuple[Daemon, Daemon]) -> None:
    one, two = pair
    for _ in range(ROUNDS):
        name = unique("br")
        bodies = [bridge_body(name, cidr="10.50.1.1/24"), bridge_body(name, cidr="10.50.2.1/24")]
        try:
            replies = together([(one.url, "POST", bridges(N), bodies[0]),
                                (two.url, "POST", bridges(N), bodies[1])])
            assert sorted(r.status for r in replies) == [201, 409], [str(r) for r in replies]
            assert name in next(r for r in replies if r.status == 409).error()
            winner = bodies[[r.status for r in replies].index(201)]
            for daemon in pair:
                assert_bridge_as_created(daemon, winner)
        finally:
            cleanup(one, f"{bridges(N)}/{name}")


# The store goes away ------------------------------------------------------------------------

@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test, which stops and starts it."""
    server = RedisServer().start()
    yield server
    if server.child is not None:
        server.child.signal(signal.SIGCONT)
    server.stop()


def test_a_redis_store_that_goes_away_and_comes_back(core0sim: Core0Sim, own_redis: RedisServer,
                                                     tmp_path: Path) -> None:
    """
    Stopped, then hung (SIGSTOP): the writes that need a record answer 503
    within the store's timeout, naming the store; a node's memory is 200
    all along.  Back on the same port: writes work, without a restart.
    """
    daemon = Daemon(core0sim, tmp_path, redis_url(own_redis)).start()
    made: list[str] = []
    try:
        name = unique("ct")
        made.append(f"{containers(N)}/{name}")
        create_container(daemon, name)

        def refused(what: str) -> None:
            for path, body in [(containers(N), container_body(unique("ct"))),
                               (bridges(N), bridge_body(unique("br")))]:
                made.append(f"{path}/{body['name']}")
                started = time.monotonic()
                reply = daemon.call("POST", path, json=body)
                took = time.monotonic() - started
                error_of(reply, 503, "record store", f"127.0.0.1:{own_redis.port}")
                assert took < STORE_TIMEOUT + 1.5, f"{what}: {path} took {took:.2f} s"
                assert tagged(core0sim, N, body["name"]) == 0
            expect(daemon.call("GET", f"/nodes/{N}/mem"), 200)
            expect(daemon.call("GET", f"{containers(N)}/{name}/processes"), 200)

        own_redis.stop()
        refused("stopped")
        own_redis.start()

        def works() -> bool:
            body = bridge_body(unique("br"))
            made.append(f"{bridges(N)}/{body['name']}")
            return daemon.call("POST", bridges(N), json=body).status == 201

        wait_until(works, PATIENCE, "writes again after the restart of redis-server")

        assert own_redis.child is not None
        own_redis.child.signal(signal.SIGSTOP)
        refused("hung")
        own_redis.child.signal(signal.SIGCONT)
        wait_until(works, PATIENCE, "writes again after redis-server answers again")
        other = unique("ct")
        made.append(f"{containers(N)}/{other}")
        body = create_container(daemon, other)
        expect(daemon.call("POST", f"{containers(N)}/{other}/stop"), 204)
        expect(daemon.call("POST", f"{containers(N)}/{other}/start"), 201)
        assert_runs_with_its_spec(daemon, other, body)
        assert daemon.child is not None and daemon.child.alive()
    finally:
        for path in made:
            daemon.call("DELETE", path)
        daemon.stop()


# Start-up -----------------------------------------------------------------------------------

def someone_elses_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
        conn.commit()


def start_up_fails(config: Path) -> str:
    """Run ``twistd rpoold --config CONFIG``: it must exit non-zero; :returns: its output."""
    done = subprocess.run(
        twistd("rpoold", "--config", str(config), "--port", f"tcp:{free_port()}:interface=127.0.0.1"),
        env={**os.environ, **python_env()}, cwd=ROOT, capture_output=True, text=True, timeout=20)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    return output


@pytest.mark.parametrize(("url", "make", "words"), [
    pytest.param(lambda d: f"redis://127.0.0.1:{free_port()}/0", None, ["cannot be used"],
                 id="redis-unreachable"),
    pytest.param(lambda d: "sqlite:///no/such/directory/records.db", None, ["does not exist"],
                 id="sqlite-directory-missing"),
    pytest.param(lambda d: "sqlite:///records.db", lambda d: (d / "records.db").write_text("hello\n"),
                 ["not an SQLite database"], id="sqlite-not-a-database"),
    pytest.param(lambda d: "sqlite:///records.db", lambda d: someone_elses_database(d / "records.db"),
                 ["not a record store"], id="sqlite-someone-elses-database"),
])
def test_a_store_that_cannot_be_used_stops_start_up_with_one_line(
        tmp_path: Path, url: Callable[[Path], str], make: Callable[[Path], Any] | None,
        words: list[str]) -> None:
    if make is not None:
        make(tmp_path)
    config = tmp_path / "rpoold.toml"
    config.write_text(toml({"store": {"url": url(tmp_path)}, "families": {"default": "mock"},
                            "backends": {"mock": {"plugin": "mock"}}}))
    output = start_up_fails(config)
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    [line] = lines
    assert line.startswith(f"rpoold: configuration file '{config}' at 'store.url': record store "), line
    for word in words:
        assert word in line, line
    assert "Traceback" not in output


# Nothing accumulates -----------------------------------------------------------------------

def record_counts(path: Path) -> dict[str, int]:
    """Records by kind, read from the file without writing to it."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return dict(conn.execute("SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind"))


def used_size(path: Path) -> int:
    """The bytes of the file's pages in use (its size less its free pages), once its log is written in."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        [(pages,)] = conn.execute("PRAGMA page_count").fetchall()
        [(free,)] = conn.execute("PRAGMA freelist_count").fetchall()
        [(size,)] = conn.execute("PRAGMA page_size").fetchall()
    return int(pages - free) * int(size)


def checkpointed_size(path: Path) -> int:
    """The database file's size once its log is written into it (the daemon may share the file)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return path.stat().st_size


def round_trip(daemon: Daemon, n: int) -> None:
    """Create and delete one of each: a container (stopped, started), a bridge, a VM (updated)."""
    name, vmid, bridge = unique(f"ct{n}"), unique(f"vm{n}"), bridge_body(unique(f"br{n}"))
    create_container(daemon, name)
    expect(daemon.call("POST", f"{containers(N)}/{name}/stop"), 204)
    expect(daemon.call("POST", f"{containers(N)}/{name}/start"), 201)
    expect(daemon.call("DELETE", f"{containers(N)}/{name}"), 204)
    expect(daemon.call("POST", bridges(N), json=bridge), 201)
    expect(daemon.call("DELETE", f"{bridges(N)}/{bridge['name']}"), 204)
    expect(daemon.call("POST", vms(N), json={"id": vmid, "memory": 512, "cpu": 1}), 201)
    expect(daemon.call("POST", f"{vms(N)}/{vmid}/stop"), 204)
    expect(daemon.call("PUT", f"{vms(N)}/{vmid}", json=VM_UPDATE), 204)
    expect(daemon.call("DELETE", f"{vms(N)}/{vmid}"), 204)


SOAK_ROUNDS = 40


#: Operations and events are histories, kept for their retention and then
#: dropped: a second here, so that the rounds show they do not pile up either.
SHORT_HISTORY = {"operations": {"retention": 1.0}, "events": {"retention": 1.0}}
#: Rounds before the store is measured (the file grows to hold a
#: retention's worth of history, whose pages are then free to use again).
WARM_UP = 5


def history_in(path: Path) -> int:
    """The operations and events the file holds."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        [(events,)] = conn.execute("SELECT count(*) FROM events").fetchall()
    return int(events) + record_counts(path).get(f"{OPERATIONS_SCOPE}:operation", 0)


def test_creating_and_deleting_leaves_the_store_as_it_was(core0sim: Core0Sim, tmp_path: Path) -> None:
    daemon = Daemon(core0sim, tmp_path, "sqlite:///records.db", sections=SHORT_HISTORY).start()
    database = tmp_path / "records.db"
    try:
        for n in range(WARM_UP):
            round_trip(daemon, n)
        wait_until(lambda: history_in(database) == 0, PATIENCE, "the warm-up's operations and events expired")
        counts, used = record_counts(database), used_size(database)
        for n in range(WARM_UP, WARM_UP + SOAK_ROUNDS):
            round_trip(daemon, n)
        wait_until(lambda: history_in(database) == 0, PATIENCE, "the rounds' operations and events expired")
        assert record_counts(database) == counts
        # Nothing is left behind in the file: its pages in use are as many as
        # before the rounds.  (Its size is the most history it held at once,
        # which its retention bounds and the machine's pace sets.)
        assert used_size(database) <= used + 2 * 4096, (used, used_size(database))
    finally:
        daemon.stop()
