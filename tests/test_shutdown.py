"""
Graceful stop of a real ``twistd rpoold``: SIGTERM stops accepting
connections, lets the requests in flight finish (up to the grace period),
and the process exits 0.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from testbed.http_api import Reply, call
from testbed.mock_pool import MOCK_CONFIG
from testbed.ports import port_open
from testbed.processes import Child, wait_until
from testbed.twistd import start_rpoold
from tests.support.deployments import Core0Deployment
from tests.support.scenario import N2, N


def _start(tmp_path: Path, reboot_seconds: float, grace: float) -> tuple[Child, str]:
    config = tmp_path / "rpoold.toml"
    config.write_text(
        MOCK_CONFIG.replace("reboot_seconds = 0.2", f"reboot_seconds = {reboot_seconds}")
        + f"\n[server]\ngrace_period = {grace}\n"
    )
    return start_rpoold(str(config))


def _in_flight(base: str) -> float:
    text = call(base, "GET", "/metrics").body.decode()
    match = re.search(r"^rpoold_http_requests_in_flight (\S+)$", text, re.MULTILINE)
    assert match is not None
    return float(match.group(1)) - 1  # not counting this /metrics request


def _stopped_line(output: str) -> tuple[int, int, int]:
    match = re.search(r"stopped: (\d+) request\(s\) received, (\d+) answered, (\d+) aborted", output)
    assert match is not None, output
    received, answered, aborted = (int(g) for g in match.groups())
    return received, answered, aborted


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(tmp_path: Path) -> None:
    child, base = _start(tmp_path, reboot_seconds=3, grace=20)
    port = int(base.rsplit(":", 1)[1])
    try:
        assert call(base, "POST", f"/nodes/{N}/reboot").status == 204
        count = 12
        with ThreadPoolExecutor(count) as pool:
            # Each waits for the node to come back: in flight for about 3 s.
            futures = [pool.submit(call, base, "GET", f"/nodes/{N}/state") for _ in range(count)]
            wait_until(lambda: _in_flight(base) >= count, 10, "requests in flight")
            child.signal(signal.SIGTERM)
            wait_until(lambda: not port_open(port), 5, "listening stopped")
            assert child.alive(), "the daemon exited before its requests were answered"
            replies: list[Reply] = [f.result(timeout=30) for f in futures]
        assert [r.status for r in replies] == [200] * count
        assert all("cpu" in r.json() for r in replies)
        assert all(r.header("Connection") == "close" for r in replies)
        assert child.process.wait(30) == 0
        output = child.output()
        assert "waiting for" in output
        _, _, aborted = _stopped_line(output)
        assert aborted == 0
    finally:
        child.stop()


def test_grace_period_bounds_the_wait(tmp_path: Path) -> None:
    child, base = _start(tmp_path, reboot_seconds=60, grace=0.5)
    try:
        assert call(base, "POST", f"/nodes/{N}/reboot").status == 204
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(call, base, "GET", f"/nodes/{N}/state") for _ in range(2)]
            wait_until(lambda: _in_flight(base) >= 2, 10, "requests in flight")
            child.signal(signal.SIGTERM)
            assert child.process.wait(20) == 0
            failures = [f.exception(timeout=10) for f in futures]
        assert all(isinstance(e, (ConnectionError, OSError)) for e in failures), failures
        assert "grace period over: dropping 2 request(s)" in child.output()
    finally:
        child.stop()


def _burst_then_sigterm(child: Child, base: str, paths: list[str], clients: int = 8,
                        before: int = 300) -> int:
    """
    ``clients`` threads request ``paths`` in turn, one connection per
    request, and the daemon gets SIGTERM once ``before`` answers are in.
    A request either gets its full answer or never gets in (connection
    refused, or reset by the kernel before the daemon accepted it); the
    daemon's own count of requests it received equals the answers the
    clients got, it aborted none, and it exits 0.

    :returns: how many requests were answered.
    """
    port = int(base.rsplit(":", 1)[1])
    answered = 0
    bad: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        nonlocal answered
        i = offset
        while not stop.is_set():
            try:
                reply = call(base, "GET", paths[i % len(paths)], timeout=10)
            except (ConnectionRefusedError, ConnectionResetError):
                if not port_open(port):
                    return
                continue
            except OSError as e:
                with lock:
                    bad.append(repr(e))
                return
            i += 1
            with lock:
                if reply.status == 200:
                    answered += 1
                else:
                    bad.append(f"{reply.status} {reply.body[:80]!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: answered >= before, 60, "burst under way")
        child.signal(signal.SIGTERM)
        assert child.process.wait(30) == 0
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        child.stop()
    assert bad == []
    received, server_answered, aborted = _stopped_line(child.output())
    assert aborted == 0
    assert server_answered == received == answered
    return answered


def test_sigterm_during_a_burst_loses_no_accepted_request(tmp_path: Path) -> None:
    child, base = _start(tmp_path, reboot_seconds=0.2, grace=10)
    paths = [f"/nodes/{N}", f"/nodes/{N}/mem", "/nodes", f"/nodes/{N}/containers/vfw_21/jobs"]
    _burst_then_sigterm(child, base, paths)


def test_sigterm_during_a_burst_on_core0_loses_no_accepted_request() -> None:
    """
    The same against ``etc/core0.toml`` and core0sim: the requests in
    flight wait for nodes over Redis; the backend then closes its
    connections to them.
    """
    deployment = Core0Deployment(nodes=2).start()
    try:
        assert deployment.rpoold is not None
        child, deployment.rpoold = deployment.rpoold, None
        paths = [f"/nodes/{N}/mem", "/nodes", f"/nodes/{N}/containers/vfw_21/jobs", f"/nodes/{N2}/cpus",
                 f"/nodes/{N}/processes", "/vdisks"]
        _burst_then_sigterm(child, deployment.url, paths, before=200)
        assert "core0: closed the connections to 2 node(s)" in child.output()
    finally:
        deployment.stop()


def _listening(port: int) -> bool:
    """Whether any socket of this network namespace listens on TCP ``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state = fields[1], fields[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def test_port_is_free_after_exit(tmp_path: Path) -> None:
    """
    Once the daemon has exited nothing listens on its port, and the port
    can be bound again as twistd binds it (``SO_REUSEADDR``), both polled
    with a deadline.

    A plain ``bind`` right after the exit is not the test: it fails while
    any socket holds the port, such as the daemon's side of a connection
    the daemon closed first (the drain closes idle kept-alive connections,
    and answers given while draining close theirs), which stays in
    ``TIME_WAIT`` on the daemon's port for a minute, or a short-lived
    socket of another program given that port (it came from the ephemeral
    range) on a busy machine.  A kept-alive connection is held open across
    the stop here so that the first case always happens.
    """
    child, base = _start(tmp_path, reboot_seconds=0.2, grace=1)
    port = int(base.rsplit(":", 1)[1])
    assert _listening(port)
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        kept.request("GET", f"/nodes/{N}")
        answer = kept.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") != "close"
        answer.read()
        child.signal(signal.SIGTERM)
        assert child.process.wait(20) == 0
    finally:
        kept.close()
    wait_until(lambda: not _listening(port), 10, "the listening socket closed")
    wait_until(lambda: _can_listen(port), 10, "the port bound again with SO_REUSEADDR")


def _can_listen(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True
