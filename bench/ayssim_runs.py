"""
How long the AYS write sequence takes against ayssim acting on core0sim:
start ``twistd core0sim --nodes 2`` and ``twistd ayssim``, then for each
round post a blueprint (create, execute, archive), create a run and poll
it (every 5 ms) until it ends, and print the median and 95th percentile
per operation:

- ``bridge``: install of a bridge (one ``bridge.list`` + ``bridge.create``);
- ``container``: install of a container with one init process;
- ``container stop``: stop of that container;
- ``pool+fs``: a storage pool (partition, btrfs, mount) with a filesystem.

With ``--concurrency C``, C clients run their rounds at the same time
(each on its own services; the blueprint -> run creation part is
serialised between them, as the AYS backend does), which measures how runs
share the simulator.

Usage::

    python bench/ayssim_runs.py --rounds 20
    python bench/ayssim_runs.py --rounds 10 --concurrency 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed import http_api  # noqa: E402
from testbed.ports import free_port, port_open  # noqa: E402
from testbed.processes import Child, python_env, wait_until  # noqa: E402
from testbed.twistd import twistd  # noqa: E402

NODE = "525400123456"
REPO = "objstor"
R = f"/ays/repository/{REPO}"


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """:returns: the status and the decoded JSON body (``None`` when empty)."""
    reply = http_api.call(url, method, path, json=body)
    return reply.status, reply.json() if reply.body else None


#: Serialises blueprint -> run creation between clients, as the AYS backend
#: does per repository: otherwise one client's run takes (claims) the
#: actions another client just scheduled, and that client's own run is empty.
SEQUENCE = threading.Lock()


def write(url: str, name: str, content: str) -> float:
    """The whole write sequence; returns its duration in seconds."""
    began = time.perf_counter()
    with SEQUENCE:
        assert call(url, "POST", f"{R}/blueprint", {"name": name, "content": content})[0] == 201
        code, body = call(url, "POST", f"{R}/blueprint/{name}")
        assert code == 200, body
        call(url, "PUT", f"{R}/blueprint/{name}/archive")
        code, run = call(url, "POST", f"{R}/aysrun")
        assert code == 200, run
    while True:
        _, run = call(url, "GET", f"{R}/aysrun/{run['key']}")
        if run["state"] not in ("new", "running"):
            break
        time.sleep(0.005)
    assert run["state"] == "ok", run
    return time.perf_counter() - began


def rounds(url: str, client: int, count: int, times: dict[str, list[float]], lock: threading.Lock) -> None:
    disks = ["/dev/sdb", "/dev/sdc"]
    for n in range(count):
        tag = f"c{client}r{n}"
        measured = {
            "bridge": write(url, f"br_{tag}", f'bridge__br{tag}: {{node: "{NODE}"}}\n'
                            f"actions: [{{action: install, actor: bridge, service: br{tag}}}]\n"),
            "container": write(url, f"ct_{tag}", (
                f'container__ct{tag}:\n  node: "{NODE}"\n  flist: https://hub.example.org/u.flist\n'
                '  initProcesses: [{name: /bin/sleep, args: ["3600"]}]\n'
                f"actions: [{{action: install, actor: container, service: ct{tag}}}]\n")),
            "container stop": write(url, f"cs_{tag}", (
                f"actions: [{{action: stop, actor: container, service: ct{tag}, force: true}}]\n")),
        }
        if client == 0 and n < len(disks):
            measured["pool+fs"] = write(url, f"sp_{tag}", (
                f'storagepool__sp{tag}:\n  node: "{NODE}"\n  dataProfile: single\n'
                f"  metadataProfile: single\n  devices: [{{device: {disks[n]}}}]\n"
                f"filesystem__fs{tag}: {{storagePool: sp{tag}, name: fs{tag}}}\n"
                f"actions: [{{action: install, actor: filesystem, service: fs{tag}}}]\n"))
        with lock:
            for key, value in measured.items():
                times.setdefault(key, []).append(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="ayssim-bench-"))
    nodes = directory / "nodes.toml"
    port = free_port()
    core0sim = Child(twistd("core0sim", "--nodes", "2", "--config-out", str(nodes)),
                     env=python_env(), cwd=ROOT)
    ayssim = Child(twistd("ayssim", "--port", f"tcp:{port}:interface=127.0.0.1", "--nodes-file", str(nodes)),
                   env=python_env(), cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open(port), 30, "ayssim", ayssim.process)
        wait_until(lambda: call(url, "GET", f"{R}/service/container/vfw_21")[0] == 200, 30, "seeding")
        times: dict[str, list[float]] = {}
        lock = threading.Lock()
        began = time.perf_counter()
        threads = [threading.Thread(target=rounds, args=(url, c, args.rounds, times, lock))
                   for c in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        print(f"ayssim + core0sim (2 nodes), {args.rounds} rounds x {args.concurrency} client(s), "
              f"{elapsed:.1f} s in all")
        print(f"{'operation':<16}{'n':>5}{'median ms':>12}{'p95 ms':>10}")
        for key, values in times.items():
            values.sort()
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"{key:<16}{len(values):>5}{statistics.median(values) * 1000:>12.1f}{p95 * 1000:>10.1f}")
    finally:
        ayssim.stop()
        core0sim.stop()


if __name__ == "__main__":
    main()
