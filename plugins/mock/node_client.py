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

from plugins.core0.protocol import Result, check
from plugins.model.node import Node


class ModelNodeClient:
    """
    :param node: the model node the commands run on.
    """

    def __init__(self, node: Node) -> None:
        self.model = node
        self.node = node.node_id

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        """
        Run a built-in command once the node runs (a rebooting node answers
        when it is back); its arguments are copied as the wire would.

        :returns: Deferred firing with the result's payload.
        :raises CommandFailed: the command ended in another state than ``SUCCESS``.
        """
        return ensureDeferred(self._call(command, json.loads(json.dumps(arguments or {}))))

    async def _call(self, command: str, arguments: dict[str, Any]) -> Any:
        await self.model.when_running()
        job = self.model.execute(command, arguments)
        assert job.result is not None, f"'{command}' is not a built-in command"
        return check(Result.from_object(job.result, self.node), self.node).value()
