"""
``INodeCommands`` over core0's Redis protocol, spoken by the simulator
itself (the protocol reference, sections 1, 2 and 4):

- a command: ``RPUSH core:default <payload>``, then ``BRPOPLPUSH
  result:<id> result:<id> <seconds>`` until its result comes;
- a command in a container: ``corex.dispatch`` (as above), whose data is
  the inner job's id, then that job's result, the same way;
- spawning: the push alone (on the node), or the dispatch alone (in a
  container), answering with the job id.

Connections come from the core0 simulator's RESP client
(``plugins.core0sim.resp``); a few are kept open per node address.  Each
command has one deadline, from waiting for a connection to its result.
Failures become ``CommandFailed``: ``UNREACHABLE`` (no connection, or it
was lost), ``TIMEOUT`` (no result in time), ``ERROR`` (Redis refused, or
the answer is not a result), or the final state core0 reported.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, ensureDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError, ConnectionClosed, DNSLookupError
from twisted.python.failure import Failure
from zope.interface import implementer

from plugins.ayssim.node_commands import RESULT_TIMEOUT, CommandFailed, INodeCommands, NodeAddress
from plugins.core0sim.resp import RedisError, RespProtocol

T = TypeVar("T")

#: The command queue every node's agent pops.
QUEUE = "core:default"
SUCCESS = "SUCCESS"
#: Levels whose ``data`` is a JSON document.
JSON_LEVELS = frozenset({20, 30})
#: Connections to one node at most (actions of one step run concurrently).
POOL_SIZE = 4
#: Seconds ``BRPOPLPUSH`` may block past the command's own deadline (a safety net).
SERVER_WAIT_MARGIN = 2
#: Error replies that say the node refuses the connection's credentials.
AUTH_ERRORS = ("NOAUTH", "WRONGPASS", "ERR invalid password", "invalid password")


def result_key(job: str) -> str:
    return f"result:{job}"


def payload(job: str, command: str, arguments: dict[str, Any]) -> str:
    """The JSON pushed on ``core:default`` (``arguments`` always an object)."""
    return json.dumps({"id": job, "command": command, "arguments": arguments})


def dispatch_arguments(container: int, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``corex.dispatch``'s arguments: the container and the inner command (its id is ignored)."""
    return {"container": container,
            "command": {"command": command, "arguments": arguments, "queue": "", "tags": ""}}


def decode_result(text: Any, command: str) -> dict[str, Any]:
    """
    A result object from its JSON text.

    :raises CommandFailed: ``ERROR``, the text is not a result object.
    """
    try:
        result = json.loads(text)
    except (TypeError, ValueError) as e:
        raise CommandFailed(command, "ERROR", f"unreadable result: {e}") from None
    if not isinstance(result, dict) or not isinstance(result.get("state"), str):
        raise CommandFailed(command, "ERROR", "unreadable result: not a result object")
    return result


def result_value(result: dict[str, Any]) -> Any:
    """The decoded JSON of a level-20/30 result, the data text otherwise."""
    data = result.get("data")
    text = data if isinstance(data, str) else ""
    if int(result.get("level") or 0) in JSON_LEVELS:
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def result_message(result: dict[str, Any]) -> str:
    """What went wrong, as the agent put it: its data, else the last line of stderr."""
    if int(result.get("level") or 0) in JSON_LEVELS:
        value = result_value(result)
        if isinstance(value, str):
            return value
        if value is not None:
            return json.dumps(value)
    streams = result.get("streams")
    stderr = str(streams[1]) if isinstance(streams, list) and len(streams) > 1 else ""
    if stderr.strip():
        return stderr.strip().splitlines()[-1]
    data = result.get("data")
    return data.strip() if isinstance(data, str) else ""


def checked_value(result: dict[str, Any], command: str) -> Any:
    """
    :returns: the value of a ``SUCCESS`` result.
    :raises CommandFailed: in the state core0 reported, with its message.
    """
    if result["state"] != SUCCESS:
        raise CommandFailed(command, result["state"], result_message(result))
    return result_value(result)


class _Node:
    """The connections kept open to one node address, and the bound on them."""

    def __init__(self, size: int) -> None:
        self.slots = DeferredSemaphore(size)
        self.idle: list[RespProtocol] = []
        self.open: set[RespProtocol] = set()


