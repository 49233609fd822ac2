"""
``GET /nodes/{id}/mem`` through the core0 backend against a bare Klein
endpoint, side by side in one run, shared and unshared, with 1 and more
worker processes.

Starts the nodes (by default ``testbed.fast_agent``: ``--nodes N`` nodes,
25 per ``redis-server`` through database indexes, answered at once by one
cheap process, so that the daemon is what is measured; ``--agent core0sim``
for the simulator), ``twistd rpoold`` on the core0 backend once per worker
count of ``--workers`` (records in an SQLite file, as workers need), rpoold
on the in-memory mock backend, and a bare Klein app answering the same JSON
from memory.  Then, with ``wrk`` at each of ``--connections``:

- bare Klein, rpoold on the mock, rpoold on core0 *shared* (every request
  to one node: concurrent requests share the node's runs), each with one
  process;
- rpoold on core0 *unshared* (the requests go round ``--unshared-nodes``
  nodes, a wrk Lua script: no two in flight share a run, a dashboard
  polling a pool), with each worker count, and *shared* with each worker
  count above 1.

For each: req/s, p50/p99 latency, the CPU time per request of rpoold (all
its processes: a workers' parent and its children) or of the bare app, and
the RSS of all those processes.  Then the ratios the goals are about, the
time of ``GET /nodes`` over all N nodes (first call, then the next ones),
and the Redis connections rpoold holds to one redis-server.

Run from the checkout (``wrk`` from the Debian package, see ``make bench``)::

    python bench/core0_mem.py [--nodes 500] [--duration 5] [--connections 64] [--workers 1,2]
                              [--agent fast|core0sim] [--no-access-log]

The figures are for comparing ideas in one run on one machine: only the
ratios mean something elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procfs import cpu_seconds, rss_kib  # noqa: E402
from testbed.ports import free_port, port_open  # noqa: E402
from testbed.processes import Child, children_of, python_env, wait_until  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402
from testbed.twistd import start_rpoold, twistd  # noqa: E402

SEED_NODE = "525400123456"


def serve_bare(port: int, body_file: str) -> None:
    """The baseline: a Klein app answering the same bytes from memory, on the same route."""
    from klein import Klein
    from twisted.internet import endpoints, reactor
    from twisted.web.server import Site

    body = Path(body_file).read_bytes()
    app = Klein()

    @app.route("/nodes/<nodeid>/mem", methods=["GET"])
    def mem(request: object, nodeid: str) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")  # type: ignore[attr-defined]
        return body

    endpoint = endpoints.serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    endpoint.listen(Site(app.resource()))
    reactor.run()  # type: ignore[attr-defined]


def processes_of(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found = [pid]
    for child in children_of(pid):
        found += processes_of(child)
    return found


def round_robin_script(path: Path, ids: list[str]) -> Path:
    """A wrk Lua script asking each node's ``mem`` in turn."""
    names = ", ".join(json.dumps(i) for i in ids)
    path.write_text(
        f"local ids = {{{names}}}\nlocal n = 0\n"
        "request = function()\n  n = n + 1\n"
        '  return wrk.format("GET", "/nodes/" .. ids[(n % #ids) + 1] .. "/mem")\nend\n')
    return path


def wrk(base: str, connections: int, duration: float, pids: list[int],
        script: Path | None = None, others: list[int] | None = None) -> dict[str, float]:
    """
    req/s and latency percentiles (ms) of ``wrk`` at ``connections`` (the
    seed node's ``mem``, or ``script``'s requests), and the CPU time per
    request (us) of ``pids`` and their descendants, of ``others`` (the
    nodes' processes) and of wrk itself.
    """
    watched = [p for pid in pids for p in processes_of(pid)]
    before = cpu_seconds(watched)
    others_before = cpu_seconds(others or [])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_before = usage.ru_utime + usage.ru_stime
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, f"{base}/nodes/{SEED_NODE}/mem"],
                         check=True, capture_output=True, text=True).stdout
    spent = cpu_seconds(watched) - before
    others_spent = cpu_seconds(others or []) - others_before
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_spent = usage.ru_utime + usage.ru_stime - wrk_before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {}
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        latency[percent] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    requests = max(1.0, float(total.group(1)) if total else rate * duration)
    return {"rps": rate, "p50": latency.get("50", 0.0), "p99": latency.get("99", 0.0),
            "errors": float(errors.group(1)) if errors else 0.0, "cpu_us": spent / requests * 1e6,
            "others_us": others_spent / requests * 1e6, "wrk_us": wrk_spent / requests * 1e6}


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for p in processes_of(pid):
            try:
                total += rss_kib(p)
            except (OSError, RuntimeError):
                pass
    return total / 1024


def get(url: str, timeout: float = 120) -> tuple[float, bytes]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return time.monotonic() - started, body


def _socket_inodes(pids: list[int]) -> set[str]:
    found = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(target[8:-1])
        except OSError:
            continue
    return found


