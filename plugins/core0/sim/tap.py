"""
``twistd core0sim``: simulated core0 nodes served over real
``redis-server`` children.
"""

from __future__ import annotations

from twisted.python import usage

from plugins.core0.sim.service import Core0SimService


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
        ["config-out", "o", None, "Write the node list (TOML) here once every node is ready."],
        ["nodes-per-redis", "k", 1,
         "Nodes sharing one redis-server through database indexes 0..K-1 "
         "(1: one redis-server per node, database 0).", _positive_int],
        ["reboot-seconds", None, 1.0, "How long a node takes to reboot.", _non_negative_float],
        ["port-base", None, None,
         "Port of the first redis-server; the others follow it (default: free ports).", _port],
        ["password", None, None, "Password (requirepass) of every redis-server."],
    ]
    optFlags = [
        ["exec", None, "Run core.system and bash as real local processes (off by default)."],
    ]

    def postOptions(self) -> None:
        if self["port-base"] is not None and self["nodes"]:
            servers = -(-self["nodes"] // self["nodes-per-redis"])
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
