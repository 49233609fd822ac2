"""
The core0 side of one simulated node: it consumes ``core:default`` on the
node's Redis endpoint, runs each command through the node model and
publishes flags and results as core0 does (protocol reference, 1.2-1.4
and 4.2).

Two connections per node: a *reader* that pops commands (``LPOP`` of up
to ``POP_BATCH`` queued commands, ``BLPOP`` when the queue is empty), and
a *writer* that pipelines every flag and result without waiting for
replies.  Both reconnect by themselves when Redis restarts; results of
jobs that end while Redis is away are written once it is back.

Usable in any reactor::

    agent = NodeAgent(node, Endpoint("127.0.0.1", port))
    agent.startService()
    await agent.when_ready()
    ...
    await agent.stopService()
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, gatherResults, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import deferLater
from twisted.logger import Logger

from plugins.core0sim.link import Endpoint, RedisLink
from plugins.core0sim.payload import Command, PayloadError, decode
from plugins.core0sim.resp import Chunk, RedisError, RespProtocol
from plugins.poolsim.jobs import Job
from plugins.poolsim.node import Node

log = Logger()

QUEUE_KEY = b"core:default"
#: Seconds a result and its flag stay after the job ends.
RESULT_TTL = 300
#: Commands taken from ``core:default`` in one ``LPOP``.
POP_BATCH = 256
#: Jobs core0 runs at once (``max_jobs``); later commands wait in the queue.
MAX_JOBS = 200
#: core0 waits this long after a payload it could not decode.
BAD_PAYLOAD_PAUSE = 0.2
#: On stop, how long to wait for the last pop to return.
STOP_WAIT_SECONDS = 1.0


# The few commands the agent writes, preformatted (RESP arrays of bulk strings).
_RPUSH_FLAG = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\nresult:%s:flag\r\n$0\r\n\r\n"
_PUBLISH = (
    b"*3\r\n$6\r\nEXPIRE\r\n$%d\r\nresult:%s:flag\r\n$3\r\n300\r\n"
    b"*3\r\n$5\r\nRPUSH\r\n$%d\r\nresult:%s\r\n$%d\r\n%s\r\n"
    b"*3\r\n$6\r\nEXPIRE\r\n$%d\r\nresult:%s\r\n$3\r\n300\r\n"
)
assert RESULT_TTL == 300


def flag_commands(job_id: str) -> list[Chunk]:
    """Pickup: ``RPUSH result:<id>:flag ""``."""
    encoded = job_id.encode()
    return [(_RPUSH_FLAG % (len(encoded) + 12, encoded), 1)]


def result_commands(job_id: str, result: dict[str, Any]) -> list[Chunk]:
    """
    Publishing a result (1.4 step 5): ``EXPIRE result:<id>:flag 300``,
    ``RPUSH result:<id> <json>``, ``EXPIRE result:<id> 300``.
    """
    encoded = job_id.encode()
    body = json.dumps(result, separators=(",", ":")).encode()
    n = len(encoded)
    return [(_PUBLISH % (n + 12, encoded, n + 7, encoded, len(body), body, n + 7, encoded), 3)]


def stream_commands(job_id: str, entry: dict[str, Any]) -> list[Chunk]:
    """
    One entry of a streamed job's output (the later protocol):
    ``RPUSH stream:<id> <json>``, and with the last one ``EXPIRE stream:<id> 300``.
    """
    key = f"stream:{job_id}".encode()
    body = json.dumps(entry, separators=(",", ":")).encode()
    chunks: list[Chunk] = [(b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                            % (len(key), key, len(body), body), 1)]
    if int(entry.get("message", {}).get("meta", 0)) & 0x6:
        chunks.append((b"*3\r\n$6\r\nEXPIRE\r\n$%d\r\n%s\r\n$3\r\n%d\r\n"
                       % (len(key), key, RESULT_TTL), 1))
    return chunks


def _observe(deferred: Deferred[Any]) -> Deferred[None]:
    """A Deferred that fires with ``deferred`` and can be cancelled alone."""
    d: Deferred[None] = Deferred()

    def fired(result: Any) -> Any:
        if not d.called:
            d.callback(None)
        return result

    deferred.addBoth(fired)
    return d


class NodeAgent(MultiService):
    """
    Serves one ``plugins.poolsim.node.Node`` on one Redis endpoint.

    :param node: the node; the agent adds itself to its ``listeners`` and
        ``start_listeners`` while it runs.
    :param endpoint: the node's Redis (host, port, database, password).
    :param reactor: the reactor (default: the global one).
    """

    def __init__(self, node: Node, endpoint: Endpoint, reactor: Any = None,
                 max_jobs: int = MAX_JOBS) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.node = node
        self.endpoint = endpoint
        self.reactor = reactor
        self.max_jobs = max_jobs
        self.reader = RedisLink(endpoint, reactor, identify=True)
        self.writer = RedisLink(endpoint, reactor, buffer_writes=True)
        self.reader.setServiceParent(self)
        self.writer.setServiceParent(self)
        self._pending: deque[bytes] = deque()
        self._queues: dict[str, deque[Command]] = {}
        self._held: list[Chunk] | None = None
        self._batch: list[Chunk] | None = None
        self._reboot: Job | None = None
        self._slot: Deferred[None] | None = None
        self._lpop_count = True
        self._loop: Deferred[None] | None = None
        self._stopping = False
        self._popping = False
        self._is_ready = False
        self._ready_waiters: list[Deferred[None]] = []

    # Service -----------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self.node.listeners.append(self._job_ended)
        self.node.start_listeners.append(self._job_started)
        self.node.output_listeners.append(self._job_output)
        self._loop = ensureDeferred(self._consume())
        gatherResults([self.reader.when_ready(), self.writer.when_ready()], consumeErrors=True) \
            .addCallbacks(self._became_ready, lambda _: None)

    def stopService(self) -> Deferred[None]:
        """
        Stop taking commands without losing one: a blocked ``BLPOP`` is
        released with ``CLIENT UNBLOCK`` (so nothing pushed later is popped
        by a connection about to close), what it returns is still served,
        then both connections close.
        """
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        loop = self._loop
        if loop is not None and self._popping:
            reader, writer = self.reader.current, self.writer.current
            if reader is not None and writer is not None and reader.client_id is not None:
                try:
                    await writer.request(b"CLIENT", b"UNBLOCK", reader.client_id)
                    ended = _observe(loop)
                    timer = self.reactor.callLater(STOP_WAIT_SECONDS, ended.cancel)
                    await ended
                    if timer.active():
                        timer.cancel()
                except (CancelledError, ConnectionLost, ConnectionDone, RedisError):
                    pass
        if self._loop is not None:
            self._loop.cancel()
            self._loop = None
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.cancel()
        if self._job_ended in self.node.listeners:
            self.node.listeners.remove(self._job_ended)
        if self._job_started in self.node.start_listeners:
            self.node.start_listeners.remove(self._job_started)
        if self._job_output in self.node.output_listeners:
            self.node.output_listeners.remove(self._job_output)
        await super().stopService()

    def when_ready(self) -> Deferred[None]:
        """
        Fires once both connections have been made for the first time (the
        node takes commands); fails with ``CancelledError`` if the agent
        stops first.
        """
        if self._is_ready:
            return succeed(None)
        d: Deferred[None] = Deferred(lambda d: self._ready_waiters.remove(d))
        self._ready_waiters.append(d)
        return d

    def _became_ready(self, _: object) -> None:
        self._is_ready = True
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # Consuming core:default ----------------------------------------------------

    async def _consume(self) -> None:
        try:
            while self.running and not self._stopping:
                connection = await self.reader.when_ready()
                try:
                    await self._consume_on(connection)
                except (ConnectionLost, ConnectionDone):
                    continue
                except RedisError as e:
                    log.warn("{node}: Redis error while popping commands: {error}",
                             node=self.node.node_id, error=str(e))
                    await deferLater(self.reactor, BAD_PAYLOAD_PAUSE)
        except CancelledError:
            return

    async def _consume_on(self, connection: RespProtocol) -> None:
        node = self.node
        while self.running and not self._stopping and connection.connected_:
            if self._reboot is not None:
                await _observe(self._reboot.done)
                self._reboot = None
                continue
            if not node.running:
                await node.when_running()
                continue
            if self._full():
                self._slot = Deferred()
                await self._slot
                continue
            if not self._pending:
                await self._fetch(connection)
            if self._serve_pending():
                await deferLater(self.reactor, BAD_PAYLOAD_PAUSE)

    async def _fetch(self, connection: RespProtocol) -> None:
        items: list[bytes] | None = None
        self._popping = True
        try:
            if self._lpop_count:
                try:
                    items = await connection.request(b"LPOP", QUEUE_KEY, POP_BATCH)
                except RedisError:
                    self._lpop_count = False  # Redis before 6.2
            if not items and not self._stopping:
                reply = await connection.request(b"BLPOP", QUEUE_KEY, 0)
                # nil: released by CLIENT UNBLOCK (the agent stops)
                items = [reply[1]] if reply else []
        finally:
            self._popping = False
        self._pending.extend(items or [])

    def _full(self) -> bool:
        # The node's own jobs, without redis.public and the container runners.
        return len(self.node.jobs) - len(self.node.containers) - 1 >= self.max_jobs

    def _serve_pending(self) -> bool:
        """
        Run popped commands while the node can take them.

        :returns: ``True`` after a payload that had to be dropped (core0
            pauses before the next one).
        """
        pending = self._pending
        node = self.node
        # Everything written while serving a batch leaves in one write.
        batch: list[Chunk] = []
        self._batch = batch
        try:
            while pending and node.running and self._reboot is None and not self._full():
                raw = pending.popleft()
                try:
                    command = decode(raw)
                except PayloadError as e:
                    log.warn("{node}: dropped a command payload: {why}", node=node.node_id, why=str(e))
                    return True
                self._pickup(command)
            return False
        finally:
            self._batch = None
            if batch:
                self.writer.send(batch)

    def _send(self, chunks: list[Chunk]) -> None:
        if self._batch is not None:
            self._batch.extend(chunks)
        else:
            self.writer.send(chunks)

    def _pickup(self, command: Command) -> None:
        self._send(flag_commands(command.id))
        if command.queue:
            waiting = self._queues.get(command.queue)
            if waiting is not None:
                waiting.append(command)
                return
            self._queues[command.queue] = deque()
        self._run(command)

    def _run(self, command: Command) -> None:
        self._held = []
        try:
            job = self.node.execute(
                command.command, command.arguments, job_id=command.id,
                queue=command.queue, tags=command.tags, max_time=command.max_time,
                stream=command.stream,
            )
        except Exception:
            # A fault of the model must not stop the node: answer like
            # core0 answers a panic.
            log.failure("{node}: command {command} failed", node=self.node.node_id,
                        command=command.command)
            self._send(result_commands(command.id, {
                "id": command.id, "command": command.command, "data": json.dumps("internal error"),
                "streams": ["", ""], "critical": "PANIC(internal error)", "level": 20,
                "state": "ERROR", "starttime": self.node.now_ms(), "time": 0,
                "tags": command.tags, "container": 0,
            }))
            return
        finally:
            held, self._held = self._held, None
            if held:
                self._send(held)
        if job.command == "core.reboot" and job.running:
            self._reboot = job
        if command.queue:
            job.done.addBoth(self._queue_next, command.queue)

    def _queue_next(self, result: Any, queue: str) -> Any:
        waiting = self._queues.get(queue)
        if waiting:
            command = waiting.popleft()
            self.node.when_running().addCallback(lambda _: self._run(command))
        else:
            self._queues.pop(queue, None)
        return result

    # Publishing ---------------------------------------------------------------

    def _job_started(self, job: Job) -> None:
        # Commands popped here are flagged at pickup; this flags the jobs
        # dispatched into containers, before the dispatch job's result.
        if job.agent is not self.node:
            self._send(flag_commands(job.id))

    def _job_output(self, job: Job, entry: dict[str, Any]) -> None:
        self._send(stream_commands(job.id, entry))

    def _job_ended(self, job: Job, result: dict[str, Any]) -> None:
        commands = result_commands(job.id, result)
        if self._held is not None and job.agent is not self.node:
            # A container job that ended while its dispatch runs: core0
            # answers the dispatch first.
            self._held.extend(commands)
        else:
            self._send(commands)
        slot = self._slot
        if slot is not None and not self._full():
            self._slot = None
            slot.callback(None)
