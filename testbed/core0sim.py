"""
A real ``twistd core0sim``: started as a subprocess, ready once its node
list file exists, stopped at the end with a check that none of its
``redis-server`` children survives.

    with Core0Sim(nodes=2) as sim:
        for node in sim.entries:        # plugins.core0sim.nodelist.NodeEntry
            ...
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from plugins.core0sim import nodelist
from testbed.processes import ROOT, Child, children_of, python_env, wait_until
from testbed.twistd import twistd


def is_redis_server(pid: int) -> bool:
    """:returns: whether process ``pid`` runs ``redis-server``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"redis-server" in f.read()
    except OSError:
        return False


class Core0Sim:
    """
    ``twistd core0sim --nodes N --config-out DIR/nodes.toml [extra...]``.

    :param nodes: simulated nodes.
    :param extra: more core0sim options.
    :ivar node_file: the node list file (in the temporary directory ``dir``).
    :ivar entries: the node list the simulator wrote, parsed.
    :ivar redis_pids: its redis-server children.
    """

    def __init__(self, nodes: int = 2, extra: tuple[str, ...] = (), timeout: float = 120.0) -> None:
        self.nodes = nodes
        self.extra = extra
        self.timeout = timeout
        self.dir = Path(tempfile.mkdtemp(prefix="core0sim-"))
        self.node_file = self.dir / "nodes.toml"
        self.child: Child | None = None
        self.entries: list[nodelist.NodeEntry] = []
        self.redis_pids: list[int] = []
        self.final_output = ""

    def start(self, timeout: float | None = None) -> Core0Sim:
        """Start it; returns once the node list is written (``entries`` holds it)."""
        argv = twistd("core0sim", "--nodes", str(self.nodes),
                      "--config-out", str(self.node_file), *self.extra)
        self.child = Child(argv, env=python_env(), cwd=ROOT)
        try:
            wait_until(self.node_file.exists, timeout or self.timeout, "core0sim", self.child.process)
        except Exception:
            output = self.child.output()
            self.stop()
            raise RuntimeError(f"core0sim did not start:\n{output}") from None
        self.entries = nodelist.read(self.node_file)
        self.redis_pids = [pid for pid in children_of(self.child.process.pid) if is_redis_server(pid)]
        return self

    def output(self) -> str:
        return self.child.output() if self.child else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """
        Stop the simulator with ``sig`` (sent to it alone) and check that
        none of its redis-server children survives.

        :returns: the simulator's exit status (twistd ends by the signal it
            stopped for, after a clean shutdown: ``-sig``).
        :raises AssertionError: a redis-server child is still there (it is
            killed first).
        """
        if self.child is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            return 0
        child, self.child = self.child, None
        # Only the simulator gets the signal (not its process group): it
        # must stop its redis-server children itself.
        if child.alive():
            os.kill(child.process.pid, sig)
            try:
                child.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        status = child.stop(30)
        self.final_output = child.output()
        survivors: list[int] = []

        def gone() -> bool:
            survivors[:] = [pid for pid in self.redis_pids if is_redis_server(pid)]
            return not survivors

        try:
            wait_until(gone, 10.0, "redis-server children to exit")
        except TimeoutError:
            for pid in survivors:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            raise AssertionError(f"redis-server children survived core0sim: {survivors}") from None
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return status

    def __enter__(self) -> Core0Sim:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
