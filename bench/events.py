"""
Events under load: the mixed load of ``bench/load.py`` against a real
``twistd rpoold``, once without and once with subscribers of ``GET
/events`` (100 by default); prints, side by side, the load's requests per
second and errors, and the events delivered to the subscribers (per second
in all, per subscriber, and whether every subscriber got every event of
the run, in order, without a gap or a duplicate).

    python bench/events.py                          # mock pool, 20,000 requests, 100 subscribers
    python bench/events.py --requests 50000 --subscribers 200 --connections 32
    python bench/events.py --store redis            # events in a redis-server child (else memory)

The load's writes (a bridge created and deleted per group of calls) are
what makes events: ``bridge.created`` and ``bridge.deleted``.  The load and
the subscribers run in this process (asyncio), the daemon in its own; on
a small machine they share its cores, so the figures are of the pair.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import MOCK, Load, run, temporary_config  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402
from testbed.twistd import start_rpoold  # noqa: E402


@dataclass
class Subscriber:
    """One ``GET /events`` stream read over a raw connection."""

    ids: list[int] = field(default_factory=list)
    comments: int = 0
    ended: str = ""

    async def follow(self, port: int, ready: asyncio.Event, opened: list[int], wanted: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: rpoold\r\nAccept: text/event-stream\r\n\r\n")
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.ended = head.split(b"\r\n", 1)[0].decode("latin-1")
                return
            chunked = b"chunked" in head.lower()
            opened.append(1)
            if len(opened) == wanted:
                ready.set()
            buffer = b""
            while True:
                if chunked:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    if size == 0:
                        self.ended = "end of stream"
                        return
                    buffer += data[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        self.ended = "connection closed"
                        return
                    buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._block(block)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            self.ended = type(e).__name__
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    def _block(self, block: bytes) -> None:
        name, ident = "message", None
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                self.comments += 1
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"id:"):
                ident = int(line[3:].strip())
        if ident is not None and not name.startswith("stream."):
            self.ids.append(ident)
        elif name.startswith("stream."):
            self.ended = name


async def with_subscribers(load: Load, connections: int, pid: int, count: int) -> tuple[
        dict[str, float], list[Subscriber], float]:
    """Open ``count`` streams, run the load, give the streams a moment to drain, close them."""
    subscribers = [Subscriber() for _ in range(count)]
    ready, opened = asyncio.Event(), []
    tasks = [asyncio.create_task(s.follow(load.port, ready, opened, count)) for s in subscribers]
    await asyncio.wait_for(ready.wait(), 60)
    figures = await run(load, connections, pid)
    # The last events of the run reach the subscribers after the last answer.
    drained = time.monotonic()
    last = -1
    while time.monotonic() - drained < 10:
        total = sum(len(s.ids) for s in subscribers)
        if total == last:
            break
        last = total
        await asyncio.sleep(0.5)
    span = time.monotonic() - drained
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return figures, subscribers, span


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--node", default="525400123456")
    parser.add_argument("--container", default="vfw_21")
    args = parser.parse_args()

    redis: RedisServer | None = None
    text = MOCK.format(access_log="false")
    if args.store == "redis":
        redis = RedisServer().start()
        store = f'[store]\nurl = "redis://127.0.0.1:{redis.port}/0"\n\n'
        text = text.replace("[server]\n", store + "[server]\n", 1)
    config = temporary_config(text)
    child, base = start_rpoold(config)
    port = int(base.rsplit(":", 1)[1])
    pid = child.process.pid
    try:
        asyncio.run(run(Load(port, 2000, args.node, args.container, "w"), 8, pid))
        alone = Load(port, args.requests, args.node, args.container, "a")
        plain = asyncio.run(run(alone, args.connections, pid))
        loaded = Load(port, args.requests, args.node, args.container, "s")
        figures, subscribers, drain = asyncio.run(
            with_subscribers(loaded, args.connections, pid, args.subscribers))
    finally:
        child.signal(signal.SIGTERM)
        status = child.process.wait(60)
        child.stop()
        os.unlink(config)
        if redis is not None:
            redis.stop()

    counts = [len(s.ids) for s in subscribers]
    reference = max(subscribers, key=lambda s: len(s.ids)).ids
    whole = sum(1 for s in subscribers if s.ids == reference)
    ordered = all(s.ids == sorted(set(s.ids)) for s in subscribers)
    delivered = sum(counts)
    seconds = figures["seconds"]
    ended = sorted({s.ended for s in subscribers if s.ended and s.ended != "end of stream"})
    print(f"store: {args.store}; {args.requests} requests over {args.connections} connections per run; "
          f"{args.subscribers} subscribers of GET /events in the second run")
    print(f"{'':26} {'no subscribers':>16} {f'{args.subscribers} subscribers':>16}")
    print(f"{'load: req/s':26} {alone.done / plain['seconds']:16.0f} {loaded.done / seconds:16.0f}")
    print(f"{'load: errors':26} {sum(alone.errors.values()):16d} {sum(loaded.errors.values()):16d}")
    print(f"{'load: seconds':26} {plain['seconds']:16.1f} {seconds:16.1f}")
    print(f"events of the run (each subscriber): {len(reference)} "
          f"({len(reference) / seconds:.0f} per second)")
    print(f"events delivered in all:             {delivered} ({delivered / seconds:.0f} per second, "
          f"{args.subscribers} subscribers; the last ones within {drain:.1f} s of the last answer)")
    print(f"subscribers with every event:        {whole} of {args.subscribers}; "
          f"in order, no duplicate: {'yes' if ordered else 'NO'}")
    if ended:
        print(f"streams ended early:                 {', '.join(ended)}")
    print(f"daemon exit status:                  {status}")
    errors = sum(alone.errors.values()) + sum(loaded.errors.values())
    ok = errors == 0 and status == 0 and whole == args.subscribers and ordered and not ended
    print("result:                              " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
