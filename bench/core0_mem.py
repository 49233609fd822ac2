"""
Throughput of the core0 backend against a bare Klein endpoint, side by side.

Starts core0sim (``--nodes N``, one run for everything) and ``twistd
rpoold`` on the core0 backend with core0sim's node file, and a bare Klein
app that answers ``GET /mem`` with the same JSON from memory (and, for
reference, rpoold on the in-memory mock backend: the same app without
Redis).  Then, with ``wrk``, at 1, 16 and 64 connections: req/s and p50/p99
latency of ``GET /nodes/{id}/mem`` on each, the ratios to the bare
endpoint, and the CPU time per request of every process involved; rpoold's
RSS; and the time of one ``GET /nodes`` over all N nodes (first call,
which also asks each node for its hostname and address, and a second one).

Run from the checkout (``wrk`` comes from the Debian package, see ``make
bench``)::

    python bench/core0_mem.py [--nodes 500] [--duration 5] [--pool-size 8] [--no-access-log]

The figures are for comparing ideas in one run on one machine: only the
ratios mean something elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
from testbed.twistd import start_rpoold, twistd  # noqa: E402

SEED_NODE = "525400123456"


def serve_bare(port: int, body_file: str) -> None:
    """The baseline: a Klein app answering the same bytes from memory."""
    from klein import Klein
    from twisted.internet import endpoints, reactor
    from twisted.web.server import Site

    body = Path(body_file).read_bytes()
    app = Klein()

    @app.route("/mem", methods=["GET"])
    def mem(request: object) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")  # type: ignore[attr-defined]
        return body

    endpoint = endpoints.serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    endpoint.listen(Site(app.resource()))
    reactor.run()  # type: ignore[attr-defined]


def wrk(url: str, connections: int, duration: float,
        watch: dict[str, list[int]] | None = None) -> dict[str, float]:
    """
    req/s and latency percentiles (ms) of ``wrk`` at ``connections``, and
    the CPU time per request of the processes in ``watch``.
    """
    before = {name: cpu_seconds(pids) for name, pids in (watch or {}).items()}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
        check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {}
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        latency[percent] = float(value) * factor
    requests = max(1.0, rate * max(1, round(duration)))
    cpu = {f"cpu:{name}": (cpu_seconds(pids) - before[name]) / requests * 1000
           for name, pids in (watch or {}).items()}
    return {"rps": rate, "p50": latency.get("50", 0.0), "p99": latency.get("99", 0.0),
            "errors": float(errors.group(1)) if errors else 0.0, **cpu}


def get(url: str, timeout: float = 120) -> tuple[float, bytes]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return time.monotonic() - started, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500, help="simulated nodes (default 500)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", default="1,16,64", help="wrk connection counts (default 1,16,64)")
    parser.add_argument("--pool-size", type=int, default=8, help="core0 backend pool_size (default 8)")
    parser.add_argument("--nodes-per-redis", type=int, default=25,
                        help="core0sim nodes sharing one redis-server (default 25)")
    parser.add_argument("--no-access-log", action="store_true",
                        help="run both rpoold instances with server.access_log = false")
    parser.add_argument("--sim", default="", help="command starting the simulator instead of "
                        "'twistd core0sim' (gets --nodes N --config-out PATH)")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "BODY_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[0]), args.bare[1])
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package 'wrk'; `make bench` installs it)")

    work = Path(tempfile.mkdtemp(prefix="core0-bench-"))
    node_file = work / "nodes.toml"
    sim_argv = (args.sim.split() if args.sim else twistd("core0sim"))
    sim_options = [] if args.sim else ["--nodes-per-redis", str(args.nodes_per_redis)]
    sim = Child([*sim_argv, "--nodes", str(args.nodes), "--config-out", str(node_file), *sim_options],
                env=python_env(), cwd=ROOT)
    children = [sim]
    try:
        wait_until(node_file.exists, 600, "core0sim", sim.process)
        access_log = "false" if args.no_access_log else "true"
        config = work / "core0.toml"
        config.write_text(
            f"[server]\nrequest_timeout = 60\naccess_log = {access_log}\n\n"
            f'[backends.core0]\nplugin = "core0"\nnodes_file = "{node_file}"\n'
            f"pool_size = {args.pool_size}\ntimeout = 10\nping_timeout = 5\n\n"
            '[backends.mock]\nplugin = "mock"\n\n'
            '[families]\ndefault = "core0"\nstorageclusters = "mock"\nvdisks = "mock"\n')
        rpoold, base = start_rpoold(str(config))
        children.append(rpoold)
        _, body = get(f"{base}/nodes/{SEED_NODE}/mem")
        (work / "mem.json").write_bytes(body)
        bare_port = free_port()
        bare = Child([sys.executable, __file__, "--bare", str(bare_port), str(work / "mem.json")], cwd=ROOT)
        children.append(bare)
        wait_until(lambda: port_open(bare_port), 30, "bare klein", bare.process)
        _, bare_body = get(f"http://127.0.0.1:{bare_port}/mem")
        assert bare_body == body, "the baseline must answer the same JSON"

        mock_config = work / "mock.toml"  # the same app on the in-memory mock: no Redis at all
        mock_config.write_text(f"[server]\naccess_log = {access_log}\n\n"
                               '[backends.mock]\nplugin = "mock"\n\n[families]\ndefault = "mock"\n')
        mock, mock_base = start_rpoold(str(mock_config))
        children.append(mock)
        targets = {
            "core0": (f"{base}/nodes/{SEED_NODE}/mem",
                      {"rpoold": [rpoold.process.pid], "core0sim": [sim.process.pid],
                       "redis": children_of(sim.process.pid)}),
            "mock": (f"{mock_base}/nodes/{SEED_NODE}/mem", {"rpoold-mock": [mock.process.pid]}),
            "bare": (f"http://127.0.0.1:{bare_port}/mem", {"bare": [bare.process.pid]}),
        }
        for url, _ in targets.values():
            wrk(url, 16, 1)  # warm up: connections to the node, code paths
        print(f"GET /nodes/{{id}}/mem, {args.duration:g} s per run, wrk -t1, core0 pool_size "
              f"{args.pool_size}, {os.cpu_count()} CPUs, access log {'off' if args.no_access_log else 'on'}; "
              "core0 = rpoold on the core0 backend, mock = rpoold on the mock backend, bare = bare Klein")
        header = f"{'conns':>5}"
        for name in targets:
            header += f"  {name + ' req/s':>11} {'p50 ms':>7} {'p99 ms':>7}"
        print(header + f"  {'core0/bare':>10} {'mock/bare':>9}")
        cpu_lines = []
        for connections in (int(c) for c in args.connections.split(",")):
            runs = {name: wrk(url, connections, args.duration, watch)
                    for name, (url, watch) in targets.items()}
            line = f"{connections:>5}"
            for run in runs.values():
                line += f"  {run['rps']:>11.0f} {run['p50']:>7.2f} {run['p99']:>7.2f}"
            bare_rps = runs["bare"]["rps"]
            print(line + f"  {runs['core0']['rps'] / bare_rps:>10.2f} {runs['mock']['rps'] / bare_rps:>9.2f}")
            for name, run in runs.items():
                if run["errors"]:
                    print(f"  ({int(run['errors'])} {name} answers were not 2xx)")
            cpu_lines.append(f"{connections:>5}  " + "  ".join(
                f"{k[4:]} {v:.3f}" for run in runs.values() for k, v in run.items() if k.startswith("cpu:")))
        print("CPU ms per request (user+system):")
        for line in cpu_lines:
            print(line)
        print(f"rpoold RSS after the runs: {rss_kib(rpoold.process.pid) / 1024:.1f} MiB")
        first, listing = get(f"{base}/nodes")
        second, _ = get(f"{base}/nodes")
        nodes = json.loads(listing)
        running = sum(1 for n in nodes if n["status"] == "running")
        print(f"GET /nodes with {len(nodes)} nodes ({running} running): first {first * 1000:.0f} ms, "
              f"second {second * 1000:.0f} ms")
        print(f"rpoold RSS after GET /nodes: {rss_kib(rpoold.process.pid) / 1024:.1f} MiB")
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
