"""
How the simulator's actions reach core0 nodes: the ``INodeCommands``
seam (implemented on the core0 backend's client by
``plugins.ayssim.core0_commands``), node addresses and command failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Interface

#: Seconds to wait for a command's result (the Go client's default).
RESULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class NodeAddress:
    """Where a node's core0 listens (its Redis endpoint); ``name`` is for messages."""

    host: str
    port: int = 6379
    password: str = ""
    db: int = 0
    name: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" + (f"/{self.db}" if self.db else "")


class CommandFailed(Exception):
    """
    A core0 command did not succeed.

    :ivar state: core0's final state (``ERROR``, ``TIMEOUT``, ...), or
        ``UNREACHABLE`` when the node could not be reached at all.
    """

    def __init__(self, command: str, state: str, message: str) -> None:
        super().__init__(f"{command}: {state}: {message}" if message else f"{command}: {state}")
        self.command = command
        self.state = state
        self.message = message


class INodeCommands(Interface):
    """Runs core0 commands on nodes (and in their containers)."""

    def execute(address: NodeAddress, command: str, arguments: dict[str, Any],
                container: int = 0) -> Deferred[Any]:
        """
        Run ``command`` and wait (bounded) for its result.

        :param container: 0 to run it on the node, else the core0 id of the
            container to dispatch it into.
        :returns: Deferred firing with the decoded result data (the JSON
            value of a built-in; the text of a process command).
        :raises CommandFailed: the command ended in another state than
            ``SUCCESS``, no result came in time, or the node is unreachable.
        """

    def spawn(address: NodeAddress, command: str, arguments: dict[str, Any],
              container: int = 0) -> Deferred[str]:
        """
        Start ``command`` without waiting for it to end (daemons, reboot).

        :returns: Deferred firing with the job id.
        :raises CommandFailed: the node is unreachable, or dispatching into
            the container failed.
        """
