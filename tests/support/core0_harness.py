"""
The ``core0`` harness of the family tests: rpoold on the core0 backend
against core0sim, both child processes, one environment for the whole
session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from testbed.core0sim import Core0Sim
from testbed.processes import Child
from testbed.toml_text import toml
from testbed.twistd import start_rpoold
from tests.support import store_forms
from tests.support.backends import ALL_FAMILIES, Harness, Shared, register

#: The families the core0 backend serves (the rest needs more than one node).
CORE0_FAMILIES = ALL_FAMILIES - {"storageclusters", "vdisks"}


def core0_config(node_file: Path, path: Path, *, timeout: float = 10.0, pool_size: int = 8,
                 store: str = "memory:") -> str:
    """
    Write an rpoold configuration: the core0 backend with ``node_file`` for
    every family it serves, its records in ``store`` (a ``[store] url``).
    """
    path.write_text(toml({
        "store": {"url": store},
        "families": {"default": "core0"},
        "backends": {"core0": {
            "plugin": "core0", "nodes_file": str(node_file), "timeout": timeout,
            "pool_size": pool_size, "ping_timeout": 1.0, "transition_seconds": 0.05,
        }},
    }))
    return str(path)


class Core0Environment:
    """
    core0sim (short reboots) and rpoold on the core0 backend.

    :param store: the record store's form (``store_forms.FORMS``).
    """

    def __init__(self, nodes: int = 2, store: str = "memory") -> None:
        self.nodes = nodes
        self.store = store
        self.sim: Core0Sim | None = None
        self.rpoold: Child | None = None
        self.url = ""

    def start(self) -> Self:
        try:
            self.sim = Core0Sim(self.nodes, ("--reboot-seconds", "0.3")).start()
            self.rpoold, self.url = start_rpoold(self.write_config(self.sim))
        except BaseException:
            self.stop()
            raise
        return self

    def write_config(self, sim: Core0Sim) -> str:
        """:returns: the path of rpoold's configuration for ``sim``'s nodes."""
        return core0_config(sim.node_file, sim.dir / "rpoold.toml",
                            store=store_forms.store_url(self.store, sim.dir))

    def stop(self) -> None:
        if self.rpoold is not None:
            self.rpoold.stop()
            self.rpoold = None
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


def _register(form: str) -> Harness:
    shared = Shared(lambda: Core0Environment(store=form).start())
    return register(Harness(name=store_forms.harness_name("core0", form), families=CORE0_FAMILIES,
                            open=shared.open, patience=10.0, close=shared.close))


#: The core0 harness on each store form (``core0`` keeps its records in memory).
CORE0, CORE0_SQLITE, CORE0_REDIS = (_register(form) for form in store_forms.FORMS)
