"""
``twistd ayssim``: the AYS simulator, with node services seeded from the
core0 simulator's node list.
"""

from __future__ import annotations

from typing import Any

from twisted.application import strports
from twisted.application.service import MultiService, Service
from twisted.python import usage
from twisted.web.server import Site

from plugins.ayssim.api import AysSimulatorApi
from plugins.ayssim.core0_commands import Core0Commands
from plugins.ayssim.node_commands import RESULT_TIMEOUT
from plugins.ayssim.nodelist import NodeListSeeder
from plugins.ayssim.simulator import JOB_TIMEOUT, WAIT_TIMEOUT, Simulator

DEFAULT_PORT = "tcp:5000:interface=127.0.0.1"


def _positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise usage.UsageError(f"--{name} must be a number of seconds, not {value!r}") from None
    if number <= 0:
        raise usage.UsageError(f"--{name} must be positive")
    return number


class Options(usage.Options):
    synopsis = "[--port ENDPOINT] [--nodes-file PATH] [--repo NAME]"
    longdesc = (
        "Serve a simulated AYS (At Your Service 8.2) REST API whose actions act "
        "on core0 nodes over the core0 Redis protocol.  Test controls live under /_sim/."
    )
    optParameters = [
        ["port", "p", DEFAULT_PORT, "Endpoint to listen on."],
        ["nodes-file", "n", None,
         "Node list written by the core0 simulator (TOML); watched, may appear later."],
        ["repo", "r", "objstor", "Repository created at start (and on reset), holding the nodes."],
        ["job-timeout", None, str(JOB_TIMEOUT), "Seconds an action may take in a run."],
        ["command-timeout", None, str(RESULT_TIMEOUT), "Seconds to wait for a core0 result."],
        ["wait-timeout", None, str(WAIT_TIMEOUT),
         "Bound on waits inside actions (network up, domain up/down)."],
    ]

    def postOptions(self) -> None:
        for name in ("job-timeout", "command-timeout", "wait-timeout"):
            self[name] = _positive(str(self[name]), name)
        if not self["repo"]:
            raise usage.UsageError("--repo must not be empty")


class _Connections(Service):
    """Closes the connections to the nodes when the simulator stops."""

    def __init__(self, commands: Core0Commands) -> None:
        self.commands = commands

    def stopService(self) -> Any:
        super().stopService()
        return self.commands.close()


def makeService(options: Options) -> MultiService:
    top = MultiService()
    commands = Core0Commands(timeout=options["command-timeout"])
    _Connections(commands).setServiceParent(top)
    sim = Simulator(
        commands,
        default_repository=options["repo"],
        job_timeout=options["job-timeout"],
        wait_timeout=options["wait-timeout"],
    )
    if options["nodes-file"]:
        NodeListSeeder(sim, options["nodes-file"], options["repo"]).setServiceParent(top)
    site = Site(AysSimulatorApi(sim).resource())
    site.displayTracebacks = False
    web: Any = strports.service(options["port"], site)
    web.setServiceParent(top)
    return top
