"""
core0sim and rpoold on the core0 backend, as child processes: the
``core0`` harness of the family tests (one environment for the whole
session), the end-to-end tests and the benchmark use them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.api import Api
from tests.support.backends import ALL_FAMILIES, Harness, register
from tests.support.processes import ROOT, Child, python_env, start_rpoold, twistd, wait_until

#: The families the core0 backend serves (the rest needs more than one node).
CORE0_FAMILIES = ALL_FAMILIES - {"storageclusters", "vdisks"}


class Core0Sim:
    """
    ``twistd core0sim`` writing its node list into a temporary directory.

    :param nodes: simulated nodes.
    :param extra: more core0sim options.
    """

    def __init__(self, nodes: int = 2, extra: tuple[str, ...] = ()) -> None:
        self.nodes = nodes
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="core0sim-"))
        self.node_file = self.dir / "nodes.toml"
        self.child: Child | None = None

    def start(self, timeout: float = 120.0) -> Core0Sim:
        self.child = Child(twistd("core0sim", "--nodes", str(self.nodes), "--config-out", str(self.node_file),
                                  *self.extra), env=python_env(), cwd=ROOT)
        try:
            wait_until(self.node_file.exists, timeout, "core0sim", self.child.process)
        except Exception:
            output = self.child.output()
            self.stop()
            raise RuntimeError(f"core0sim did not start:\n{output}") from None
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
        shutil.rmtree(self.dir, ignore_errors=True)


def core0_config(node_file: Path, path: Path, *, timeout: float = 10.0, pool_size: int = 8,
                 mock_rest: bool = False) -> str:
    """
    Write an rpoold configuration: the core0 backend with ``node_file``
    for every family it serves (``mock_rest``: the mock for the others).
    """
    lines = [
        "[families]", 'default = "core0"',
        *(['storageclusters = "mock"', 'vdisks = "mock"'] if mock_rest else []),
        "",
        "[backends.core0]", 'plugin = "core0"', f'nodes_file = "{node_file}"',
        f"timeout = {timeout}", f"pool_size = {pool_size}", "ping_timeout = 1.0",
        "transition_seconds = 0.05", "",
    ]
    if mock_rest:
        lines += ["[backends.mock]", 'plugin = "mock"', ""]
    path.write_text("\n".join(lines))
    return str(path)


class Core0Environment:
    """core0sim (two nodes, short reboots) and rpoold on the core0 backend."""

    def __init__(self) -> None:
        self.sim: Core0Sim | None = None
        self.rpoold: Child | None = None
        self.url = ""

    def start(self) -> Core0Environment:
        self.sim = Core0Sim(2, ("--reboot-seconds", "0.3")).start()
        try:
            config = core0_config(self.sim.node_file, self.sim.dir / "rpoold.toml")
            self.rpoold, self.url = start_rpoold(config)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.rpoold is not None:
            self.rpoold.stop()
            self.rpoold = None
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


_shared: Core0Environment | None = None


@asynccontextmanager
async def _open_core0() -> AsyncIterator[Api]:
    global _shared
    if _shared is None:
        _shared = Core0Environment().start()
    yield Api.over_http(_shared.url)


def _close_core0() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


CORE0 = register(Harness(name="core0", families=CORE0_FAMILIES, open=_open_core0, patience=10.0,
                         close=_close_core0))
