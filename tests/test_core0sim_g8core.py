"""
Conformance: the published g8core 1.0.0 client, unchanged, against a
``twistd core0sim`` subprocess (g8core is blocking, so it runs in the test
thread, not in a reactor).  Covers what protocol reference 7.1 lists, the
three tolerances of 7.2: (a) ``filesystem.open`` mode ``"wx"``, (b)
``process.kill`` with a job id, (c) ``corex.create`` with the legacy
``network`` argument; and every other g8core 1.0.0 call core0sim serves,
with what that takes: (d) ``kvm.destroy`` by name (and ``kvm.create``'s
``bridge`` list), (e) ``disk.*`` with a ``/dev/`` path, (f) ``btrfs.create``
with the default (empty) profiles (docs/core0sim.md).
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# Every other g8core 1.0.0 call core0sim serves -------------------------------------------


def poll(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` (a g8core call) until it holds, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout} s")
        time.sleep(0.02)


def disk_entry(client: Client, name: str) -> dict[str, Any]:
    return next(d for d in client.disk.list()["blockdevices"] if d["name"] == name)


def test_bridge_create_list_delete(client: Client) -> None:
    assert "core0" in client.bridge.list()
    client.bridge.create("plainbr0")
    client.bridge.create("staticbr0", hwaddr="02:42:ac:11:00:02", network="static",
                         settings={"cidr": "10.30.0.1/24"})
    client.bridge.create("dnsbr0", network="dnsmasq", nat=True,
                         settings={"cidr": "10.31.0.1/24", "start": "10.31.0.10", "end": "10.31.0.99"})
    try:
        assert {"plainbr0", "staticbr0", "dnsbr0"} <= set(client.bridge.list())
        with pytest.raises(RuntimeError):
            client.bridge.create("staticbr0")
    finally:
        for name in ("plainbr0", "staticbr0", "dnsbr0"):
            client.bridge.delete(name)
    assert not {"plainbr0", "staticbr0", "dnsbr0"} & set(client.bridge.list())
    with pytest.raises(RuntimeError):
        client.bridge.delete("plainbr0")
    with pytest.raises(RuntimeError):
        client.bridge.delete("core0")


def test_disk_mktable_and_mkpart_with_a_device_path(client: Client) -> None:
    # g8core documents "/dev/sda" for mktable; core0's backends send "sda".
    client.disk.mktable("/dev/sdd")
    assert "children" not in disk_entry(client, "sdd")
    client.disk.mkpart("/dev/sdd", "1m", "100%")
    try:
        (part,) = disk_entry(client, "sdd")["children"]
        assert part["name"] == "sdd1"
        assert part["pkname"] == "sdd"
        info = client.disk.getinfo("sdd", "sdd1")
        assert info["name"] == "sdd1"
        assert info["size"] == int(part["size"])
        assert client.disk.getinfo("sdd")["free"] == []
        with pytest.raises(RuntimeError):
            client.disk.mkpart("/dev/sdd", "1m", "100%")
    finally:
        client.disk.rmpart("sdd", 1)
    assert "children" not in disk_entry(client, "sdd")
    assert client.disk.getinfo("sdd")["free"]


def test_disk_calls_with_bare_names(client: Client) -> None:
    client.disk.mktable("sdd", "msdos")
    client.disk.mkpart("sdd", 1, "100%", part_type="primary")
    assert [p["name"] for p in disk_entry(client, "sdd")["children"]] == ["sdd1"]
    client.disk.mktable("sdd")
    assert "children" not in disk_entry(client, "sdd")


def test_disk_calls_on_an_unknown_disk_fail(client: Client) -> None:
    for call in (lambda: client.disk.mktable("/dev/sdz"), lambda: client.disk.mkpart("sdz", "1m", "100%"),
                 lambda: client.disk.rmpart("sdz", 1), lambda: client.disk.getinfo("sdz")):
        with pytest.raises(RuntimeError):
            call()
    with pytest.raises(RuntimeError):
        # A path that is not a device's does not name one either.
        client.disk.mktable("/dev/mapper/sdd")
    with pytest.raises(RuntimeError):
        client.disk.rmpart("sdd", 1)


def test_disk_mount_and_umount(client: Client) -> None:
    client.disk.mktable("/dev/sdd")
    client.disk.mkpart("/dev/sdd", "1m", "100%")
    try:
        client.disk.mount("/dev/sdd1", "/mnt/g8core-data")
        try:
            mounts = {d["device"]: d for d in client.info.disk()}
            assert mounts["/dev/sdd1"]["mountpoint"] == "/mnt/g8core-data"
            assert disk_entry(client, "sdd")["children"][0]["mountpoint"] == "/mnt/g8core-data"
            with pytest.raises(RuntimeError):
                client.disk.mount("/dev/sdd1", "/mnt/elsewhere")
            with pytest.raises(RuntimeError):
                client.disk.mktable("/dev/sdd")  # busy
        finally:
            client.disk.umount("/dev/sdd1")
        assert "/dev/sdd1" not in {d["device"] for d in client.info.disk()}
        with pytest.raises(RuntimeError):
            client.disk.umount("/dev/sdd1")
        with pytest.raises(RuntimeError):
            client.disk.mount("/dev/sdz1", "/mnt/g8core-data")
    finally:
        client.disk.mktable("/dev/sdd")


@pytest.fixture
def partitions(client: Client) -> Iterator[list[str]]:
    """One partition on each of sdb and sdc, made as g8core documents; wiped after."""
    for disk in ("/dev/sdb", "/dev/sdc"):
        client.disk.mktable(disk)
        client.disk.mkpart(disk, "1m", "100%")
    yield ["/dev/sdb1", "/dev/sdc1"]
    for device in ("/dev/sdb1", "/dev/sdc1"):
        if device in {d["device"] for d in client.info.disk()}:
            client.disk.umount(device)
            break
    for disk in ("/dev/sdb", "/dev/sdc"):
        client.disk.mktable(disk)
    assert client.btrfs.list() == []


def test_btrfs_create_list_info_and_devices(client: Client, partitions: list[str]) -> None:
    first, second = partitions
    client.btrfs.create("g8pool", [first], metadata_profile="single", data_profile="single")
    (listed,) = client.btrfs.list()
    assert listed["label"] == "g8pool"
    assert [d["path"] for d in listed["devices"]] == [first]
    with pytest.raises(RuntimeError):
        client.btrfs.create("g8pool", [second])
    with pytest.raises(RuntimeError):
        client.btrfs.info("/mnt/g8pool")  # not mounted yet
    client.disk.mount(first, "/mnt/g8pool")
    info = client.btrfs.info("/mnt/g8pool")
    assert info["label"] == "g8pool"
    assert info["data"]["profile"] == "single"
    assert {"system", "metadata", "globalreserve"} <= set(info)

    client.btrfs.device_add("/mnt/g8pool", second)
    assert [d["path"] for d in client.btrfs.info("/mnt/g8pool")["devices"]] == [first, second]
    # device_remove does not wait for its result in g8core 1.0.0: poll.
    client.btrfs.device_remove("/mnt/g8pool", second)
    poll(lambda: [d["path"] for d in client.btrfs.list()[0]["devices"]] == [first],
         "btrfs.device_remove")


def test_btrfs_create_with_default_profiles(client: Client, partitions: list[str]) -> None:
    # g8core's create() sends "" for a profile not given: mkfs.btrfs's default.
    client.btrfs.create("g8defaults", partitions)
    client.disk.mount(partitions[0], "/mnt/g8defaults")
    info = client.btrfs.info("/mnt/g8defaults")
    assert info["total_devices"] == 2
    assert (info["data"]["profile"], info["metadata"]["profile"]) == ("single", "raid1")


def test_btrfs_subvolumes(client: Client, partitions: list[str]) -> None:
    client.btrfs.create("g8subvols", partitions[:1], "single", "single")
    client.disk.mount(partitions[0], "/mnt/g8subvols")
    client.btrfs.subvol_create("/mnt/g8subvols/data")
    client.filesystem.upload("/mnt/g8subvols/data/file.txt", io.BytesIO(b"kept in the snapshot"))
    client.btrfs.subvol_quota("/mnt/g8subvols/data", "10G")
    client.btrfs.subvol_snapshot("/mnt/g8subvols/data", "/mnt/g8subvols/snap1", read_only=True)
    listed = client.btrfs.subvol_list("/mnt/g8subvols")
    assert sorted(entry["Path"] for entry in listed) == ["data", "snap1"]
    assert all({"ID", "Gen", "TopLevel"} <= set(entry) for entry in listed)
    out = io.BytesIO()
    client.filesystem.download("/mnt/g8subvols/snap1/file.txt", out)
    assert out.getvalue() == b"kept in the snapshot"
    with pytest.raises(RuntimeError):
        client.btrfs.subvol_create("/mnt/g8subvols/data")
    client.btrfs.subvol_delete("/mnt/g8subvols/snap1")
    client.btrfs.subvol_delete("/mnt/g8subvols/data")
    assert client.btrfs.subvol_list("/mnt/g8subvols") == []
    with pytest.raises(RuntimeError):
        client.btrfs.subvol_delete("/mnt/g8subvols/data")


def test_zerotier_join_list_leave(client: Client) -> None:
    network = "8056c2e21c000001"
    client.zerotier.join(network)
    try:
        (joined,) = client.zerotier.list()
        assert joined["nwid"] == network
        assert joined["status"] == "OK"
        assert joined["assignedAddresses"]
    finally:
        client.zerotier.leave(network)
    assert client.zerotier.list() == []
    with pytest.raises(RuntimeError):
        client.zerotier.leave(network)
    with pytest.raises(RuntimeError):
        client.zerotier.join("not-a-network")


def test_kvm_create_list_destroy_by_name(client: Client) -> None:
    kvm = client.experimental.kvm
    client.bridge.create("kvmbr0")
    try:
        kvm.create("g8vm", [{"url": "nbd+unix:///vm?socket=/tmp/vm.socket"},
                            {"type": "cdrom", "url": "/tmp/boot.iso"}],
                   cpu=2, memory=1024, port={2222: 22}, bridge=["kvmbr0"])
        (domain,) = kvm.list()
        assert domain["name"] == "g8vm"
        assert domain["state"] == "running"
        assert isinstance(domain["id"], int) and domain["uuid"]
        info = client.json("kvm.info", {"uuid": domain["uuid"]})
        assert (info["cpu"], info["memory"]) == (2, 1024)
        assert [(n["type"], n["id"]) for n in info["nics"]] == [("bridge", "kvmbr0")]
        with pytest.raises(RuntimeError):
            kvm.create("g8vm", [{"url": "/tmp/other.qcow2"}])
        # g8core destroys by name; core0's backends by uuid: both work.
        kvm.destroy("g8vm")
        assert kvm.list() == []
        with pytest.raises(RuntimeError):
            kvm.destroy("g8vm")
        kvm.create("g8vm2", [{"url": "/tmp/vm2.qcow2"}])
        (domain,) = kvm.list()
        client.sync("kvm.destroy", {"uuid": domain["uuid"]})
        assert kvm.list() == []
    finally:
        client.bridge.delete("kvmbr0")


def test_container_with_bridge_zerotier_ports_and_hostname(client: Client) -> None:
    client.bridge.create("ctbr0", network="static", settings={"cidr": "10.40.0.1/24"})
    try:
        cid = client.container.create(
            FLIST, hostname="g8web", zerotier="a09acf02336ce8b2",
            bridge=[("ctbr0", "10.40.0.5/24")], port={8080: 80, 4433: 443})
        try:
            arguments = client.container.list()[str(cid)]["container"]["arguments"]
            assert arguments["hostname"] == "g8web"
            assert {int(k): v for k, v in arguments["port"].items()} == {8080: 80, 4433: 443}
            assert [(n["type"], n["id"]) for n in arguments["nics"]] == [
                ("zerotier", "a09acf02336ce8b2"), ("bridge", "ctbr0")]
            inside = client.container.client(cid)
            assert inside.info.os()["hostname"] == "g8web"
            addresses = [a["addr"] for nic in inside.info.nic() for a in nic["addrs"]]
            assert "10.40.0.5/24" in addresses
        finally:
            client.container.terminate(cid)
        with pytest.raises(RuntimeError):
            client.container.create(FLIST, bridge=[("nosuchbr", "dhcp")])
    finally:
        client.bridge.delete("ctbr0")


def test_container_with_host_network_and_mount(client: Client) -> None:
    client.filesystem.mkdir("/tmp/g8mount")
    cid = client.container.create(FLIST, mount={"/tmp/g8mount": "/data"}, host_network=True)
    try:
        arguments = client.container.list()[str(cid)]["container"]["arguments"]
        assert arguments["host_network"] is True
        assert arguments["mount"] == {"/tmp/g8mount": "/data"}
    finally:
        client.container.terminate(cid)
        client.filesystem.remove("/tmp/g8mount")
    with pytest.raises(RuntimeError):
        client.container.create(FLIST, mount={"/no/such/dir": "/data"})


@pytest.mark.parametrize("where", ["node", "container"])
def test_filesystem_manager(client: Client, container: tuple[int, ContainerClient],
                            tmp_path: Path, where: str) -> None:
    fs = client.filesystem if where == "node" else container[1].filesystem
    base = f"/tmp/{uuid.uuid4()}"
    fs.mkdir(f"{base}/a/b")
    assert fs.exists(f"{base}/a/b")
    local = tmp_path / "local.txt"
    local.write_bytes(b"from a local file\n")
    fs.upload_file(f"{base}/a/b/file.txt", str(local))
    listing = {entry["name"]: entry for entry in fs.list(f"{base}/a/b")}
    assert listing["file.txt"]["size"] == len(b"from a local file\n")
    assert listing["file.txt"]["is_dir"] is False
    assert {entry["name"]: entry["is_dir"] for entry in fs.list(f"{base}/a")} == {"b": True}

    fs.chmod(f"{base}/a/b/file.txt", 0o600)
    assert {e["name"]: e["mode"] for e in fs.list(f"{base}/a/b")}["file.txt"] & 0o777 == 0o600
    fs.chmod(f"{base}/a", 0o700, recursive=True)
    fs.chown(f"{base}/a/b/file.txt", "root", "root")
    fs.chown(f"{base}/a", "root", "root", recursive=True)
    with pytest.raises(RuntimeError):
        fs.chmod(f"{base}/missing", 0o600)
    with pytest.raises(RuntimeError):
        fs.chown(f"{base}/missing", "root", "root")

    fs.move(f"{base}/a/b/file.txt", f"{base}/moved.txt")
    assert not fs.exists(f"{base}/a/b/file.txt")
    copy = tmp_path / "copy.txt"
    fs.download_file(f"{base}/moved.txt", str(copy))
    poll(lambda: copy.read_bytes() == b"from a local file\n", "download_file")
    fs.move(f"{base}/a", f"{base}/c")
    assert fs.exists(f"{base}/c/b") and not fs.exists(f"{base}/a")
    with pytest.raises(RuntimeError):
        fs.move(f"{base}/missing", f"{base}/elsewhere")

    fd = fs.open(f"{base}/appended.txt", "w")
    fs.write(fd, b"one\n")
    fs.close(fd)
    fd = fs.open(f"{base}/appended.txt", "a")
    fs.write(fd, b"two\n")
    fs.close(fd)
    fd = fs.open(f"{base}/appended.txt")
    assert fs.read(fd) == b"one\ntwo\n"
    assert fs.read(fd) == b""
    fs.close(fd)
    with pytest.raises(RuntimeError):
        fs.open(f"{base}/missing.txt")

    fs.remove(base)
    assert not fs.exists(base)


def test_job_list_and_kill_through_raw(client: Client) -> None:
    # g8core 1.0.0 has no job manager: job.* through raw() / json().
    response = client.system("sleep 30")
    (listed,) = client.json("job.list", {"id": response.id})
    assert listed["cmd"]["command"] == "core.system"
    assert client.json("job.kill", {"id": response.id, "signal": 9}) is True
    assert response.get().state == "KILLED"
    assert client.json("job.kill", {"id": response.id, "signal": 9}) is False
    with pytest.raises(RuntimeError):
        client.json("job.list", {"id": response.id})


def test_process_list_by_pid_and_kill_by_pid(client: Client) -> None:
    response = client.system("sleep 30")
    (process,) = [p for p in client.process.list() if p["cmdline"] == "sleep 30"]
    assert client.json("process.list", {"pid": process["pid"]})[0]["pid"] == process["pid"]
    client.json("process.kill", {"pid": process["pid"], "signal": 15})
    assert response.get().state == "ERROR"
    assert not [p for p in client.process.list() if p["cmdline"] == "sleep 30"]


def test_process_kill_inside_a_container(container: tuple[int, ContainerClient]) -> None:
    _, inside = container
    response = inside.system("sleep 30")
    assert any(p["cmdline"] == "sleep 30" for p in inside.process.list())
    inside.process.kill(response.id, signal.SIGKILL)
    assert response.get().state == "KILLED"
    assert not any(p["cmdline"] == "sleep 30" for p in inside.process.list())
