"""
The original's deployment, as real processes on loopback: ``twistd
core0sim`` (simulated nodes on its own ``redis-server`` children),
``twistd ayssim`` (AYS acting on those nodes over the core0 protocol) and
``twistd rpoold`` configured like ``etc/ays-split.toml``: AYS for the
AYS-based families, core0 for the direct ones, nodes from AYS.

``SplitEnvironment`` starts and stops the three.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from testbed.core0sim import Core0Sim
from testbed.http_api import call
from testbed.ports import free_port
from testbed.processes import Child, wait_until
from testbed.toml_text import toml
from testbed.twistd import start_twistd

REPO = "objstor"
#: Whether the core0 backend is installed (the direct families need it).
CORE0 = importlib.util.find_spec("plugins.backend_core0") is not None
AYS_FAMILIES = frozenset({
    "nodes", "bridges", "storagepools", "filesystems", "zerotiers", "containers", "vms",
    "storageclusters", "vdisks",
})
DIRECT_FAMILIES = frozenset({
    "node_info", "node_jobs", "node_processes", "container_info", "container_jobs",
    "container_processes", "container_files", "vm_info",
})


def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    """
    A blocking request, for set-up code outside the reactor.

    :returns: the status and the body decoded as JSON (as text if it is
        not JSON), or ``(0, None)`` when nothing answers.
    """
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        reply = call(f"{parts.scheme}://{parts.netloc}", method, path, json=body, timeout=timeout)
    except OSError:
        return 0, None
    try:
        return reply.status, json.loads(reply.body) if reply.body else None
    except ValueError:
        return reply.status, reply.body.decode("utf-8", "replace")


def ays_options(url: str, **overrides: Any) -> dict[str, Any]:
    """The ``[backends.ays]`` table the tests use (short waits)."""
    return {"plugin": "ays", "url": url, "repository": REPO, "request_timeout": 5,
            "run_timeout": 15, "poll_interval": 0.02, "poll_max_interval": 0.2,
            "startup_retry_interval": 0.1, "startup_retry_max_interval": 0.5,
            "follow_timeout": 60, **overrides}


def split_config(ays_url: str, nodes_file: str | None = None, core0: bool = True,
                 sections: dict[str, Any] | None = None, **ays: Any) -> dict[str, Any]:
    """
    rpoold's configuration: AYS for its families; the direct families on
    core0 (nodes from AYS, or from ``nodes_file``) or, with ``core0=False``,
    on the mock.

    :param sections: more sections (``store``, ``operations``, ...).
    """
    backends: dict[str, Any] = {"ays": ays_options(ays_url, **ays)}
    families: dict[str, str] = dict.fromkeys(sorted(AYS_FAMILIES), "ays")
    if core0:
        source = {"nodes_file": nodes_file} if nodes_file else {"registry": "ays:ays"}
        backends["core0"] = {"plugin": "core0", "timeout": 5, **source}
        families.update(dict.fromkeys(sorted(DIRECT_FAMILIES), "core0"))
    else:
        backends["mock"] = {"plugin": "mock"}
        families.update(dict.fromkeys(sorted(DIRECT_FAMILIES), "mock"))
    return {"server": {"request_timeout": 30}, **(sections or {}), "backends": backends,
            "families": families}


class SplitEnvironment:
    """
    core0sim + ayssim + rpoold on free loopback ports.

    :param core0: serve the direct families with the core0 backend (else
        the mock, when the core0 backend is not available).
    :param sections: more sections of rpoold's configuration (``store``, ...).
    :param ays: overrides of the AYS backend options.
    """

    def __init__(self, nodes: int = 2, core0: bool = CORE0, sections: dict[str, Any] | None = None,
                 **ays: Any) -> None:
        self.nodes = nodes
        self.core0 = core0
        self.sections = sections or {}
        self.ays = ays
        self.dir = Path(tempfile.mkdtemp(prefix="ays-split-"))
        self.core0sim = Core0Sim(nodes, ("--reboot-seconds", "0.3"))
        self.nodes_file = self.core0sim.node_file
        self.config_file = self.dir / "rpoold.toml"
        self.ayssim: Child | None = None
        self.rpoold: Child | None = None
        self.ays_port = free_port()
        self.ays_url = f"http://127.0.0.1:{self.ays_port}"
        self.url = ""

    def start(self, rpoold: bool = True) -> SplitEnvironment:
        try:
            self.start_core0sim()
            self.start_ayssim()
            if rpoold:
                self.start_rpoold()
        except BaseException:
            self.stop()
            raise
        return self

    def start_core0sim(self) -> None:
        self.core0sim.start(timeout=60)

    def start_ayssim(self) -> None:
        self.ayssim = start_twistd(
            "ayssim", self.ays_port, "--port", f"tcp:{self.ays_port}:interface=127.0.0.1",
            "--nodes-file", str(self.nodes_file), "--command-timeout", "5", "--wait-timeout", "10")
        self.wait_for_nodes()

    def wait_for_nodes(self) -> None:
        def seeded() -> bool:
            code, body = http_json(f"{self.ays_url}/ays/repository/{REPO}/service/node.g8os")
            return code == 200 and len(body) >= self.nodes

        wait_until(seeded, 30, "ayssim seeding the nodes", self.ayssim.process if self.ayssim else None)

    def write_config(self, nodes_file: bool = False, **ays: Any) -> str:
        """
        :param nodes_file: the core0 backend takes its nodes from core0sim's
            list instead of AYS.
        """
        config = split_config(self.ays_url, str(self.nodes_file) if nodes_file else None,
                              core0=self.core0, sections=self.sections, **{**self.ays, **ays})
        self.config_file.write_text(toml(config))
        return str(self.config_file)

    def start_rpoold(self, wait_ready: bool = True, nodes_file: bool = False, **ays: Any) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = self.write_config(nodes_file=nodes_file, **ays)
        self.rpoold = start_twistd("rpoold", port, "--port", f"tcp:{port}:interface=127.0.0.1",
                                   "--config", config)
        if wait_ready:
            wait_until(lambda: http_json(f"{self.url}/nodes")[0] == 200, 30,
                       "rpoold reaching AYS", self.rpoold.process)

    def stop_ayssim(self) -> None:
        if self.ayssim is not None:
            self.ayssim.stop()
            self.ayssim = None

    def stop(self) -> None:
        """Stop the three (checking that no redis-server child of core0sim survives)."""
        try:
            for child in (self.rpoold, self.ayssim):
                if child is not None:
                    child.stop()
            self.rpoold = self.ayssim = None
            self.core0sim.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def output(self) -> str:
        """What the children logged, for failure messages."""
        parts = []
        for name, child in (("rpoold", self.rpoold), ("ayssim", self.ayssim),
                            ("core0sim", self.core0sim.child)):
            if child is not None:
                parts.append(f"--- {name}\n{child.output()[-4000:]}")
        return "\n".join(parts)
