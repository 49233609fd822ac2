"""
The operator configurations of ``etc/`` run for real: ``twistd rpoold
--config`` with a copy of the file, against the simulators, as real
processes on loopback.  What a copy changes is only what the operator
provides (the simulators' addresses, key files), and the helpers check
that the line they replace is still in the file.

Also: reading ``/metrics`` answers.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

from testbed.ays_split import SplitEnvironment
from testbed.core0sim import Core0Sim
from testbed.http_api import call
from testbed.processes import ROOT, Child, wait_until
from testbed.twistd import start_rpoold
from tests.support.core0_harness import Core0Environment

ETC = ROOT / "etc"
#: The AYS URL of ``etc/ays-split.toml`` and ``etc/production.toml``.
AYS_URL_LINE = 'url = "http://127.0.0.1:5000"'
#: The record store of ``etc/production.toml`` (a Redis, its password a placeholder).
STORE_URL_LINE = 'url = "redis://:CHANGE-ME@127.0.0.1:6379/0?prefix=rpoold:&timeout=3"'

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text answer: (name, labels, value)."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        found.append((match.group(1), labels, float(match.group(3))))
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(v for n, have, v in samples(text)
               if n == name and all(have.get(k) == want for k, want in labels.items()))


def scrape(base: str, headers: dict[str, str] | None = None) -> str:
    reply = call(base, "GET", "/metrics", headers=headers)
    assert reply.status == 200, (reply.status, reply.body[:200])
    return reply.body.decode()


def copy_config(name: str, directory: Path, replace: dict[str, str] | None = None) -> Path:
    """
    ``etc/<name>`` copied into ``directory`` with each key of ``replace``
    (which must be in the file) replaced by its value.
    """
    text = (ETC / name).read_text()
    for old, new in (replace or {}).items():
        assert old in text, f"etc/{name} no longer has {old!r}"
        text = text.replace(old, new)
    path = directory / name
    path.write_text(text)
    return path


def redis_pid(sim: Core0Sim, nodeid: str) -> int:
    """The redis-server child of ``sim`` that holds ``nodeid``'s Redis."""
    port = next(e.port for e in sim.entries if e.id == nodeid)
    for pid in sim.redis_pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f":{port}".encode() in f.read():
                    return pid
        except OSError:
            continue
    raise LookupError(f"no redis-server for node {nodeid} (port {port})")


class Core0Deployment(Core0Environment):
    """
    ``etc/core0.toml`` as shipped: core0sim (its node list where the file
    expects it, ``../run/core0sim-nodes.toml``) and rpoold.
    """

    def __init__(self, nodes: int = 2) -> None:
        super().__init__(nodes)
        self.dir = Path(tempfile.mkdtemp(prefix="rpoold-core0-"))

    def write_config(self, sim: Core0Sim) -> str:
        (self.dir / "etc").mkdir()
        (self.dir / "run").mkdir()
        shutil.copy(sim.node_file, self.dir / "run" / "core0sim-nodes.toml")
        return str(copy_config("core0.toml", self.dir / "etc"))

    def __enter__(self) -> Core0Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill_node(self, nodeid: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the node's redis-server; returns its pid."""
        assert self.sim is not None
        pid = redis_pid(self.sim, nodeid)
        os.kill(pid, sig)
        return pid

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SplitDeployment:
    """
    ``etc/ays-split.toml`` as shipped but for the AYS URL: core0sim, ayssim
    (seeded with core0sim's nodes) and rpoold (its records in the SQLite
    file the configuration names), once it has reached AYS.
    """

    def __init__(self, nodes: int = 2) -> None:
        self.env = SplitEnvironment(nodes=nodes)
        self.dir = Path(tempfile.mkdtemp(prefix="rpoold-split-"))
        self.rpoold: Child | None = None
        self.url = ""

    def start(self) -> SplitDeployment:
        try:
            self.env.start(rpoold=False)
            # As in the checkout: the file in etc/, its records in ../run/.
            (self.dir / "etc").mkdir()
            (self.dir / "run").mkdir()
            config = copy_config("ays-split.toml", self.dir / "etc",
                                 {AYS_URL_LINE: f'url = "{self.env.ays_url}"'})
            self.rpoold, self.url = start_rpoold(str(config))
            wait_until(self.ays_ready, 30, "rpoold reaching AYS", self.rpoold.process)
        except BaseException:
            self.stop()
            raise
        return self

    def ays_ready(self) -> bool:
        return bool(call(self.url, "GET", "/health").json()["backends"]["ays"]["ok"])

    def stop(self) -> None:
        if self.rpoold is not None:
            self.rpoold.stop()
            self.rpoold = None
        self.env.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
