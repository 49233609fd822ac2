"""
How the simulator's actions reach core0 nodes: the ``INodeCommands``
seam, the decoding of core0 result objects, and ``RedisNodeCommands``,
which speaks the core0 Redis protocol (push on ``core:default``, read
``result:<id>``) with a bounded wait.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, ensureDeferred
from zope.interface import Interface, implementer

#: Seconds to wait for a command's result (the Go client's default).
RESULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class NodeAddress:
    """Where a node's core0 listens (its Redis endpoint)."""

    host: str
    port: int = 6379
    password: str = ""
    db: int = 0

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


def result_data(result: dict[str, Any]) -> Any:
    """
    The data of a core0 result object.

    :raises CommandFailed: when its state is not ``SUCCESS``.
    """
    command = str(result.get("command", ""))
    state = str(result.get("state", ""))
    data = result.get("data") or ""
    level = int(result.get("level") or 0)
    decoded: Any = data
    if level == 20 and data:
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = data
    if state != "SUCCESS":
        streams = result.get("streams") or ["", ""]
        message = decoded if isinstance(decoded, str) and decoded else ""
        if not message and len(streams) > 1:
            message = streams[1].strip()
        raise CommandFailed(command, state, message or str(result.get("critical") or ""))
    return decoded


@implementer(INodeCommands)
class RedisNodeCommands:
    """
    The core0 Redis protocol, one short-lived connection per command (a
    blocking read holds its connection, and this traffic is small).

    :param timeout: seconds to wait for a connection and for each result.
    """

    def __init__(self, timeout: float = RESULT_TIMEOUT) -> None:
        self.timeout = timeout

    def execute(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                container: int = 0) -> Deferred[Any]:
        return ensureDeferred(self._run(address, command, arguments, container, wait=True))

    def spawn(self, address: NodeAddress, command: str, arguments: dict[str, Any],
              container: int = 0) -> Deferred[str]:
        return ensureDeferred(self._run(address, command, arguments, container, wait=False))

    async def _connect(self, address: NodeAddress) -> Any:
        try:
            return await txredisapi.Connection(
                address.host, address.port, dbid=address.db or None, reconnect=False,
                password=address.password or None, connectTimeout=self.timeout)
        except Exception as e:
            raise CommandFailed("connect", "UNREACHABLE", f"core0 at {address}: {e}") from None

    async def _result(self, redis: Any, job_id: str, command: str) -> dict[str, Any]:
        key = f"result:{job_id}"
        raw = await redis.brpoplpush(key, key, max(1, math.ceil(self.timeout)))
        if raw is None:
            raise CommandFailed(command, "TIMEOUT", f"no result within {self.timeout:g} s")
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise CommandFailed(command, "ERROR", "malformed result")
        return value

    async def _run(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                   container: int, wait: bool) -> Any:
        redis = await self._connect(address)
        try:
            job_id = str(uuid.uuid4())
            if container:
                payload = {"id": job_id, "command": "corex.dispatch",
                           "arguments": {"container": int(container),
                                         "command": {"command": command, "arguments": arguments}}}
            else:
                payload = {"id": job_id, "command": command, "arguments": arguments}
            await redis.rpush("core:default", json.dumps(payload))
            if container:
                job_id = str(result_data(await self._result(redis, job_id, "corex.dispatch")))
            if not wait:
                return job_id
            return result_data(await self._result(redis, job_id, command))
        except txredisapi.ConnectionError as e:
            raise CommandFailed(command, "UNREACHABLE", f"core0 at {address}: {e}") from None
        finally:
            redis.disconnect()
