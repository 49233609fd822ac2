"""
Load and soak: many mixed requests over persistent connections against a
real ``twistd rpoold``; prints errors (must be 0), the daemon's resident
memory at start, middle and end, and requests per second.

    python bench/load.py                      # 100,000 requests, 64 connections, mock pool
    python bench/load.py --requests 20000 --connections 16
    python bench/load.py --core0              # core0 backend: core0sim (2 nodes) and
                                              # etc/core0.toml pointed at its node list
    python bench/load.py --config my.toml     # any configuration whose default node
                                              # carries the mock's seed (see --node)

The script starts the daemon itself (this checkout, on a free loopback
port), and with ``--core0`` the core0 simulator too, and stops the daemon
with SIGTERM at the end; the daemon must exit 0.
The client is a small asyncio HTTP/1.1 client (one persistent connection
per worker), so the load generator costs little next to the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procfs import rss_kib  # noqa: E402
from testbed.core0sim import Core0Sim  # noqa: E402
from testbed.mock_pool import MOCK_CONFIG  # noqa: E402
from testbed.twistd import start_rpoold  # noqa: E402

#: The scenario's two-node mock pool (instant VM transitions), with the access log setting.
MOCK = "[server]\naccess_log = {access_log}\n" + MOCK_CONFIG


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    expect: int
    body: bytes | None = None


def mix(node: str, container: str, worker: str) -> list[list[Call]]:
    """
    Groups of calls; a worker runs its groups round-robin, each group in order.

    :param worker: names the worker's bridge: unique among the workers of
        all runs (a run may stop between a bridge's create and delete).
    """
    c = f"/nodes/{node}/containers/{container}"
    bridge = f"load{worker}"
    return [
        [Call("GET", "/nodes", 200)],
        [Call("GET", f"/nodes/{node}", 200)],
        [Call("GET", f"/nodes/{node}/mem", 200)],
        [Call("GET", f"/nodes/{node}/cpus", 200)],
        [Call("GET", f"/nodes/{node}/state", 200)],
        [Call("GET", f"/nodes/{node}/containers", 200)],
        [Call("GET", c, 200)],
        [Call("GET", c + "/jobs", 200)],
        [Call("GET", c + "/info", 200)],
        [Call("GET", f"/nodes/{node}/processes", 200)],
        [Call("GET", f"/nodes/{node}/jobs/no-such-job", 404)],
        [Call("GET", "/vdisks", 200)],
        [Call("GET", "/health", 200)],
        [
            Call("POST", f"/nodes/{node}/bridges", 201,
                 json.dumps({"name": bridge, "networkMode": "none"}).encode()),
            Call("GET", f"/nodes/{node}/bridges/{bridge}", 200),
            Call("DELETE", f"/nodes/{node}/bridges/{bridge}", 204),
        ],
        [Call("POST", f"/nodes/{node}/bridges", 400, b'{"name": "..", "networkMode": "none"}')],
    ]


async def read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    pairs = (line.partition(":") for line in lines[1:] if line)
    headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


class Load:
    def __init__(self, port: int, total: int, node: str, container: str, tag: str) -> None:
        self.tag = tag
        self.port = port
        self.total = total
        self.node = node
        self.container = container
        self.issued = 0
        self.done = 0
        self.errors: Counter[str] = Counter()
        self.milestones: list[tuple[int, float]] = []

    def take(self) -> bool:
        if self.issued >= self.total:
            return False
        self.issued += 1
        return True

    async def worker(self, index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            for group in itertools.cycle(mix(self.node, self.container, f"{self.tag}{index}")):
                for call in group:
                    if not self.take():
                        return
                    request = f"{call.method} {call.path} HTTP/1.1\r\nHost: rpoold\r\n"
                    if call.body is not None:
                        request += f"Content-Type: application/json\r\nContent-Length: {len(call.body)}\r\n"
                    writer.write(request.encode() + b"\r\n" + (call.body or b""))
                    try:
                        status = await read_answer(reader)
                    except (asyncio.IncompleteReadError, ConnectionError) as e:
                        self.errors[f"{call.method} {call.path}: {type(e).__name__}"] += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                        continue
                    if status != call.expect:
                        self.errors[f"{call.method} {call.path}: {status} (expected {call.expect})"] += 1
                    self.done += 1
        finally:
            writer.close()


async def run(load: Load, connections: int, pid: int) -> dict[str, float]:
    rss: dict[str, float] = {"start": rss_kib(pid)}
    started = time.monotonic()
    tasks = [asyncio.create_task(load.worker(i)) for i in range(connections)]
    half = load.total // 2
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
        if "middle" not in rss and load.done >= half:
            rss["middle"] = rss_kib(pid)
    for t in tasks:
        t.result()
    rss["seconds"] = time.monotonic() - started
    rss["end"] = rss_kib(pid)
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--config", help="TOML configuration (default: the mock pool)")
    parser.add_argument("--core0", action="store_true",
                        help="the core0 backend: etc/core0.toml against core0sim (2 nodes)")
    parser.add_argument("--node", default="525400123456")
    parser.add_argument("--container", default="vfw_21")
    parser.add_argument("--no-access-log", action="store_true", help="turn the access log off")
    parser.add_argument("--warmup", type=int, default=2000, help="requests before the start RSS reading")
    args = parser.parse_args()

    config = args.config
    access_log = str(not args.no_access_log).lower()
    sim: Core0Sim | None = None
    if args.core0:
        sim = Core0Sim(nodes=2, extra=("--reboot-seconds", "0.3")).start()
        config = core0_config(sim.node_file, access_log)
    elif config is None:
        config = temporary_config(MOCK.format(access_log=access_log))
    try:
        return measure(args, config)
    finally:
        if sim is not None:
            sim.stop()


def temporary_config(text: str) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)  # noqa: SIM115
    handle.write(text)
    handle.close()
    return handle.name


def core0_config(node_file: Path, access_log: str) -> str:
    """
    ``etc/core0.toml`` with the simulator's node list (absolute path), its
    SQLite record store beside it, and the access log setting.
    """
    text = (ROOT / "etc" / "core0.toml").read_text()
    records = node_file.parent / "rpoold-records.db"
    for old, new in (('nodes_file = "../run/core0sim-nodes.toml"', f'nodes_file = "{node_file}"'),
                     ('url = "sqlite:///../run/rpoold-records.db"', f'url = "sqlite:///{records}"'),
                     ("[server]\n", f"[server]\naccess_log = {access_log}\n")):
        if old not in text:
            raise SystemExit(f"etc/core0.toml no longer has {old!r}")
        text = text.replace(old, new, 1)
    return temporary_config(text)


def measure(args: argparse.Namespace, config: str) -> int:
    child, base = start_rpoold(config)
    port = int(base.rsplit(":", 1)[1])
    try:
        if args.warmup:
            asyncio.run(run(Load(port, args.warmup, args.node, args.container, "w"), min(args.connections, 8),
                            child.process.pid))
        load = Load(port, args.requests, args.node, args.container, "m")
        figures = asyncio.run(run(load, args.connections, child.process.pid))
    finally:
        child.signal(signal.SIGTERM)
        status = child.process.wait(60)
        child.stop()
    errors = sum(load.errors.values())
    growth = (figures["end"] - figures["start"]) / figures["start"] * 100
    print(f"requests:     {load.done} answered of {args.requests}, {args.connections} connections")
    print(f"errors:       {errors}")
    for what, count in load.errors.most_common(10):
        print(f"  {count:6d}  {what}")
    print(f"duration:     {figures['seconds']:.1f} s")
    print(f"throughput:   {load.done / figures['seconds']:.0f} req/s")
    start, middle, end = (figures[k] / 1024 for k in ("start", "middle", "end"))
    print(f"rpoold RSS:   start {start:.1f} MiB, middle {middle:.1f} MiB, end {end:.1f} MiB "
          f"(growth {growth:+.1f} %)")
    print(f"exit status:  {status}")
    ok = errors == 0 and growth <= 10 and status == 0 and load.done == args.requests
    print("result:       " + ("OK" if ok else "FAILED (errors, RSS growth over 10 %, or unclean exit)"))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
