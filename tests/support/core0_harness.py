"""
The ``core0`` harness of the family tests: rpoold on the core0 backend
against core0sim, both child processes, one environment for the whole
session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.api import Api
from tests.support.backends import ALL_FAMILIES, Harness, register
from tests.support.core0sim import Core0Sim
from tests.support.processes import Child, start_rpoold

#: The families the core0 backend serves (the rest needs more than one node).
CORE0_FAMILIES = ALL_FAMILIES - {"storageclusters", "vdisks"}


def core0_config(node_file: Path, path: Path, *, timeout: float = 10.0, pool_size: int = 8) -> str:
    """Write an rpoold configuration: the core0 backend with ``node_file`` for every family it serves."""
    lines = [
        "[families]", 'default = "core0"', "",
        "[backends.core0]", 'plugin = "core0"', f'nodes_file = "{node_file}"',
        f"timeout = {timeout}", f"pool_size = {pool_size}", "ping_timeout = 1.0",
        "transition_seconds = 0.05", "",
    ]
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