def redis_clients(port: int, pids: list[int], name: str = "rpoold-core0") -> int:
    """How many connections named ``name`` a redis-server on loopback holds from ``pids``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n")
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    ports = {int(m) for m in re.findall(rf"addr=127\.0\.0\.1:(\d+) .*?name={re.escape(name)} ",
                                         data.decode(errors="replace"))}
    inodes = _socket_inodes([p for pid in pids for p in processes_of(pid)])
    owned = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port in ports and fields[9] in inodes:
            owned += 1
    return owned


class FastPool:
    """``--nodes`` nodes on redis-servers (``per_redis`` each), answered by ``testbed.fast_agent``."""

    def __init__(self, nodes: int, per_redis: int, work: Path) -> None:
        self.servers = [RedisServer(extra=("--databases", str(max(16, per_redis)))).start()
                        for _ in range((nodes + per_redis - 1) // per_redis)]
        ids = [SEED_NODE] + [f"5254{index:08x}" for index in range(1, nodes)]
        self.node_file = work / "nodes.toml"
        self.node_file.write_text("".join(
            f'[[nodes]]\nid = "{node}"\nhost = "127.0.0.1"\nport = {self.servers[i // per_redis].port}\n'
            f"db = {i % per_redis}\n" for i, node in enumerate(ids)))
        self.ids = ids
        self.agent = Child([sys.executable, "-m", "testbed.fast_agent", str(self.node_file)],
                           env=python_env(), cwd=ROOT)
        wait_until(lambda: "serving" in self.agent.output(), 60, "fast agent", self.agent.process)
        self.pids = [self.agent.process.pid] + [s.child.process.pid for s in self.servers if s.child]
        self.first_port = self.servers[0].port

    def stop(self) -> None:
        self.agent.stop()
        for server in self.servers:
            server.stop()


class SimPool:
    """``--nodes`` nodes of ``twistd core0sim``."""

    def __init__(self, nodes: int, per_redis: int, work: Path) -> None:
        self.node_file = work / "nodes.toml"
        self.sim = Child([*twistd("core0sim"), "--nodes", str(nodes), "--config-out", str(self.node_file),
                          "--nodes-per-redis", str(per_redis)], env=python_env(), cwd=ROOT)
        wait_until(self.node_file.exists, 600, "core0sim", self.sim.process)
        import tomllib

        entries = tomllib.loads(self.node_file.read_text())["nodes"]
        self.ids = [e["id"] for e in entries]
        self.first_port = entries[0]["port"]
        self.pids = [self.sim.process.pid]

    def stop(self) -> None:
        self.sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500, help="nodes (default 500)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", default="64", help="wrk connection counts (default 64)")
    parser.add_argument("--workers", default="1,2", help="worker counts of the unshared runs (default 1,2)")
    parser.add_argument("--unshared-nodes", type=int, default=64,
                        help="nodes the unshared requests go round (default 64)")
    parser.add_argument("--pool-size", type=int, default=8, help="core0 backend pool_size (default 8)")
    parser.add_argument("--nodes-per-redis", type=int, default=25,
                        help="nodes sharing one redis-server (default 25)")
    parser.add_argument("--agent", choices=("fast", "core0sim"), default="fast",
                        help="who answers the nodes' commands (default fast: testbed.fast_agent)")
    parser.add_argument("--no-access-log", action="store_true", help="server.access_log = false")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "BODY_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[0]), args.bare[1])
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package 'wrk'; `make bench` installs it)")
    worker_counts = [int(w) for w in args.workers.split(",")]
    access_log = "false" if args.no_access_log else "true"

    work = Path(tempfile.mkdtemp(prefix="core0-bench-"))
    pool = (FastPool if args.agent == "fast" else SimPool)(args.nodes, args.nodes_per_redis, work)
    children: list[Child] = []
    try:
        servers: dict[int, tuple[Child, str]] = {}
        for count in sorted({1, *worker_counts}):
            config = work / f"core0-{count}.toml"
            config.write_text(
                f"[server]\nrequest_timeout = 60\naccess_log = {access_log}\nworkers = {count}\n\n"
                f'[store]\nurl = "sqlite:///records-{count}.db"\n\n'
                f'[backends.core0]\nplugin = "core0"\nnodes_file = "{pool.node_file}"\n'
                f"pool_size = {args.pool_size}\ntimeout = 10\nping_timeout = 1\n\n"
                '[families]\ndefault = "core0"\n')
            servers[count] = start_rpoold(str(config), timeout=120)
            children.append(servers[count][0])
        base = servers[1][1]
        _, body = get(f"{base}/nodes/{SEED_NODE}/mem")
        (work / "mem.json").write_bytes(body)
        bare_port = free_port()
        bare = Child([sys.executable, __file__, "--bare", str(bare_port), str(work / "mem.json")], cwd=ROOT)
        children.append(bare)
        wait_until(lambda: port_open(bare_port), 30, "bare klein", bare.process)
        bare_base = f"http://127.0.0.1:{bare_port}"
        assert get(f"{bare_base}/nodes/{SEED_NODE}/mem")[1] == body, "the baseline must answer the same JSON"
        mock_config = work / "mock.toml"
        mock_config.write_text(f"[server]\naccess_log = {access_log}\n\n"
                               '[backends.mock]\nplugin = "mock"\n\n[families]\ndefault = "mock"\n')
        mock, mock_base = start_rpoold(str(mock_config))
        children.append(mock)
        script = round_robin_script(work / "round_robin.lua", pool.ids[:args.unshared_nodes])

        rows: list[tuple[str, str, list[int], Path | None]] = [
            ("bare Klein", bare_base, [bare.process.pid], None),
            ("rpoold mock", mock_base, [mock.process.pid], None),
            ("rpoold core0 shared, 1 worker", base, [servers[1][0].process.pid], None),
        ]
        for count in worker_counts:
            if count > 1:
                rows.append((f"rpoold core0 shared, {count} workers", servers[count][1],
                             [servers[count][0].process.pid], None))
        for count in worker_counts:
            rows.append((f"rpoold core0 unshared, {count} worker{'s' if count > 1 else ''}",
                         servers[count][1], [servers[count][0].process.pid], script))
        for _, url, pids, row_script in rows:  # warm up: connections to the nodes, code paths
            wrk(url, 64, 2, pids, row_script)
        node_pids = [p for pid in pool.pids for p in processes_of(pid)]

        print(f"GET /nodes/{{id}}/mem, {args.duration:g} s per run, wrk -t1, {args.nodes} nodes "
              f"({args.agent} agent; unshared: {min(args.unshared_nodes, len(pool.ids))} nodes in turn), "
              f"core0 pool_size {args.pool_size}, {os.cpu_count()} CPUs, "
              f"access log {'off' if args.no_access_log else 'on'}, load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print("CPU and RSS: all the server's processes (a workers' parent and its children); "
              "nodes: the agent and redis-servers; wrk: the load generator")
        results: dict[tuple[str, int], dict[str, float]] = {}
        for connections in (int(c) for c in args.connections.split(",")):
            print(f"\n{connections} connections")
            print(f"{'':32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10} {'RSS MiB':>8}"
                  f" {'nodes us':>8} {'wrk us':>6}")
            for name, url, pids, row_script in rows:
                run = wrk(url, connections, args.duration, pids, row_script, node_pids)
                results[(name, connections)] = run
                print(f"{name:32} {run['rps']:>8.0f} {run['p50']:>7.2f} {run['p99']:>7.2f} "
                      f"{run['cpu_us']:>10.0f} {rss_mib(pids):>8.1f} {run['others_us']:>8.0f} "
                      f"{run['wrk_us']:>6.0f}"
                      + (f"  ({int(run['errors'])} answers not 2xx)" if run["errors"] else ""))
            bare_run = results[("bare Klein", connections)]
            one = results.get(("rpoold core0 unshared, 1 worker", connections))
            if one is not None:
                print(f"unshared 1 worker: CPU/request {one['cpu_us'] / bare_run['cpu_us']:.2f} x bare "
                      f"Klein's (goal <= 1.5), p99 {one['p99'] / bare_run['p99']:.2f} x bare Klein's "
                      f"(goal <= 1.5)")
                shared_one = results[("rpoold core0 shared, 1 worker", connections)]
                for count in worker_counts:
                    if count > 1:
                        more = results[(f"rpoold core0 unshared, {count} workers", connections)]
                        print(f"unshared {count} workers: {more['rps'] / one['rps']:.2f} x the req/s of 1, "
                              f"p99 {more['p99'] / bare_run['p99']:.2f} x bare Klein's")
                        shared = results[(f"rpoold core0 shared, {count} workers", connections)]
                        print(f"shared {count} workers: {shared['rps'] / shared_one['rps']:.2f} x the req/s "
                              f"of 1, p99 {shared['p99'] / bare_run['p99']:.2f} x bare Klein's")
        print()
        for count, (child, url) in servers.items():
            times = [get(f"{url}/nodes")[0] for _ in range(3 + count)]
            nodes = json.loads(get(f"{url}/nodes")[1])
            running = sum(1 for n in nodes if n["status"] == "running")
            print(f"GET /nodes, {count} worker(s), {len(nodes)} nodes ({running} running): "
                  f"first {times[0] * 1000:.0f} ms, then "
                  + ", ".join(f"{t * 1000:.0f}" for t in times[1:])
                  + f" ms; RSS {rss_mib([child.process.pid]):.1f} MiB in "
                  f"{len(processes_of(child.process.pid))} process(es); Redis connections to the "
                  f"first redis-server ({args.nodes_per_redis} nodes): "
                  f"{redis_clients(pool.first_port, [child.process.pid])}")
    finally:
        for child in reversed(children):
            child.stop()
        pool.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
