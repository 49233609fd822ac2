"""
The app's own cost per request, without sockets: the daemon's site (as
``twistd rpoold`` builds it, on the mock pool, with the text log observer
``twistd -n rpoold`` logs to stdout through) is fed the same ``GET`` over and over on one in-memory
connection, and the CPU time per request is printed.  ``--bare`` measures
a bare Klein app answering a fixed body on the same kind of route instead.

CPU time on a shared machine moves with the other work; for A/B
comparisons, ``--callgrind`` counts the instructions per request instead
(valgrind; the same count on every run, within about 1%): the script runs
itself twice under callgrind, with 100 and 1,100 requests, and prints the
difference divided by 1,000.

    python bench/request_cost.py                       # CPU us per request, best of 5 rounds
    python bench/request_cost.py --callgrind           # instructions per request
    python bench/request_cost.py --callgrind --bare    # the same for bare Klein
    python bench/request_cost.py --no-access-log       # server.access_log = false
    python bench/request_cost.py --twisted-observer    # twistd's own text observer instead
    python bench/request_cost.py --core0 64 --callgrind # the core0 backend, core0sim's 64 nodes

With ``--core0 N`` the site is rpoold's on the core0 backend, against a
``twistd core0sim`` of N nodes (a process of its own, not counted), and
each request asks the next node's ``mem`` (so no two share a core0 run):
the instructions of rpoold alone, a Redis round trip included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind import instruction_counts  # noqa: E402

SEED_NODE = "525400123456"
MOCK = """
[server]
access_log = {access_log}

[backends.mock]
plugin = "mock"

[families]
default = "mock"
"""


def bare_site() -> Any:
    from klein import Klein
    from twisted.web.server import Site

    app = Klein()
    body = (b'{"active": 197136384, "available": 1454743552, "buffers": 0, "cached": 372428800, '
            b'"free": 1521983488, "inactive": 323203072, "total": 2102710272, "used": 647966720, '
            b'"usedPercent": 30.815787064362617, "wired": 0}')

    @app.route("/nodes/<nodeid>/mem", methods=["GET"])
    def mem(request: Any, nodeid: str) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return body

    return Site(app.resource())


def rpoold_site(access_log: bool, work: Path) -> Any:
    from rpoold import tap

    config = work / "mock.toml"
    config.write_text(MOCK.format(access_log="true" if access_log else "false"))
    options = tap.Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1", "--config", str(config)])
    return tap.makeService(options).site


CORE0 = """
[server]
access_log = {access_log}

[backends.core0]
plugin = "core0"
nodes_file = "{node_file}"

[families]
default = "core0"
"""


def core0_site(access_log: bool, work: Path, node_file: Path) -> Any:
    from rpoold import tap

    config = work / "core0.toml"
    config.write_text(CORE0.format(access_log="true" if access_log else "false", node_file=node_file))
    options = tap.Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1", "--config", str(config)])
    service = tap.makeService(options)
    service.startService()
    return service.site


def measure(site: Any, paths: list[str], requests: int, rounds: int, warm_up: int) -> list[float]:
    """
    :param paths: the GETs, asked in turn; when there are several, each
        answer is waited for on the reactor (a backend over the network).
    :returns: CPU seconds per request, one figure per round.
    """
    from twisted.internet import reactor
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    peer = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = site.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer, hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    channel.makeConnection(transport)
    requests_ = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".encode() for path in paths]
    remote = len(paths) > 1

    def run(count: int) -> None:
        for i in range(count):
            channel.dataReceived(requests_[i % len(requests_)])
            answer = transport.value()
            while remote and b"\r\n\r\n" not in answer:
                reactor.iterate(1)  # type: ignore[attr-defined]
                answer = transport.value()
            if not answer.startswith(b"HTTP/1.1 200 "):
                raise SystemExit(f"unexpected answer: {answer[:200]!r}")
            transport.clear()
            if i % 500 == 0:
                reactor.runUntilCurrent()  # type: ignore[attr-defined]  # timers due, cancelled ones dropped

    run(warm_up)
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        run(requests)
        figures.append((time.process_time() - started) / requests)
    return figures


def callgrind(argv: list[str]) -> int:
    """:returns: the instructions per request, from two runs under callgrind."""
    small, large = instruction_counts(__file__, [
        [*argv, "--requests", str(requests), "--rounds", "1", "--warm-up", "200"]
        for requests in (100, 1100)])
    return (large - small) // 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default=f"/nodes/{SEED_NODE}/mem", help="the GET to repeat")
    parser.add_argument("--bare", action="store_true", help="bare Klein instead of rpoold")
    parser.add_argument("--core0", type=int, metavar="NODES", default=0,
                        help="rpoold on the core0 backend against core0sim with NODES nodes, "
                             "each request to the next node")
    parser.add_argument("--node-file", help=argparse.SUPPRESS)
    parser.add_argument("--no-access-log", action="store_true", help="server.access_log = false")
    parser.add_argument("--twisted-observer", action="store_true",
                        help="log through twistd's own text observer, not rpoold's")
    parser.add_argument("--requests", type=int, default=5000, help="requests per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--warm-up", type=int, default=1000, help="requests before measuring")
    parser.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    args = parser.parse_args()
    if args.core0 and not args.node_file:
        from testbed.core0sim import Core0Sim

        with Core0Sim(nodes=args.core0, extra=("--nodes-per-redis", "25")) as sim:
            argv = sys.argv[1:]
            result = os.spawnv(os.P_WAIT, sys.executable,
                               [sys.executable, __file__, *argv, "--node-file", str(sim.node_file)])
        raise SystemExit(result)
    backend = "core0" if args.core0 else "mock"
    what = "bare Klein" if args.bare else f"rpoold ({backend})"
    if args.no_access_log:
        what += ", no access log"
    if args.twisted_observer:
        what += ", twistd's text observer"
    if args.callgrind:
        argv = ["--path", args.path]
        if args.bare:
            argv.append("--bare")
        if args.core0:
            argv += ["--core0", str(args.core0), "--node-file", args.node_file]
        if args.no_access_log:
            argv.append("--no-access-log")
        if args.twisted_observer:
            argv.append("--twisted-observer")
        path = "/nodes/{id}/mem" if args.core0 else args.path
        print(f"{what}: GET {path}: {callgrind(argv):,} instructions per request")
        return

    from twisted.logger import globalLogBeginner, textFileLogObserver

    from rpoold.logs import TextLineObserver

    # What twistd does with the log: every event formatted as text and written.
    with open(os.devnull, "w") as sink, tempfile.TemporaryDirectory() as work:
        observer = textFileLogObserver(sink) if args.twisted_observer else TextLineObserver(sink)
        globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
        paths = [args.path]
        if args.bare:
            site = bare_site()
        elif args.core0:
            from plugins.core0sim import nodelist

            site = core0_site(not args.no_access_log, Path(work), Path(args.node_file))
            paths = [f"/nodes/{entry.id}/mem" for entry in nodelist.read(Path(args.node_file))]
            what += f", {len(paths)} nodes in turn"
        else:
            site = rpoold_site(not args.no_access_log, Path(work))
        figures = measure(site, paths, args.requests, args.rounds, args.warm_up)
    shown = paths[0] if len(paths) == 1 else "/nodes/{id}/mem"
    print(f"{what}: GET {shown}: CPU us per request: best {min(figures) * 1e6:.1f}, rounds "
          + " ".join(f"{f * 1e6:.1f}" for f in figures))


if __name__ == "__main__":
    main()
