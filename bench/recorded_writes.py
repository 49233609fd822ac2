"""
What a record costs a request: three ``twistd rpoold`` on the core0
backend, against one core0sim, alike but for ``[store] url`` (``memory:``,
an SQLite file, a ``redis-server``), measured one after the other in the
same run, each figure on each store in turn (starting with another store
each time).

    python bench/recorded_writes.py                        # 16 connections, 3 s per figure
    python bench/recorded_writes.py --connections 1 16 --seconds 5
    python bench/recorded_writes.py --dir /var/tmp         # the SQLite file on that filesystem
    python bench/recorded_writes.py --redis-fsync always   # Redis's AOF synced at every write

The figures, each at every ``--connections`` (one client thread with one
kept-alive connection per connection, each on things of its own):

- ``container stop/start``: stop, then start, a container (the start reads
  its create body from the record); each request counted;
- ``container create/delete``: a new container (its name claimed with an
  ``add`` of the whole spec), then deleted (the record removed);
- ``vm update``: ``PUT`` of a halted VM's cpu and memory (one record read,
  one written; the node is asked only whether the VM runs);
- ``GET mem``: ``GET /nodes/{id}/mem``, which needs no record: it must not
  get slower with a durable store.  With ``wrk`` installed it is measured
  with ``wrk`` too (which the client threads do not limit).

For each: requests per second, median and p99 latency, non-2xx answers,
and rpoold's CPU time per request.  SQLite syncs every commit
(``synchronous=FULL``), so its writes cost what an ``fsync`` costs on the
filesystem of ``--dir``; Redis runs with ``appendonly yes`` and
``appendfsync everysec`` (``--redis-fsync``), as production should.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procfs import cpu_seconds  # noqa: E402
from testbed.core0sim import Core0Sim  # noqa: E402
from testbed.processes import Child, wait_until  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402
from testbed.toml_text import toml  # noqa: E402
from testbed.twistd import start_rpoold  # noqa: E402

NODES = ("525400123456", "525400123457")
FLIST = "https://hub.example/ubuntu.flist"

#: One request of a step: method, path, JSON body (or ``None``), the status expected.
Request = tuple[str, str, Any, int]


@dataclass
class Daemon:
    """One rpoold and what it names its things (its own, on the shared nodes)."""

    store: str
    child: Child
    base: str
    prefix: str

    def node(self, worker: int) -> str:
        return NODES[worker % len(NODES)]

    def container(self, worker: int) -> str:
        return f"{self.prefix}c{worker}"

    def vm(self, worker: int) -> str:
        return f"{self.prefix}v{worker}"


@dataclass(frozen=True)
class Figure:
    """A figure: its name and the requests of one step of a worker."""

    name: str
    step: Callable[[Daemon, int, int], list[Request]]


def container_body(name: str) -> dict[str, Any]:
    return {"name": name, "hostname": name, "flist": FLIST, "nics": [{"type": "default"}],
            "initProcesses": [{"name": "sleep", "args": ["3600"]}]}


def stop_start(d: Daemon, w: int, n: int) -> list[Request]:
    path = f"/nodes/{d.node(w)}/containers/{d.container(w)}"
    return [("POST", f"{path}/stop", None, 204), ("POST", f"{path}/start", None, 201)]


def create_delete(d: Daemon, w: int, n: int) -> list[Request]:
    name = f"{d.container(w)}n{n}"
    base = f"/nodes/{d.node(w)}/containers"
    return [("POST", base, container_body(name), 201), ("DELETE", f"{base}/{name}", None, 204)]


def vm_update(d: Daemon, w: int, n: int) -> list[Request]:
    size = 1 + n % 2
    return [("PUT", f"/nodes/{d.node(w)}/vms/{d.vm(w)}", {"cpu": size, "memory": 512 * size}, 204)]


def get_mem(d: Daemon, w: int, n: int) -> list[Request]:
    return [("GET", f"/nodes/{d.node(w)}/mem", None, 200)]


FIGURES = [Figure("container stop/start", stop_start), Figure("container create/delete", create_delete),
           Figure("vm update", vm_update), Figure("GET mem", get_mem)]


class Connection:
    """One kept-alive HTTP connection (opened again when the server closed it)."""

    def __init__(self, base: str) -> None:
        host, port = base.rsplit("/", 1)[1].split(":")
        self.host, self.port = host, int(port)
        self.http = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(2):
            try:
                self.http.request(method, path, body=data, headers=headers)
                answer = self.http.getresponse()
                answer.read()
                if answer.getheader("Connection", "").lower() == "close":
                    self.http.close()
                return answer.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.http.close()
                self.http = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    cpu_ms: float = 0.0

    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(daemon: Daemon, figure: Figure, connections: int, seconds: float, round_: int) -> Result:
    """``connections`` workers repeat ``figure``'s step until ``seconds`` are over."""
    result = Result()
    lock = threading.Lock()
    gate = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(w: int) -> None:
        connection = Connection(daemon.base)
        latencies: list[float] = []
        errors = 0
        gate.wait()
        n = round_ * 1_000_000
        try:
            while time.perf_counter() < deadline[0]:
                for method, path, body, status in figure.step(daemon, w, n):
                    started = time.perf_counter()
                    got = connection.request(method, path, body)
                    latencies.append(time.perf_counter() - started)
                    errors += got != status
                n += 1
        finally:
            connection.close()
            with lock:
                result.latencies += latencies
                result.errors += errors

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    cpu = cpu_seconds([daemon.child.process.pid])
    started = time.perf_counter()
    deadline[0] = started + seconds
    gate.wait()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - started
    result.cpu_ms = (cpu_seconds([daemon.child.process.pid]) - cpu) / max(1, len(result.latencies)) * 1e3
    return result


