"""
``server.workers``: one port, several processes (``rpoold.workers``), over
real ``twistd rpoold`` children: every worker serves; a killed worker is
replaced; SIGTERM to the parent stops them all (exit 0); a parent killed
outright takes its workers with it; ``/metrics`` adds up every worker's
figures; and a configuration that workers cannot share is refused at start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.http_api import call
from testbed.ports import free_port
from testbed.processes import ROOT, python_env, wait_until
from testbed.twistd import start_rpoold, twistd

CONFIG = """
[server]
workers = {workers}
grace_period = 2

[store]
url = "sqlite:///records.db"

[backends.core0]
plugin = "core0"
nodes = []

[families]
default = "core0"
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _worker_of(base: str) -> dict[str, int]:
    worker: dict[str, int] = call(base, "GET", "/health").json()["worker"]
    return worker


def _workers_seen(base: str, count: int, timeout: float = 30.0) -> dict[int, int]:
    """Ask ``/health`` on fresh connections until every worker answered: index -> pid."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered"
        worker = _worker_of(base)
        assert worker["workers"] == count
        seen[worker["index"]] = worker["pid"]
    return seen


@pytest.fixture
def daemon(tmp_path: Path) -> Any:
    config = tmp_path / "rpoold.toml"
    config.write_text(CONFIG.format(workers=2))
    child, base = start_rpoold(str(config))
    yield child, base
    child.stop()


def test_every_worker_serves(daemon: Any) -> None:
    child, base = daemon
    pids = _workers_seen(base, 2)
    assert set(pids) == {0, 1} and len(set(pids.values())) == 2
    assert child.process.pid not in pids.values()
    for _ in range(10):
        assert call(base, "GET", "/nodes").json() == []


def test_a_killed_worker_is_replaced(daemon: Any) -> None:
    child, base = daemon
    pids = _workers_seen(base, 2)
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: not _alive(pids[0]), 10, "the killed worker to end")

    def replaced() -> bool:
        worker = _worker_of(base)
        return worker["index"] == 0 and worker["pid"] != pids[0]

    wait_until(replaced, 30, "worker 0 to be replaced")
    assert _alive(pids[1]) and child.alive()
    assert f"worker 0 (pid {pids[0]}) ended (signal 9)" in child.output()


def test_sigterm_to_the_parent_stops_every_worker(daemon: Any) -> None:
    child, base = daemon
    pids = _workers_seen(base, 2)
    os.kill(child.process.pid, signal.SIGTERM)
    assert child.process.wait(30) == 0
    for pid in pids.values():
        wait_until(lambda pid=pid: not _alive(pid), 10, f"worker pid {pid} to end")
    output = child.output()
    assert "stopped: 2 worker(s) ended" in output
    assert output.count("SIGTERM: stopping (grace period 2 s)") == 2


def test_workers_end_when_their_parent_is_killed(daemon: Any) -> None:
    child, base = daemon
    pids = _workers_seen(base, 2)
    os.kill(child.process.pid, signal.SIGKILL)
    for pid in pids.values():
        wait_until(lambda pid=pid: not _alive(pid), 20, f"worker pid {pid} to end")
    assert "the parent process is gone: stopping" in child.output()


def test_metrics_add_up_every_worker(daemon: Any) -> None:
    _, base = daemon
    _workers_seen(base, 2)
    for _ in range(20):
        call(base, "GET", "/nodes")
    for _ in range(4):  # whichever worker answers
        text = call(base, "GET", "/metrics").body.decode()
        lines = [line for line in text.splitlines()
                 if line.startswith('rpoold_http_requests_total{method="GET",route="/nodes",status="200"}')]
        assert [float(line.split()[-1]) for line in lines] == [20.0], lines
        assert "rpoold_http_requests_in_flight 1.0" in text  # the scrape itself


def _start_up_lines(tmp_path: Path, config_text: str, *args: str) -> tuple[int, str]:
    config = tmp_path / "rpoold.toml"
    config.write_text(config_text)
    done = subprocess.run(twistd("rpoold", "--config", str(config), *args),
                          env={**os.environ, **python_env()}, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    return done.returncode, done.stderr


def test_the_mock_and_memory_records_cannot_be_shared(tmp_path: Path) -> None:
    status, stderr = _start_up_lines(
        tmp_path, '[server]\nworkers = 2\n[backends.mock]\nplugin = "mock"\n[families]\ndefault = "mock"\n',
        "--port", f"tcp:{free_port()}:interface=127.0.0.1")
    where = f"rpoold: configuration file '{tmp_path / 'rpoold.toml'}' at 'server.workers': "
    assert status == 1
    assert stderr.splitlines() == [
        where + "2 workers cannot share backend 'mock' (plugin 'mock'): its simulated pool lives "
                "in one process's memory",
        where + "2 workers cannot share the records of store.url 'memory:': they live in one "
                "process's memory (use sqlite:///PATH or redis://...)",
    ]


def test_workers_auto_and_bad_values(tmp_path: Path) -> None:
    text = CONFIG.replace('url = "sqlite:///records.db"', 'url = "memory:"')
    status, stderr = _start_up_lines(tmp_path, text.format(workers='"many"'))
    assert status == 1 and stderr.strip().endswith(
        "at 'server.workers': expected an integer from 1 to 1024, or 'auto', got 'many'")
    if (os.cpu_count() or 1) > 1:
        status, stderr = _start_up_lines(tmp_path, text.format(workers='"auto"'))
        assert status == 1 and "(auto) cannot share the records of store.url 'memory:'" in stderr


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = _start_up_lines(tmp_path, CONFIG.format(workers=2),
                                         "--port", f"tcp:{port}:interface=127.0.0.1")
    assert status == 1
    assert len(stderr.splitlines()) == 1 and "at 'server.port': cannot listen on" in stderr
    assert "Address already in use" in stderr


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    config = tmp_path / "rpoold.toml"
    config.write_text(CONFIG.format(workers=1))
    child, base = start_rpoold(str(config))
    try:
        assert "worker" not in call(base, "GET", "/health").json()
        assert "worker processes" not in child.output()
    finally:
        child.stop()

