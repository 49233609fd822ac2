"""
``rpool``, the command-line client, as a subprocess against a live
``twistd rpoold``: on the mock pool, and on the core0 backend against
``twistd core0sim`` (each module-wide, one after the other).  The nodes
table and its JSON, a node's memory, containers listed, created and
deleted, a process run with its output followed, a reboot waited for,
the exit codes of a 404 and of a failed job, ``call`` and the generated
``api`` commands for operations that have no readable command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpoold.contract import OPERATIONS
from testbed.core0sim import Core0Sim
from testbed.http_api import call
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child
from testbed.twistd import start_rpoold
from tests.support.backends import SEED_CONTAINER, SEED_NODE
from tests.support.rpool_cli import Rpool

FLIST = "https://hub.example.org/ubuntu1604.flist"

CORE0_CONFIG = """
[backends.core0]
plugin = "core0"
nodes_file = "{nodes}"

[backends.mock]
plugin = "mock"

[families]
default = "core0"
storageclusters = "mock"
vdisks = "mock"
"""


@dataclass
class Deployment:
    """A live daemon and the client pointed at it."""

    backend: str
    url: str
    rpool: Rpool


@pytest.fixture(scope="module", params=["mock", "core0"])
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp(f"rpool-{request.param}")
    sim: Core0Sim | None = None
    daemon: Child | None = None
    try:
        if request.param == "core0":
            sim = Core0Sim(2, extra=("--reboot-seconds", "0.5")).start()
            text = CORE0_CONFIG.format(nodes=sim.node_file)
        else:
            text = MOCK_CONFIG
        config = directory / "rpoold.toml"
        config.write_text(text)
        daemon, url = start_rpoold(str(config))
        yield Deployment(request.param, url, Rpool(url, directory / "home"))
    finally:
        if daemon is not None:
            daemon.stop()
        if sim is not None:
            sim.stop()


def api_json(deployment: Deployment, path: str) -> object:
    reply = call(deployment.url, "GET", path)
    assert reply.status == 200, reply
    return reply.json()


def test_nodes_table(deployment: Deployment) -> None:
    run = deployment.rpool.ok("nodes")
    header, *rows = [line for line in run.lines() if line.strip() and not set(line) <= {"─", " "}]
    assert header.split() == ["id", "hostname", "status", "ipaddress"]
    assert [row.split()[:3] for row in rows] == [
        [SEED_NODE, "core0node", "running"], ["525400123457", "node-525400123457", "running"]]


def test_nodes_json_is_the_api_answer(deployment: Deployment) -> None:
    assert deployment.rpool.ok("nodes", "--json").json() == api_json(deployment, "/nodes")
    # --json before the command too.
    assert deployment.rpool.ok("--json", "nodes").json() == api_json(deployment, "/nodes")


def test_node_mem(deployment: Deployment) -> None:
    mem = api_json(deployment, f"/nodes/{SEED_NODE}/mem")
    assert isinstance(mem, dict)
    table = dict(line.split(None, 1) for line in deployment.rpool.ok("node", "mem", SEED_NODE).lines())
    assert table["total"].strip() == str(mem["total"])
    assert set(table) == set(mem)
    assert deployment.rpool.ok("node", "mem", SEED_NODE, "--json").json() == mem


def test_containers(deployment: Deployment) -> None:
    run = deployment.rpool.ok("containers", SEED_NODE)
    assert run.lines()[0].split() == ["name", "status", "hostname", "flist"]
    assert any(line.split()[:3] == [SEED_CONTAINER, "running", SEED_CONTAINER] for line in run.lines())
    listed = deployment.rpool.ok("containers", SEED_NODE, "--json").json()
    assert listed == api_json(deployment, f"/nodes/{SEED_NODE}/containers")


def test_container_create_exec_and_delete(deployment: Deployment) -> None:
    rpool = deployment.rpool
    name = f"cli_{deployment.backend}"
    created = rpool.ok("container", "create", SEED_NODE, name, "--flist", FLIST, "--hostname", "clihost",
                       "--nic", "default", "--port", "8080:80", "--json").json()
    assert created["status"] == 201
    assert created["location"] == f"/nodes/{SEED_NODE}/containers/{name}"
    try:
        shown = rpool.ok("container", "show", SEED_NODE, name, "--json").json()
        assert (shown["hostname"], shown["flist"], shown["ports"]) == ("clihost", FLIST, ["8080:80"])
        assert [nic["type"] for nic in shown["nics"]] == ["default"]
        assert name in [c["name"] for c in rpool.ok("containers", SEED_NODE, "--json").json()]
        again = rpool("container", "create", SEED_NODE, name, "--flist", FLIST)
        assert again.code == 4, again
        assert "409" in again.stderr

        echoed = rpool.ok("exec", SEED_NODE, name, "--", "echo", "hello", "from", "rpool")
        assert echoed.stdout == "hello from rpool\n"
    finally:
        deleted = rpool.ok("container", "delete", SEED_NODE, name)
    assert deleted.stdout == f"container {name} deleted\n"
    assert name not in [c["name"] for c in rpool.ok("containers", SEED_NODE, "--json").json()]
    gone = rpool("container", "delete", SEED_NODE, name)
    assert gone.code == 4, gone


def test_exec_follows_a_job_to_its_end(deployment: Deployment) -> None:
    rpool = deployment.rpool
    run = rpool.ok("exec", SEED_NODE, SEED_CONTAINER, "--", "sh", "-c", "echo one; sleep 1; echo two")
    assert run.stdout == "one\ntwo\n"
    job = rpool.ok("exec", "--json", SEED_NODE, SEED_CONTAINER, "--", "sleep", "0.5").json()
    assert (job["state"], job["name"]) == ("success", "core.system")
    assert api_json(deployment, f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/{job['id']}") == job


def test_exec_exit_codes(deployment: Deployment) -> None:
    rpool = deployment.rpool
    failed = rpool("exec", SEED_NODE, SEED_CONTAINER, "--", "sh", "-c", "echo partial; exit 2")
    assert failed.code == 3, failed
    assert failed.stdout == "partial\n"
    assert "ended error" in failed.stderr
    # Following a job that outlives --wait-timeout: exit 7, the job left running.
    slow = rpool("exec", SEED_NODE, SEED_CONTAINER, "--wait-timeout", "0.5", "--", "sleep", "30")
    assert slow.code == 7, slow
    running = api_json(deployment, f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs")
    assert isinstance(running, list)
    for job in running:
        detail = api_json(deployment, f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/{job['id']}")
        if isinstance(detail, dict) and detail.get("state") == "running" and job["id"] != \
                "f3976780-f369-45df-ab54-206149dc000e":
            call(deployment.url, "DELETE", f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/{job['id']}")
    detached = rpool.ok("exec", "--detach", "--json", SEED_NODE, SEED_CONTAINER, "--", "echo", "x").json()
    assert detached["status"] == 202 and detached["job"]


def test_reboot_wait(deployment: Deployment) -> None:
    before = api_json(deployment, f"/nodes/{SEED_NODE}/info")
    assert isinstance(before, dict)
    result = deployment.rpool.ok("reboot", SEED_NODE, "--wait", "--wait-timeout", "30", "--json").json()
    assert result["node"] == SEED_NODE and result["status"] == "running"
    after = api_json(deployment, f"/nodes/{SEED_NODE}/info")
    assert isinstance(after, dict)
    assert result["bootTime"] == after["bootTime"] != before["bootTime"]
    node = api_json(deployment, f"/nodes/{SEED_NODE}")
    assert isinstance(node, dict) and node["status"] == "running"
    # A boot time counts seconds: reboot again once the next boot cannot
    # share the last one's second (a node too quick to be seen down would
    # otherwise look as if it had not rebooted).
    deadline = time.monotonic() + 10
    while True:
        info = api_json(deployment, f"/nodes/{SEED_NODE}/info")
        assert isinstance(info, dict)
        if info["uptime"] >= 1:
            break
        assert time.monotonic() < deadline, f"the node's uptime did not reach 1 s: {info}"
        time.sleep(0.05)
    human = deployment.rpool.ok("node", "reboot", SEED_NODE, "--wait", "--wait-timeout", "30")
    assert human.stdout.startswith(f"node {SEED_NODE} rebooted in ")


def test_not_found_exits_4(deployment: Deployment) -> None:
    run = deployment.rpool("node", "mem", "nosuchnode")
    assert run.code == 4, run
    assert run.stdout == ""
    assert run.stderr.startswith("rpool: GET /nodes/nosuchnode/mem: 404: ")
    assert "nosuchnode" in run.stderr
    missing = deployment.rpool("container", "show", SEED_NODE, "nosuchcontainer")
    assert missing.code == 4, missing


def test_call_any_operation(deployment: Deployment, tmp_path: Path) -> None:
    rpool = deployment.rpool
    body = tmp_path / "bridge.json"
    body.write_text(json.dumps({"name": "clibr0", "networkMode": "static", "nat": False,
                                "setting": {"cidr": "10.77.0.1/24"}}))
    created = rpool.ok("call", "CreateBridge", "--param", f"nodeid={SEED_NODE}", "--body", f"@{body}",
                       "--json")
    assert created.json() == {"status": 201, "location": f"/nodes/{SEED_NODE}/bridges/clibr0"}
    try:
        shown = rpool.ok("call", "GetBridge", "-p", f"nodeid={SEED_NODE}", "-p", "bridgeid=clibr0", "--json")
        assert shown.json() == api_json(deployment, f"/nodes/{SEED_NODE}/bridges/clibr0")
        assert shown.json()["name"] == "clibr0"
    finally:
        rpool.ok("call", "DeleteBridge", "-p", f"nodeid={SEED_NODE}", "-p", "bridgeid=clibr0")
    assert rpool("call", "GetBridge", "-p", f"nodeid={SEED_NODE}", "-p", "bridgeid=clibr0").code == 4
    # A body on stdin.
    joined = rpool.ok("call", "JoinZerotier", "-p", f"nodeid={SEED_NODE}", "--body", "-", "--json",
                      stdin='{"nwid": "a09acf02336ce8b2"}')
    assert joined.json()["status"] == 201
    rpool.ok("call", "ExitZerotier", "-p", f"nodeid={SEED_NODE}", "-p", "zerotierid=a09acf02336ce8b2")


def test_call_mistakes_exit_2(deployment: Deployment) -> None:
    rpool = deployment.rpool
    unknown = rpool("call", "GetMemInf", "-p", f"nodeid={SEED_NODE}")
    assert unknown.code == 2 and "did you mean GetMemInfo" in unknown.stderr, unknown
    assert rpool("call", "GetMemInfo", "-p", "nodename=x").code == 2
    assert rpool("call", "GetMemInfo").code == 2
    assert rpool("call", "CreateBridge", "-p", f"nodeid={SEED_NODE}", "--body", "{not json").code == 2
    assert rpool("call", "CreateBridge", "-p", f"nodeid={SEED_NODE}", "--body", "@/no/such/file").code == 2
    invalid = rpool("call", "CreateBridge", "-p", f"nodeid={SEED_NODE}", "--field", "name=x")
    assert invalid.code == 4 and ": 400: " in invalid.stderr, invalid


def test_generated_api_commands(deployment: Deployment, tmp_path: Path) -> None:
    rpool = deployment.rpool
    mem = rpool.ok("api", "node-info", "get-mem-info", SEED_NODE, "--json").json()
    assert mem == api_json(deployment, f"/nodes/{SEED_NODE}/mem")
    upload = tmp_path / "hello.txt"
    upload.write_bytes(b"uploaded by rpool\n")
    rpool.ok("api", "container-files", "file-upload", SEED_NODE, SEED_CONTAINER, "--path", "/tmp/rpool.txt",
             "--body", f"@{upload}")
    downloaded = rpool.ok("api", "container-files", "file-download", SEED_NODE, SEED_CONTAINER,
                          "--path", "/tmp/rpool.txt")
    assert downloaded.stdout == "uploaded by rpool\n"
    rpool.ok("call", "FileDownload", "-p", f"nodeid={SEED_NODE}", "-p", f"containername={SEED_CONTAINER}",
             "-p", "path=/tmp/rpool.txt", "--output", str(tmp_path / "copy.txt"))
    assert (tmp_path / "copy.txt").read_bytes() == b"uploaded by rpool\n"


def test_every_contract_operation_is_reachable(deployment: Deployment) -> None:
    listed = deployment.rpool.ok("operations", "--json").json()
    by_id = {row["operation"]: row for row in listed}
    assert {op.name for op in OPERATIONS} <= set(by_id)
    assert len(OPERATIONS) == 91
    for op in OPERATIONS:
        assert (by_id[op.name]["method"], by_id[op.name]["path"]) == (op.method, op.path)
    described = deployment.rpool.ok("operations", "CreateContainer")
    assert described.stdout.startswith("CreateContainer: POST /nodes/{nodeid}/containers")
    assert "flist: string (required)" in described.stdout


def test_vm_lifecycle_with_wait(deployment: Deployment) -> None:
    rpool = deployment.rpool
    vmid = f"clivm_{deployment.backend}"
    created = rpool.ok("vm", "create", SEED_NODE, vmid, "--cpu", "1", "--memory", "256", "--nic", "default",
                       "--wait", "--json").json()
    assert (created["status"], created["vmStatus"]) == (201, "running")
    try:
        assert {"id": vmid, "status": "running"} in rpool.ok("vms", SEED_NODE, "--json").json()
        stopped = rpool.ok("vm", "stop", SEED_NODE, vmid, "--wait")
        assert stopped.stdout == f"VM {vmid} stopped on {SEED_NODE} (halted)\n"
        shown = rpool.ok("vm", "show", SEED_NODE, vmid, "--json").json()
        assert (shown["status"], shown["cpu"], shown["memory"]) == ("halted", 1, 256)
        assert rpool.ok("vm", "start", SEED_NODE, vmid, "--wait", "--json").json()["vmStatus"] == "running"
    finally:
        deleted = rpool.ok("vm", "delete", SEED_NODE, vmid, "--wait", "--json").json()
    assert deleted["vmStatus"] == "gone"
    assert rpool("vm", "show", SEED_NODE, vmid).code == 4