def wrk(url: str, connections: int, seconds: float) -> tuple[float, float, float, int]:
    """:returns: requests/s, p50 and p99 ms, and non-2xx answers of ``wrk -t1`` on ``url``."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
               for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, latency.get("50", 0.0), latency.get("99", 0.0), int(errors.group(1)) if errors else 0


def expect(daemon: Daemon, method: str, path: str, status: int, body: Any = None) -> None:
    connection = Connection(daemon.base)
    try:
        got = connection.request(method, path, body)
    finally:
        connection.close()
    if got != status:
        raise RuntimeError(f"{daemon.store}: {method} {path} answered {got}, not {status}")


def prepare(daemon: Daemon, workers: int) -> None:
    """For each worker, a running container and a halted VM of its own."""
    for w in range(workers):
        node = daemon.node(w)
        expect(daemon, "POST", f"/nodes/{node}/containers", 201, container_body(daemon.container(w)))
        expect(daemon, "POST", f"/nodes/{node}/vms", 201, {"id": daemon.vm(w), "memory": 512, "cpu": 1})
    for w in range(workers):
        path = f"/nodes/{daemon.node(w)}/vms/{daemon.vm(w)}"

        def running(path: str = path) -> bool:
            connection = Connection(daemon.base)
            try:
                connection.http.request("GET", path)
                return bool(json.loads(connection.http.getresponse().read())["status"] == "running")
            finally:
                connection.close()

        wait_until(running, 30, f"vm {path} running")
        expect(daemon, "POST", f"{path}/stop", 204)


def start(store: str, url: str, work: Path, sim: Core0Sim, prefix: str) -> Daemon:
    config = work / f"{store}.toml"
    config.write_text(toml({
        "server": {"request_timeout": 60},
        "store": {"url": url},
        "families": {"default": "core0"},
        "backends": {"core0": {"plugin": "core0", "nodes_file": str(sim.node_file), "timeout": 30,
                               "ping_timeout": 5, "transition_seconds": 0.05}},
    }))
    child, base = start_rpoold(str(config))
    return Daemon(store, child, base, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, nargs="+", default=[16],
                        help="concurrent connections of each figure (default 16)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per figure (default 3)")
    parser.add_argument("--dir", default=None, help="directory of the SQLite file (default: the temp dir)")
    parser.add_argument("--redis-fsync", default="everysec", choices=["always", "everysec", "no"],
                        help="redis-server's appendfsync (AOF on; default everysec)")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recorded-writes-", dir=options.dir))
    sim = Core0Sim(len(NODES)).start()
    redis = RedisServer(extra=("--appendonly", "yes", "--appendfsync", options.redis_fsync)).start()
    daemons: list[Daemon] = []
    try:
        forms = {"memory": "memory:", "sqlite": f"sqlite:///{work / 'records.db'}",
                 "redis": f"redis://127.0.0.1:{redis.port}/0"}
        for i, (store, url) in enumerate(forms.items()):
            daemons.append(start(store, url, work, sim, f"b{i}"))
        workers = max(options.connections)
        for daemon in daemons:
            prepare(daemon, workers)
            measure(daemon, FIGURES[0], workers, 0.5, 0)  # warm up: connections to the nodes, code paths
            measure(daemon, FIGURES[3], workers, 0.5, 0)
        print(f"rpoold on the core0 backend, core0sim with {len(NODES)} nodes, {os.cpu_count()} CPUs, "
              f"{options.seconds:g} s per figure, client threads with kept-alive connections in this process")
        print(f"SQLite file in {work} (synchronous=FULL); redis-server with appendonly yes, appendfsync "
              f"{options.redis_fsync}")
        print(f"{'figure':<24} {'conns':>5} {'store':<7} {'req/s':>8} {'median ms':>10} {'p99 ms':>8} "
              f"{'non-2xx':>7} {'rpoold CPU ms/req':>18}")
        round_ = 1
        turn = 0
        for figure in FIGURES:
            for connections in options.connections:
                # Each figure starts with another store: what else runs on the machine meanwhile
                # falls on each in turn.
                turn = (turn + 1) % len(daemons)
                for daemon in daemons[turn:] + daemons[:turn]:
                    result = measure(daemon, figure, connections, options.seconds, round_)
                    round_ += 1
                    print(f"{figure.name:<24} {connections:>5} {daemon.store:<7} {result.rate():>8.0f} "
                          f"{statistics.median(result.latencies) * 1e3:>10.2f} "
                          f"{percentile(result.latencies, 0.99) * 1e3:>8.2f} {result.errors:>7} "
                          f"{result.cpu_ms:>18.2f}", flush=True)
        if shutil.which("wrk"):
            for connections in options.connections:
                for daemon in daemons:
                    rate, p50, p99, errors = wrk(f"{daemon.base}/nodes/{NODES[0]}/mem", connections,
                                                 options.seconds)
                    print(f"{'GET mem (wrk -t1)':<24} {connections:>5} {daemon.store:<7} {rate:>8.0f} "
                          f"{p50:>10.2f} {p99:>8.2f} {errors:>7} {'':>18}", flush=True)
        else:
            print("(wrk is not installed: GET mem is measured with the client threads only)")
    finally:
        for daemon in daemons:
            daemon.child.stop()
        redis.stop()
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(redis.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
