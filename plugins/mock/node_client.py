"""
A model node as the core0 backend sees a node: its core0 commands, run in
process and answered as ``plugins.core0.client.NodeClient.call`` answers
them (the decoded payload, ``CommandFailed`` otherwise).  Through it the
core0 backend's families made of commands alone (storage pools and
filesystems, bridges and ZeroTier networks, VMs) serve the mock, so the
two backends share that code and answer alike.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred

from plugins.core0.nodes import Runner
from plugins.core0.protocol import Result, check
from plugins.poolsim.agent import Agent
from plugins.poolsim.node import Node


def agent_runner(agent: Agent, where: str) -> Runner:
    """
    :param agent: a model node or container.
    :param where: its name in error messages.
    :returns: a runner of built-in commands on it, answering the
        ``Result`` a node's Redis would (the core0 backend's job and
        process logic runs on it).
    """
    async def run(command: str, arguments: dict[str, Any]) -> Result:
        job = agent.execute(command, json.loads(json.dumps(arguments)))
        assert job.result is not None, f"'{command}' is not a built-in command"
        return Result.from_object(job.result, where)

    return run


class ModelNodeClient:
    """
    :param node: the model node the commands run on.
    """

    def __init__(self, node: Node) -> None:
        self.model = node
        self.node = node.node_id
        self.run = agent_runner(node, node.node_id)

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        """
        Run a built-in command once the node runs (a rebooting node answers
        when it is back); its arguments are copied as the wire would.

        :returns: Deferred firing with the result's payload.
        :raises CommandFailed: the command ended in another state than ``SUCCESS``.
        """
        return ensureDeferred(self._call(command, arguments or {}))

    async def _call(self, command: str, arguments: dict[str, Any]) -> Any:
        await self.model.when_running()
        return check(await self.run(command, arguments), self.node).value()
