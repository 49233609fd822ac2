"""
The core0 client's cost per call: a ``NodeClient`` and a small in-process
agent (``testbed.core0_agent``, answering ``info.mem`` at once) on
a real ``redis-server``; batches of concurrent ``info.mem`` calls (so they
share runs, as under HTTP load), and the CPU time per call of the process
(client and agent).  ``--callgrind`` counts instructions per call instead
(valgrind: 20 batches and 120 batches, the difference divided by the calls
in between).

    python bench/core0_client_cost.py                  # CPU us per call, best of 5 rounds
    python bench/core0_client_cost.py --callgrind      # instructions per call
    python bench/core0_client_cost.py --concurrency 1  # one call at a time
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind import instruction_counts  # noqa: E402

MEM = {"active": 197136384, "available": 1454743552, "buffers": 0, "cached": 372428800,
       "free": 1521983488, "inactive": 323203072, "total": 2102710272, "used": 647966720,
       "usedPercent": 30.815787064362617, "wired": 0}


async def measure(concurrency: int, batches: int, rounds: int) -> list[float]:
    """:returns: CPU seconds per call, one figure per round (after ``batches`` unmeasured ones)."""
    from twisted.internet import reactor
    from twisted.internet.defer import gatherResults

    from plugins.core0.client import NodeClient
    from rpoold.nodes import NodeAddress
    from testbed.core0_agent import AgentOnRedis, result
    from testbed.redis_server import RedisServer

    server = RedisServer().start()
    agent = await AgentOnRedis(server.port, script=lambda payload: result(payload, data=MEM)).start()
    client = NodeClient(NodeAddress(id="bench", host="127.0.0.1", port=server.port, password="", db=0),
                        pool_size=8, timeout=10, reactor=reactor)
    try:
        async def batch() -> None:
            await gatherResults([client.call("info.mem") for _ in range(concurrency)])

        for _ in range(batches):
            await batch()
        figures = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(100):
                await batch()
            figures.append((time.process_time() - started) / (100 * concurrency))
        return figures
    finally:
        await client.close()
        await agent.stop()
        server.stop()


def run(concurrency: int, batches: int, rounds: int) -> list[float]:
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    outcome: list[Any] = []

    def start() -> None:
        d = ensureDeferred(measure(concurrency, batches, rounds))
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if not outcome or not isinstance(outcome[0], list):
        raise SystemExit(f"the measurement failed: {outcome[0] if outcome else 'no result'}")
    figures: list[float] = outcome[0]
    return figures


def callgrind(concurrency: int) -> int:
    """:returns: the instructions per call, from two runs under callgrind."""
    small, large = instruction_counts(__file__, [
        ["--concurrency", str(concurrency), "--batches", str(batches), "--rounds", "0"]
        for batches in (20, 120)])
    return (large - small) // (100 * concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64, help="calls per batch (default 64)")
    parser.add_argument("--batches", type=int, default=20, help="batches before measuring (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 100 batches (default 5)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    args = parser.parse_args()
    if args.callgrind:
        count = callgrind(args.concurrency)
        print(f"core0 client, info.mem, {args.concurrency} at a time: {count:,} instructions per call")
        return
    figures = run(args.concurrency, args.batches, args.rounds)
    if figures:
        print(f"core0 client, info.mem, {args.concurrency} at a time: CPU us per call: best "
              f"{min(figures) * 1e6:.1f}, rounds " + " ".join(f"{f * 1e6:.1f}" for f in figures))


if __name__ == "__main__":
    main()
