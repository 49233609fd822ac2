"""
Latency of the AYS backend in the split deployment: rpoold + ayssim +
core0sim (with its redis-server children) as real processes on loopback.
Prints, per operation, the median and 95th percentile of the time rpoold
takes to answer, then the time for concurrent container creates.

    python bench/ays.py                   # 200 rounds of each operation
    python bench/ays.py --rounds 50 --concurrency 16

Reads are one or two AYS requests; writes are the whole blueprint
sequence (create, execute, run, archive) plus the wait for the run, so
they show what the write lock and the run polling cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed import http_api  # noqa: E402
from testbed.ays_split import SplitEnvironment  # noqa: E402

NODE = "525400123456"


def call(base: str, method: str, path: str, body: object = None, expect: int = 200) -> float:
    """:returns: the seconds the answer took (which must be ``expect``)."""
    began = time.perf_counter()
    reply = http_api.call(base, method, path, json=body, timeout=60)
    elapsed = time.perf_counter() - began
    if reply.status != expect:
        raise RuntimeError(f"{method} {path}: {reply}, expected {expect}")
    return elapsed


def figures(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(f"{name:<44} median {statistics.median(samples) * 1000:7.1f} ms   "
          f"p95 {p95 * 1000:7.1f} ms   (n={len(samples)})")


def container(name: str) -> dict[str, object]:
    return {"name": name, "hostname": name, "flist": "https://hub.example.org/alpine.flist"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    env = SplitEnvironment().start()
    base = env.url
    try:
        print(f"split deployment: rpoold {base}, ayssim {env.ays_url}, "
              f"direct families on {'core0' if env.core0 else 'mock'}")
        figures("GET /nodes", [call(base, "GET", "/nodes") for _ in range(args.rounds)])
        figures("GET /nodes/{id}/containers/vfw_21",
                [call(base, "GET", f"/nodes/{NODE}/containers/vfw_21") for _ in range(args.rounds)])
        creates, deletes, stops = [], [], []
        for _ in range(args.rounds):
            name = f"b_{uuid.uuid4().hex[:10]}"
            creates.append(call(base, "POST", f"/nodes/{NODE}/containers", container(name), 201))
            stops.append(call(base, "POST", f"/nodes/{NODE}/containers/{name}/stop", None, 204))
            deletes.append(call(base, "DELETE", f"/nodes/{NODE}/containers/{name}", None, 204))
        figures("POST container (create, run waited for)", creates)
        figures("POST container stop (run waited for)", stops)
        figures("DELETE container (stop run + forget)", deletes)

        names = [f"c_{uuid.uuid4().hex[:10]}" for _ in range(args.rounds)]
        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda n: call(base, "POST", f"/nodes/{NODE}/containers",
                                         container(n), 201), names))
        elapsed = time.perf_counter() - began
        print(f"{len(names)} creates, {args.concurrency} at a time: {elapsed:.2f} s "
              f"({len(names) / elapsed:.1f} creates/s)")
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda n: call(base, "DELETE", f"/nodes/{NODE}/containers/{n}",
                                         None, 204), names))
    finally:
        env.stop()


if __name__ == "__main__":
    main()