@implementer(INodeCommands)
class Core0Commands:
    """
    :param timeout: the deadline of each command, in seconds (connection,
        push, result; both jobs of a command run in a container).
    :param pool_size: connections per node at most.
    :param reactor: the reactor (default: the global one).
    """

    def __init__(self, timeout: float = RESULT_TIMEOUT, pool_size: int = POOL_SIZE,
                 reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.timeout = timeout
        self.pool_size = pool_size
        self.nodes: dict[NodeAddress, _Node] = {}

    # INodeCommands ----------------------------------------------------------------

    def execute(self, address: NodeAddress, command: str, arguments: dict[str, Any],
                container: int = 0) -> Deferred[Any]:
        async def run(conn: RespProtocol) -> Any:
            if container:
                job = await self._dispatched(conn, container, command, arguments)
                return checked_value(await self._result(conn, job, command), command)
            return checked_value(await self._run(conn, command, arguments), command)

        return self._session(address, command, run)

    def spawn(self, address: NodeAddress, command: str, arguments: dict[str, Any],
              container: int = 0) -> Deferred[str]:
        async def start(conn: RespProtocol) -> str:
            if container:
                return await self._dispatched(conn, container, command, arguments)
            job = str(uuid.uuid4())
            await conn.request("RPUSH", QUEUE, payload(job, command, arguments))
            return job

        return self._session(address, command, start)

    def close(self) -> Deferred[Any]:
        """
        Close every node's connections.

        :returns: Deferred firing once they are closed.
        """
        nodes, self.nodes = list(self.nodes.values()), {}
        lost = []
        for node in nodes:
            for conn in node.open:
                lost.append(conn.lost)
                if conn.transport is not None:
                    conn.transport.loseConnection()
        return DeferredList(lost, consumeErrors=True)

    # The protocol -----------------------------------------------------------------

    def _server_wait(self) -> int:
        return math.ceil(self.timeout) + SERVER_WAIT_MARGIN

    async def _result(self, conn: RespProtocol, job: str, command: str) -> dict[str, Any]:
        key = result_key(job)
        text = await conn.request("BRPOPLPUSH", key, key, self._server_wait())
        if text is None:
            raise CommandFailed(command, "TIMEOUT", f"no result within {self._server_wait()} s")
        return decode_result(text, command)

    async def _run(self, conn: RespProtocol, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        job = str(uuid.uuid4())
        await conn.request("RPUSH", QUEUE, payload(job, command, arguments))
        return await self._result(conn, job, command)

    async def _dispatched(self, conn: RespProtocol, container: int, command: str,
                          arguments: dict[str, Any]) -> str:
        """
        :returns: the inner job's id.
        :raises CommandFailed: the dispatch failed (``container does not exist``, ...).
        """
        outer = await self._run(conn, "corex.dispatch", dispatch_arguments(container, command, arguments))
        job = checked_value(outer, command)
        if not isinstance(job, str) or not job:
            raise CommandFailed(command, "ERROR", f"corex.dispatch answered {job!r}, not a job id")
        return job

    # Connections ------------------------------------------------------------------

    def _session(self, address: NodeAddress, command: str,
                 work: Callable[[RespProtocol], Awaitable[T]]) -> Deferred[T]:
        """Run ``work`` on a leased connection within the deadline; failures as ``CommandFailed``."""
        d = ensureDeferred(self._leased(address, work))
        d.addTimeout(self.timeout, self.reactor)
        return d.addErrback(self._translate, address, command)

    async def _leased(self, address: NodeAddress,
                      work: Callable[[RespProtocol], Awaitable[T]]) -> T:
        node = self.nodes.get(address)
        if node is None:
            node = self.nodes[address] = _Node(self.pool_size)
        await node.slots.acquire()
        conn: RespProtocol | None = None
        done = False
        try:
            conn = await self._connection(address, node)
            result = await work(conn)
            done = True
            return result
        finally:
            node.slots.release()
            if conn is not None:
                if done and conn.connected_ and self.nodes.get(address) is node:
                    node.idle.append(conn)
                elif conn.transport is not None:
                    # A reply may still be due (cancelled, failed): the connection goes.
                    conn.transport.loseConnection()

    async def _connection(self, address: NodeAddress, node: _Node) -> RespProtocol:
        while node.idle:
            conn = node.idle.pop()
            if conn.connected_:
                return conn
        endpoint = TCP4ClientEndpoint(self.reactor, address.host, address.port,
                                      timeout=max(1, math.ceil(self.timeout)))
        conn = await connectProtocol(endpoint, RespProtocol())
        node.open.add(conn)
        conn.lost.addCallback(lambda _: node.open.discard(conn))
        try:
            await conn.handshake(address.password or None, address.db)
        except BaseException as e:
            if conn.transport is not None:
                conn.transport.loseConnection()
            if isinstance(e, defer.FirstError):
                e.subFailure.raiseException()
            raise
        return conn

    def _translate(self, failure: Failure, address: NodeAddress, command: str) -> Failure:
        error = failure.value
        where = f"'{address.name or address}'"
        if isinstance(error, CommandFailed):
            return failure
        if isinstance(error, defer.TimeoutError):
            raise CommandFailed(command, "TIMEOUT",
                                f"node {where}: no result within {self.timeout:g} s")
        if isinstance(error, (ConnectError, ConnectionClosed, DNSLookupError)):
            raise CommandFailed(command, "UNREACHABLE", f"node {where}: {error}")
        if isinstance(error, RedisError):
            if str(error).startswith(AUTH_ERRORS):
                raise CommandFailed(command, "UNREACHABLE", f"node {where} refused access: {error}")
            raise CommandFailed(command, "ERROR", f"node {where}: Redis error: {error}")
        return failure
