"""
``twistd core0sim``: simulated core0 nodes served over real
``redis-server`` children.
"""

from __future__ import annotations

import os
import shutil

from twisted.python import usage

from plugins.core0sim.redis_servers import REDIS_SERVER
from plugins.core0sim.service import Core0SimService, redis_servers


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError("must be a TCP port")
    return number


#: Up to this many nodes, each node has its own redis-server by default.
ALONE_UP_TO = 64
#: Beyond, this many nodes share one redis-server (see docs/core0sim.md).
SHARED_NODES_PER_REDIS = 50


class Options(usage.Options):
    synopsis = "[--nodes N] [--config-out PATH] [--nodes-per-redis K] [--exec] ..."
    longdesc = (
        "Simulate N core0 nodes.  Starts its own redis-server children on "
        "127.0.0.1 (no persistence) and serves each node on the core0 Redis "
        "protocol; writes the node list (TOML) to --config-out once every "
        "node is ready.  The children stop with the simulator."
    )
    optParameters = [
        ["nodes", "n", 2, "Number of simulated nodes.", _non_negative_int],
        ["config-out", "o", None,
         "Write the node list (TOML) here once every node is ready (its directory is made if missing)."],
        ["nodes-per-redis", "k", None,
         "Nodes sharing one redis-server through database indexes 0..K-1 "
         f"(1: one redis-server per node, database 0; default: 1 up to {ALONE_UP_TO} "
         f"nodes, {SHARED_NODES_PER_REDIS} beyond).", _positive_int],
        ["reboot-seconds", None, 1.0, "How long a node takes to reboot.", _non_negative_float],
        ["port-base", None, None,
         "Port of the first redis-server; the others follow it (default: free ports).", _port],
        ["password", None, None, "Password (requirepass) of every redis-server."],
    ]
    optFlags = [
        ["exec", None, "Run core.system and bash as real local processes (off by default)."],
    ]

    def postOptions(self) -> None:
        if shutil.which(REDIS_SERVER) is None:
            raise usage.UsageError(f"{REDIS_SERVER} is not installed (not found in PATH)")
        if self["config-out"] is not None:
            # The node list's directory is made here, before anything starts,
            # so that a path that cannot be written stops start-up at once.
            directory = os.path.dirname(os.path.abspath(self["config-out"]))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise usage.UsageError(
                    f"--config-out: cannot make directory {directory}: {e.strerror}") from None
            if not os.access(directory, os.W_OK):
                raise usage.UsageError(f"--config-out: directory {directory} is not writable")
        if self["nodes-per-redis"] is None:
            self["nodes-per-redis"] = 1 if self["nodes"] <= ALONE_UP_TO else SHARED_NODES_PER_REDIS
        if self["port-base"] is not None and self["nodes"]:
            servers = redis_servers(self["nodes"], self["nodes-per-redis"])
            if self["port-base"] + servers - 1 > 65535:
                raise usage.UsageError(f"--port-base: {servers} ports from {self['port-base']} exceed 65535")


def makeService(options: Options) -> Core0SimService:
    return Core0SimService(
        nodes=options["nodes"],
        nodes_per_redis=options["nodes-per-redis"],
        config_out=options["config-out"],
        run_programs=bool(options["exec"]),
        reboot_seconds=options["reboot-seconds"],
        port_base=options["port-base"],
        password=options["password"] or None,
    )
