"""
How core0sim scales: for each layout (nodes per redis-server), start
``twistd core0sim --nodes N`` and print

- the startup time (until the node list is written),
- the memory of the simulator and of its redis-server children (RSS, and
  PSS, which counts shared pages once),
- the time to ping every node (``core.ping`` pushed to all nodes, then
  every result read),
- optionally (``--throughput``) the ``info.mem`` round trips per second
  one node serves to C concurrent clients (push + blocking read of the
  result, one connection per client).

Usage::

    python bench/core0sim_scale.py --nodes 500 --layouts 1,10,50
    python bench/core0sim_scale.py --nodes 2 --layouts 1 --throughput 64 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procfs import cpu_seconds, memory_kib  # noqa: E402
from plugins.core0sim import nodelist  # noqa: E402
from testbed.processes import (  # noqa: E402
    Child,
    children_of,
    python_env,
    wait_until,
)
from testbed.twistd import twistd  # noqa: E402

IDLE_SECONDS = 5.0


def ping_all(entries: list[nodelist.NodeEntry]) -> tuple[float, float]:
    """
    Ping every node: ``core.ping`` pushed to all nodes (one pipeline per
    redis-server, with SELECT between databases), then every result read
    (one pipeline of blocking reads per redis-server).

    :returns: seconds until all commands were pushed, and until all
        results were read.
    """
    by_server: dict[tuple[str, int], list[nodelist.NodeEntry]] = {}
    for e in entries:
        by_server.setdefault((e.host, e.port), []).append(e)
    connections = {}
    for (host, port), group in by_server.items():
        connections[(host, port)] = redis.Redis(host=host, port=port, password=group[0].password)
        connections[(host, port)].ping()
    jobs: dict[tuple[str, int], list[tuple[int, str]]] = {}
    began = time.monotonic()
    for server, group in by_server.items():
        pipe = connections[server].pipeline(transaction=False)
        jobs[server] = []
        for e in group:
            job = str(uuid.uuid4())
            jobs[server].append((e.db, job))
            pipe.execute_command("SELECT", e.db)
            pipe.rpush("core:default", json.dumps({"id": job, "command": "core.ping", "arguments": {}}))
        pipe.execute()
    pushed = time.monotonic() - began
    for server, ids in jobs.items():
        pipe = connections[server].pipeline(transaction=False)
        for db, job in ids:
            pipe.execute_command("SELECT", db)
            pipe.brpoplpush(f"result:{job}", f"result:{job}", 10)
        replies = pipe.execute()
        for raw in replies[1::2]:
            if raw is None or json.loads(raw)["state"] != "SUCCESS":
                raise RuntimeError(f"a node on {server} did not answer the ping")
    elapsed = time.monotonic() - began
    for connection in connections.values():
        connection.close()
    return pushed, elapsed


def throughput(entry: nodelist.NodeEntry, clients: int, seconds: float) -> tuple[float, float, float]:
    """(calls/s, p50 ms, p99 ms) of info.mem round trips on one node."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        r = redis.Redis(host=entry.host, port=entry.port, db=entry.db, password=entry.password)
        mine = latencies[index]
        while time.monotonic() < stop:
            job = str(uuid.uuid4())
            key = f"result:{job}"
            began = time.monotonic()
            pipe = r.pipeline(transaction=False)
            pipe.rpush("core:default", json.dumps({"id": job, "command": "info.mem", "arguments": {}}))
            pipe.brpoplpush(key, key, 10)
            _, raw = pipe.execute()
            if raw is None:
                raise RuntimeError("no result within 10 s")
            mine.append(time.monotonic() - began)
        r.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    every = sorted(x for per in latencies for x in per)
    p50 = every[len(every) // 2] * 1000
    p99 = every[int(len(every) * 0.99)] * 1000
    return len(every) / elapsed, p50, p99


def run(nodes: int, per_redis: int, clients: int, seconds: float) -> None:
    out = Path(tempfile.mkdtemp(prefix="core0sim-bench-")) / "nodes.toml"
    began = time.monotonic()
    child = Child(twistd("core0sim", "--nodes", str(nodes), "--nodes-per-redis", str(per_redis),
                         "--config-out", str(out)), env=python_env(), cwd=ROOT)
    pids: list[int] = []
    try:
        wait_until(out.exists, 600, "core0sim", child.process)
        startup = time.monotonic() - began
        entries = nodelist.read(out)
        pids = children_of(child.process.pid)
        sim_rss, sim_pss = memory_kib(child.process.pid)
        redis_mem = [memory_kib(pid) for pid in pids]
        redis_rss = sum(m[0] for m in redis_mem)
        redis_pss = sum(m[1] for m in redis_mem)
        cpu_before = cpu_seconds([child.process.pid, *pids])
        idle_began = time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_cpu = (cpu_seconds([child.process.pid, *pids]) - cpu_before) \
            / (time.monotonic() - idle_began)
        pushed, ping = ping_all(entries)
        _, ping_again = ping_all(entries)
        print(f"nodes={nodes} nodes-per-redis={per_redis} redis-servers={len(pids)}")
        print(f"  startup              {startup:8.2f} s")
        print(f"  simulator RSS        {sim_rss / 1024:8.1f} MiB (PSS {sim_pss / 1024:.1f})")
        print(f"  redis-servers RSS    {redis_rss / 1024:8.1f} MiB (PSS {redis_pss / 1024:.1f})")
        print(f"  total RSS            {(sim_rss + redis_rss) / 1024:8.1f} MiB "
              f"(PSS {(sim_pss + redis_pss) / 1024:.1f})")
        print(f"  idle CPU             {idle_cpu * 100:8.1f} % of one core (simulator + redis-servers)")
        print(f"  ping all nodes       {ping * 1000:8.1f} ms (pushed after {pushed * 1000:.1f} ms; "
              f"again: {ping_again * 1000:.1f} ms)")
        if clients:
            cpu_before = cpu_seconds([child.process.pid])
            began = time.monotonic()
            rate, p50, p99 = throughput(entries[0], clients, seconds)
            calls = rate * (time.monotonic() - began)
            cpu = cpu_seconds([child.process.pid]) - cpu_before
            print(f"  info.mem, {clients} clients {rate:8.0f} calls/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms")
            print(f"  simulator CPU        {cpu / calls * 1e6:8.0f} us per call")
        sys.stdout.flush()
    finally:
        stopped = time.monotonic()
        child.stop(60)
        survivors = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
        print(f"  stop                 {time.monotonic() - stopped:8.2f} s, "
              f"surviving redis-servers: {len(survivors)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--layouts", default="1,10,50",
                        help="comma-separated nodes-per-redis values to measure")
    parser.add_argument("--throughput", type=int, default=0, metavar="C",
                        help="also measure info.mem calls/s on one node with C clients")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for per_redis in (int(x) for x in args.layouts.split(",")):
        run(args.nodes, per_redis, args.throughput, args.seconds)


if __name__ == "__main__":
    main()
