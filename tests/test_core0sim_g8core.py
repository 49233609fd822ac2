"""
Conformance: the published g8core 1.0.0 client, unchanged, against a
``twistd core0sim`` subprocess (g8core is blocking, so it runs in the test
thread, not in a reactor).  Covers what protocol reference 7.1 lists and
the three tolerances of 7.2: (a) ``filesystem.open`` mode ``"wx"``, (b)
``process.kill`` with a job id, (c) ``corex.create`` with the legacy
``network`` argument.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator

import pytest
from g8core.client import Client, ContainerClient, Timeout

from plugins.poolsim.pool import SEED_CONTAINER_ID, SEED_NODE
from testbed.core0sim import Core0Sim

FLIST = "https://hub.example.org/ubuntu1604.flist"


def connect(sim: Core0Sim, index: int = 0) -> Client:
    node = sim.entries[index]
    client = Client(node.host, port=node.port, password=node.password or "", db=node.db)
    # Client(timeout=...) leaves the attribute unset in 1.0.0: set it after.
    client.timeout = 10
    return client


@pytest.fixture
def client(core0sim: Core0Sim) -> Client:
    assert core0sim.entries[0].id == SEED_NODE
    return connect(core0sim)


@pytest.fixture
def container(client: Client) -> Iterator[tuple[int, ContainerClient]]:
    cid = client.container.create(FLIST, hostname="conformance")
    yield cid, client.container.client(cid)
    if str(cid) in client.container.list():
        client.container.terminate(cid)


def job_ids(client: Client) -> list[str]:
    return [job["cmd"]["id"] for job in client.json("job.list", {})]


def test_ping(client: Client) -> None:
    pong = client.ping()
    assert isinstance(pong, str)
    assert pong.startswith("PONG")


def test_info(client: Client) -> None:
    cpus = client.info.cpu()
    assert cpus and {"cores", "mhz", "cacheSize", "flags", "family"} <= set(cpus[0])
    mem = client.info.mem()
    assert mem["total"] >= mem["available"] > 0
    nics = client.info.nic()
    assert any(nic["name"] == "eth0" and nic["addrs"] for nic in nics)
    disks = client.info.disk()
    assert disks and all({"device", "mountpoint", "fstype", "opts"} <= set(d) for d in disks)
    assert client.info.os()["hostname"] == "core0node"


def test_every_node_answers(core0sim: Core0Sim) -> None:
    second = connect(core0sim, 1)
    assert second.info.os()["hostname"] == f"node-{core0sim.entries[1].id}"
    assert second.container.list() == {}


def test_system_job_listed_then_killed_by_process_kill(client: Client) -> None:
    # Tolerance (b): process.kill {"id": job id} kills the job.
    response = client.system("sleep 30")
    assert response.id in job_ids(client)
    listed = client.json("job.list", {"id": response.id})
    assert listed[0]["cmd"]["arguments"]["name"] == "sleep"
    client.process.kill(response.id)
    result = response.get()
    assert result.state == "KILLED"
    assert response.id not in job_ids(client)


def test_system_and_bash_results(client: Client) -> None:
    echoed = client.system("echo hello world").get()
    assert echoed.state == "SUCCESS"
    assert echoed.stdout == "hello world\n"
    assert echoed.stderr == ""
    failed = client.bash("echo out; exit 2").get()
    assert failed.state == "ERROR"
    assert failed.stdout == "out\n"


def test_get_times_out_on_a_long_job(client: Client) -> None:
    response = client.system("sleep 30")
    with pytest.raises(Timeout):
        response.get(timeout=1)
    client.process.kill(response.id)
    assert response.get().state == "KILLED"


def test_process_list(client: Client) -> None:
    response = client.system("sleep 30")
    try:
        processes = client.process.list()
        assert all({"pid", "ppid", "cmdline", "name", "cpu", "rss"} <= set(p) for p in processes)
        assert any(p["cmdline"] == "sleep 30" for p in processes)
        assert any(p["name"] == "redis-server" for p in processes)
    finally:
        client.process.kill(response.id)
    response.get()
    assert not any(p["cmdline"] == "sleep 30" for p in client.process.list())


def test_seed_container_is_there(client: Client) -> None:
    listed = client.container.list()
    entry = listed[str(SEED_CONTAINER_ID)]
    assert entry["container"]["arguments"]["tags"] == ["vfw_21"]
    assert client.container.client(SEED_CONTAINER_ID).info.os()["hostname"] == "vfw_21"


def test_container_lifecycle(client: Client) -> None:
    cid = client.container.create(FLIST, hostname="web1", port={8080: 80})
    assert isinstance(cid, int)
    listed = client.container.list()
    assert listed[str(cid)]["container"]["arguments"]["root"] == FLIST
    assert f"core-{cid}" in job_ids(client)

    inside = client.container.client(cid)
    assert inside.ping().startswith("PONG")
    assert inside.info.os()["hostname"] == "web1"
    result = inside.system("echo from inside").get()
    assert result.state == "SUCCESS"
    assert result.stdout == "from inside\n"
    inside_jobs = inside.json("job.list", {})
    assert [job["cmd"]["command"] for job in inside_jobs] == ["job.list"]

    client.container.terminate(cid)
    assert str(cid) not in client.container.list()
    assert f"core-{cid}" not in job_ids(client)
    runner = client.response_for(f"core-{cid}").get()
    assert runner.state == "KILLED"


def test_job_killed_inside_a_container(client: Client, container: tuple[int, ContainerClient]) -> None:
    _, inside = container
    response = inside.system("sleep 30")
    assert response.id in [job["cmd"]["id"] for job in inside.json("job.list", {})]
    inside.process.kill(response.id)
    result = response.get()
    assert result.state == "KILLED"
    assert result.payload["container"] == container[0]


def test_terminate_unknown_container_fails(client: Client) -> None:
    with pytest.raises(RuntimeError):
        client.container.terminate(4242)


def test_file_round_trip_in_a_container(container: tuple[int, ContainerClient]) -> None:
    # Tolerance (a): upload() opens with "wx".  1.2 MB: three 512 KiB blocks.
    _, inside = container
    blob = os.urandom(1_200_000)
    inside.filesystem.upload("/tmp/blob.bin", io.BytesIO(blob))
    assert inside.filesystem.exists("/tmp/blob.bin")
    out = io.BytesIO()
    inside.filesystem.download("/tmp/blob.bin", out)
    assert out.getvalue() == blob
    listing = {entry["name"]: entry for entry in inside.filesystem.list("/tmp")}
    assert listing["blob.bin"]["size"] == len(blob)


def test_file_round_trip_on_the_node(client: Client) -> None:
    path = f"/tmp/{uuid.uuid4()}.txt"
    client.filesystem.upload(path, io.BytesIO(b"line one\nline two\n"))
    out = io.BytesIO()
    client.filesystem.download(path, out)
    assert out.getvalue() == b"line one\nline two\n"
    client.filesystem.remove(path)
    assert not client.filesystem.exists(path)


def test_wx_mode_writes_without_truncating(client: Client) -> None:
    # Tolerance (a), exactly: "wx" writes from the start and keeps the rest.
    path = f"/tmp/{uuid.uuid4()}.txt"
    client.filesystem.upload(path, io.BytesIO(b"AAAAAAAAAA"))
    client.filesystem.upload(path, io.BytesIO(b"BB"))
    out = io.BytesIO()
    client.filesystem.download(path, out)
    assert out.getvalue() == b"BBAAAAAAAA"
    # The reference modes are unchanged: "w" truncates.
    fd = client.filesystem.open(path, "w")
    client.filesystem.write(fd, b"C")
    client.filesystem.close(fd)
    out = io.BytesIO()
    client.filesystem.download(path, out)
    assert out.getvalue() == b"C"


def test_kill_by_pid_still_needs_a_pid(client: Client) -> None:
    # Tolerance (b) is narrow: process.kill without id or pid stays an error.
    result = client.raw("process.kill", {"signal": 15}).get()
    assert result.state == "ERROR"
    assert json.loads(result.data) == "invalid PID"


def test_container_with_legacy_network(client: Client) -> None:
    # Tolerance (c): the older agent's network argument becomes nics.
    client.bridge.create("confbr0")
    try:
        cid = client.container.create(
            FLIST, zerotier="a09acf02336ce8b2", bridge=[("confbr0", "10.20.30.5/24")])
        try:
            nics = client.container.list()[str(cid)]["container"]["arguments"]["nics"]
            assert [(n["type"], n["id"]) for n in nics] == [("zerotier", "a09acf02336ce8b2"),
                                                           ("bridge", "confbr0")]
            assert nics[1]["config"]["cidr"] == "10.20.30.5/24"
            inside = client.container.client(cid)
            addresses = [a["addr"] for nic in inside.info.nic() for a in nic["addrs"]]
            assert "10.20.30.5/24" in addresses
        finally:
            client.container.terminate(cid)
    finally:
        client.bridge.delete("confbr0")
    assert "confbr0" not in client.bridge.list()


def test_container_without_network(client: Client) -> None:
    cid = client.container.create(FLIST)
    try:
        assert client.container.list()[str(cid)]["container"]["arguments"]["nics"] == []
    finally:
        client.container.terminate(cid)


def test_disk_list(client: Client) -> None:
    disks = client.disk.list()
    devices = disks["blockdevices"]
    assert devices
    for device in devices:
        assert device["type"] == "disk"
        assert isinstance(device["size"], str) and int(device["size"]) > 0
        assert device["rota"] in ("0", "1")
    info = client.disk.getinfo(devices[0]["name"])
    assert info["size"] == int(devices[0]["size"])


def test_zerotier_list_is_empty(client: Client) -> None:
    assert client.zerotier.list() == []


def test_btrfs_and_kvm_listings(client: Client) -> None:
    assert client.btrfs.list() == []
    assert client.experimental.kvm.list() == []
