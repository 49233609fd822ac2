"""
``twistd core0sim`` as a process: its node list, its redis-server
children (one per node or shared through database indexes), its options,
and that no child survives it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import redis

from plugins.core0sim import nodelist
from testbed.core0sim import Core0Sim, is_redis_server
from testbed.ports import free_port
from testbed.processes import ROOT, python_env, wait_until
from testbed.twistd import twistd


def call(node: nodelist.NodeEntry, command: str,
         arguments: dict[str, object] | None = None) -> dict[str, object]:
    """One command, the way every core0 client sends it."""
    connection = redis.Redis(host=node.host, port=node.port, db=node.db, password=node.password)
    try:
        job = str(uuid.uuid4())
        connection.rpush("core:default", json.dumps({"id": job, "command": command,
                                                     "arguments": arguments or {}}))
        raw = connection.brpoplpush(f"result:{job}", f"result:{job}", 10)
        assert raw is not None, f"node {node.id} did not answer {command}"
        result: dict[str, object] = json.loads(raw)
        return result
    finally:
        connection.close()


def test_node_list_round_trip(tmp_path: Path) -> None:
    entries = [
        nodelist.NodeEntry("525400123456", "127.0.0.1", 40123, 0, "core0node"),
        nodelist.NodeEntry("525400123457", "127.0.0.1", 40123, 1, 'odd "name"', password="pw"),
    ]
    target = tmp_path / "nodes.toml"
    nodelist.write(target, entries)
    assert nodelist.read(target) == entries
    assert os.listdir(tmp_path) == ["nodes.toml"]
    text = target.read_text()
    assert text.count("[[nodes]]") == 2
    assert 'password = "pw"' in text


def test_nodes_sharing_redis_servers() -> None:
    sim = Core0Sim(nodes=3, extra=("--nodes-per-redis", "2")).start()
    try:
        nodes = sim.entries
        assert [n.id for n in nodes] == ["525400123456", "525400123457", "525400123458"]
        assert [n.hostname for n in nodes] == ["core0node", "node-525400123457", "node-525400123458"]
        assert [n.db for n in nodes] == [0, 1, 0]
        assert nodes[0].port == nodes[1].port != nodes[2].port
        assert len(sim.redis_pids) == 2
        for node in nodes:
            info = call(node, "info.os")
            assert info["state"] == "SUCCESS"
            assert json.loads(str(info["data"]))["hostname"] == node.hostname
        # Database indexes keep the nodes apart.
        assert json.loads(str(call(nodes[1], "corex.list")["data"])) == {}
        assert "9" in json.loads(str(call(nodes[0], "corex.list")["data"]))
        assert os.listdir(sim.dir) == ["nodes.toml"]
    finally:
        assert sim.stop(signal.SIGINT) in (0, -signal.SIGINT)
    assert "stopped 2 redis-server(s)" in sim.final_output


def test_one_redis_server_per_node_by_default(core0sim: Core0Sim) -> None:
    assert len(core0sim.entries) == 2
    assert len(core0sim.redis_pids) == 2
    assert {n.db for n in core0sim.entries} == {0}
    assert len({n.port for n in core0sim.entries}) == 2
    for node in core0sim.entries:
        connection = redis.Redis(host=node.host, port=node.port, decode_responses=True)
        try:
            assert connection.config_get("save") == {"save": ""}
            assert connection.config_get("appendonly") == {"appendonly": "no"}
            assert connection.config_get("bind") == {"bind": "127.0.0.1"}
        finally:
            connection.close()


def test_password_and_port_base() -> None:
    base = free_port()
    sim = Core0Sim(nodes=1, extra=("--password", "s3cret", "--port-base", str(base))).start()
    try:
        (node,) = sim.entries
        assert node.port == base
        assert node.password == "s3cret"
        with socket.create_connection((node.host, node.port), timeout=5) as raw:
            raw.sendall(b"*3\r\n$5\r\nRPUSH\r\n$12\r\ncore:default\r\n$1\r\nx\r\n")
            assert raw.recv(100).startswith(b"-NOAUTH")
        assert call(node, "core.ping")["state"] == "SUCCESS"
    finally:
        sim.stop()


def test_exec_runs_real_programs() -> None:
    sim = Core0Sim(nodes=1, extra=("--exec",)).start()
    try:
        result = call(sim.entries[0], "core.system", {"name": "uname", "args": ["-s"]})
        assert result["state"] == "SUCCESS"
        assert result["streams"] == [os.uname().sysname + "\n", ""]
    finally:
        sim.stop()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_redis_children_die_with_a_killed_simulator() -> None:
    sim = Core0Sim(nodes=2).start()
    assert sim.child is not None
    assert len(sim.redis_pids) == 2
    os.kill(sim.child.process.pid, signal.SIGKILL)
    sim.child.process.wait(10)
    wait_until(lambda: not any(is_redis_server(pid) for pid in sim.redis_pids), 10.0,
               "redis-server children to exit")
    sim.stop()


@pytest.mark.parametrize(("options", "named"), [
    (("--nodes-per-redis", "0"), b"nodes-per-redis"),
    (("--config-out", "{file}/nodes.toml"), b"--config-out: cannot make directory"),
])
def test_bad_options_stop_at_start(options: tuple[str, ...], named: bytes, tmp_path: Path) -> None:
    # A directory under a regular file cannot be made, even by root.
    (tmp_path / "file").write_text("")
    argv = [option.format(file=tmp_path / "file") for option in options]
    process = subprocess.run(twistd("core0sim", *argv), env={**os.environ, **python_env()},
                             cwd=ROOT, capture_output=True, timeout=60)
    assert process.returncode != 0
    assert named in process.stdout + process.stderr
    assert b"Traceback" not in process.stdout + process.stderr


def test_config_out_makes_its_directory() -> None:
    sim = Core0Sim(nodes=1)
    sim.node_file = sim.dir / "run" / "sub" / "nodes.toml"
    sim.start()
    try:
        assert [entry.id for entry in sim.entries] == [entry.id for entry in nodelist.read(sim.node_file)]
        assert len(sim.entries) == 1
    finally:
        sim.stop()
