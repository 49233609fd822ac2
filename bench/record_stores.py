"""
The record stores side by side: for the memory store, SQLite on a file and
a real ``redis-server`` (no persistence), the latency (median, p99) and the
calls per second of ``put``, ``replace`` and ``get`` at a few concurrencies,
all in the same run.

    python bench/record_stores.py                       # concurrency 1, 8, 64; 2 s per figure at most
    python bench/record_stores.py --concurrency 1 16 --calls 5000 --seconds 5
    python bench/record_stores.py --dir /var/tmp        # the SQLite file on that filesystem

Each figure is ``calls`` calls (fewer when ``seconds`` runs out) shared by
``concurrency`` workers, each with keys of its own: ``put`` writes new keys,
``replace`` swaps a worker's record for the next version (the expected one
is always current, so every call writes), ``get`` reads.  SQLite syncs
every commit (``synchronous=FULL``), so its writes cost what an ``fsync``
costs on the filesystem of ``--dir``: a tmpfs shows much less than a disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORD = {"flist": "https://hub.example/ubuntu.flist", "hostname": "web",
          "nics": [{"type": "default", "config": {"cidr": "10.0.0.2/24"}}],
          "env": {"A": "1", "B": "2"}, "ports": {"80": 8080}}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(store: Any, op: str, concurrency: int, calls: int, seconds: float,
                  run: int) -> tuple[list[float], float]:
    """:returns: each call's seconds, and the seconds of the whole figure."""
    from twisted.internet.defer import Deferred, gatherResults

    per_worker = max(1, calls // concurrency)
    kind = f"bench{run}"
    if op != "put":
        await gatherResults([store.put(kind, f"w{w}", {**RECORD, "v": 0}) for w in range(concurrency)])
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        key = f"w{w}"
        call: Callable[[int], Awaitable[Any]]
        if op == "put":
            def call(n: int) -> Awaitable[Any]:
                return store.put(kind, f"{key}/{n}", {**RECORD, "v": n})
        elif op == "replace":
            def call(n: int) -> Awaitable[Any]:
                return store.replace(kind, key, {**RECORD, "v": n}, {**RECORD, "v": n + 1})
        else:
            def call(n: int) -> Awaitable[Any]:
                return store.get(kind, key)
        for n in range(per_worker):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            answer = await call(n)
            latencies.append(time.perf_counter() - started)
            if op == "replace":
                assert answer is True, "every replace writes"

    started = time.perf_counter()
    await gatherResults([Deferred.fromCoroutine(worker(w)) for w in range(concurrency)])
    return latencies, time.perf_counter() - started


async def bench(reactor: Any, options: argparse.Namespace) -> None:
    from rpoold.records import MemoryRecords
    from rpoold.stores.redis import RedisRecords
    from rpoold.stores.sqlite import SQLiteRecords
    from testbed.redis_server import RedisServer

    server = RedisServer().start()
    directory = tempfile.mkdtemp(prefix="record-stores-", dir=options.dir)
    path = os.path.join(directory, "records.db")
    stores: dict[str, Any] = {
        "memory": MemoryRecords(),
        "sqlite": SQLiteRecords(path, reactor),
        "redis": RedisRecords("127.0.0.1", server.port, reactor, prefix="bench:"),
    }
    print(f"SQLite file: {path}; redis-server on port {server.port} (no persistence)")
    print(f"{'store':<8} {'call':<8} {'conc':>5} {'calls':>7} {'median ms':>10} {'p99 ms':>9} {'calls/s':>9}")
    run = 0
    try:
        for name, store in stores.items():
            await store.open()
            for op in ("put", "replace", "get"):
                for concurrency in options.concurrency:
                    run += 1
                    latencies, elapsed = await measure(store, op, concurrency, options.calls,
                                                       options.seconds, run)
                    print(f"{name:<8} {op:<8} {concurrency:>5} {len(latencies):>7} "
                          f"{statistics.median(latencies) * 1e3:>10.3f} "
                          f"{percentile(latencies, 0.99) * 1e3:>9.3f} {len(latencies) / elapsed:>9.0f}",
                          flush=True)
            await store.close()
    finally:
        server.stop()
        for leftover in os.listdir(directory):
            os.unlink(os.path.join(directory, leftover))
        os.rmdir(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--calls", type=int, default=2000, help="calls per figure (default 2000)")
    parser.add_argument("--seconds", type=float, default=2.0, help="at most this long per figure")
    parser.add_argument("--dir", default=None, help="directory of the SQLite file (default: the temp dir)")
    options = parser.parse_args()

    from twisted.internet import task
    from twisted.internet.defer import Deferred

    task.react(lambda reactor: Deferred.fromCoroutine(bench(reactor, options)))


if __name__ == "__main__":
    main()
