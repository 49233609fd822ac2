"""
A client for one node's core0 agent: run a command and wait for its
result, dispatch commands into containers, read results of other jobs, and
find containers by name.

Round trips per call (each over one leased connection):

- a command: 1 (``RPUSH core:default`` and ``BRPOPLPUSH result:<id>``
  written together; the agent's pickup flag is not waited for);
- a command inside a container: 2 (``corex.dispatch``, then the inner
  job's result, whose id the dispatch returns);
- reading a job that is not running: 1 (flag and result read together,
  without blocking), so an unknown id is a 404 at once.

Every call has a deadline (``timeout``): a node that cannot be reached
fails with ``BackendUnavailable``, one that does not answer with
``BackendTimeout``.  Cancelling a call (the HTTP client went away) closes
the connection it had leased if a reply is still due.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import txredisapi
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

from plugins.core0.connection import Connection, NodePool
from plugins.core0.protocol import (
    QUEUE,
    SUCCESS,
    CommandFailed,
    Result,
    check,
    flag_key,
    inner_command,
    payload,
    result_key,
)
from plugins.core0.registry import NodeAddress
from rpoold.errors import BackendError, BackendTimeout, BackendUnavailable, RpoolError

T = TypeVar("T")

ONLY_SUCCESS = frozenset({SUCCESS})
#: Errors of ``corex.dispatch`` that mean the container id is stale.
STALE_CONTAINER = ("container does not exist", "invalid container id")


def _ignore(failure: Failure) -> None:
    return None


class _Call:
    """Where a call is, so a timeout can say what did not happen in time."""

    __slots__ = ("client", "phase", "what")

    def __init__(self, client: NodeClient, what: str) -> None:
        self.client = client
        self.what = what
        self.phase = "lease"

    def timed_out(self, result: Any, timeout: float) -> Any:
        client = self.client
        pool = client.pool
        if self.phase == "lease" and pool.ready == 0:
            raise BackendUnavailable(
                f"node '{client.node}' is unreachable ({client.address.endpoint}): "
                f"no connection within {timeout:g} s")
        if self.phase == "lease":
            raise BackendTimeout(
                f"node '{client.node}': all {pool.size} connections stayed busy for {timeout:g} s")
        raise BackendTimeout(f"node '{client.node}' did not answer '{self.what}' within {timeout:g} s")


class NodeClient:
    """
    :param address: the node.
    :param pool_size: the most Redis connections to it at once.
    :param timeout: default deadline of a call, in seconds.
    :param container_cache_seconds: how long a container name -> id
        mapping found with ``corex.list`` is trusted.
    """

    def __init__(self, address: NodeAddress, *, pool_size: int, timeout: float, reactor: Any,
                 container_cache_seconds: float = 300.0) -> None:
        self.address = address
        self.node = address.id
        self.timeout = timeout
        self.reactor = reactor
        self.pool = NodePool(address, pool_size, reactor)
        self.container_cache_seconds = container_cache_seconds
        self._containers: dict[str, int] = {}
        self._containers_until = 0.0

    def close(self) -> Deferred[None]:
        """Close every connection; later calls fail with ``BackendUnavailable``."""
        return self.pool.close()

    # The call machinery ---------------------------------------------------------

    def _session(self, what: str, body: Callable[[Connection, _Call], Awaitable[T]],
                 timeout: float | None) -> Deferred[T]:
        seconds = self.timeout if timeout is None else timeout
        call = _Call(self, what)
        d = ensureDeferred(self._leased(call, body, seconds))
        d.addTimeout(seconds, self.reactor, onTimeoutCancel=call.timed_out)
        return d

    async def _leased(self, call: _Call, body: Callable[[Connection, _Call], Awaitable[T]],
                      timeout: float) -> T:
        conn = await self.pool.lease(timeout)
        call.phase = "answer"
        try:
            value = await body(conn, call)
        except BaseException as e:
            if conn.replyQueue.waiting:
                self.pool.discard(conn)
            else:
                self.pool.release(conn)
            if isinstance(e, txredisapi.ConnectionError):
                raise BackendUnavailable(f"node '{self.node}': connection lost ({e})") from None
            if isinstance(e, txredisapi.ResponseError):
                if str(e).startswith(("NOAUTH", "WRONGPASS", "invalid password")):
                    raise BackendUnavailable(f"node '{self.node}' refused access: {e}") from None
                raise BackendError(f"node '{self.node}': Redis error: {e}") from None
            raise
        self.pool.release(conn)
        return value

    def _server_timeout(self, timeout: float | None) -> int:
        """The ``BRPOPLPUSH`` timeout: after our own deadline, a safety net only."""
        return int(self.timeout if timeout is None else timeout) + 2

    async def _command(self, conn: Connection, command: str, arguments: dict[str, Any],
                       wait: int) -> Result:
        job = str(uuid.uuid4())
        key = result_key(job)
        push = conn.execute_command("RPUSH", QUEUE, payload(job, command, arguments))
        answer = conn.execute_command("BRPOPLPUSH", key, key, wait)
        try:
            await push
        except BaseException:
            answer.addErrback(_ignore)
            raise
        return self._parse(await answer, command)

    def _parse(self, text: Any, what: str) -> Result:
        if text is None:
            raise BackendTimeout(f"node '{self.node}' did not answer '{what}' in time")
        return Result.parse(text, self.node)

    # Commands ------------------------------------------------------------------------

    def execute(self, command: str, arguments: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Deferred[Result]:
        """
        Run a command on the node and wait for its result.

        :returns: Deferred firing with the ``Result``, whatever its state.
        :raises BackendUnavailable: the node's Redis cannot be reached.
        :raises BackendTimeout: no result within ``timeout`` (default: the
            client's).
        """
        wait = self._server_timeout(timeout)

        async def body(conn: Connection, call: _Call) -> Result:
            return await self._command(conn, command, arguments or {}, wait)

        return self._session(command, body, timeout)

    def call(self, command: str, arguments: dict[str, Any] | None = None, *,
             accept: frozenset[str] = ONLY_SUCCESS, timeout: float | None = None) -> Deferred[Any]:
        """
        Run a command and decode its payload.

        :returns: Deferred firing with the result's value (decoded JSON for
            built-ins).
        :raises CommandFailed: the command ended in a state not in ``accept``.
        :raises CommandTimedOut: the agent stopped it at its time limit.
        :raises BackendUnavailable, BackendTimeout: as ``execute``.
        """
        return self.execute(command, arguments, timeout=timeout).addCallback(
            lambda result: check(result, self.node, accept).value())

    def submit(self, command: str, arguments: dict[str, Any] | None = None, *,
               timeout: float | None = None) -> Deferred[str]:
        """
        Queue a command without waiting for it (``core.reboot`` never
        answers).

        :returns: Deferred firing with the job id once it is queued.
        """
        job = str(uuid.uuid4())

        async def body(conn: Connection, call: _Call) -> str:
            await conn.execute_command("RPUSH", QUEUE, payload(job, command, arguments or {}))
            return job

        return self._session(command, body, timeout)

    def ping(self, timeout: float) -> Deferred[bool]:
        """
        :returns: Deferred firing with ``True`` when the agent answers
            ``core.ping`` within ``timeout``, ``False`` otherwise (it
            never fails).
        """
        def answered(result: Result) -> bool:
            return result.state == SUCCESS

        def down(failure: Failure) -> bool:
            failure.trap(RpoolError)
            return False

        return self.execute("core.ping", timeout=timeout).addCallbacks(answered, down)

    def peek(self, job_id: str, *, timeout: float | None = None) -> Deferred[tuple[bool, Result | None]]:
        """
        Read a job's state without waiting: whether the agent has its
        pickup flag, and its result if it has finished (both in one round
        trip).

        :returns: Deferred firing with ``(flagged, result or None)``.
        """
        async def body(conn: Connection, call: _Call) -> tuple[bool, Result | None]:
            flag = conn.execute_command("RPOPLPUSH", flag_key(job_id), flag_key(job_id))
            result = conn.execute_command("RPOPLPUSH", result_key(job_id), result_key(job_id))
            try:
                flagged = await flag
            except BaseException:
                result.addErrback(_ignore)
                raise
            text = await result
            return flagged is not None, (Result.parse(text, self.node) if text is not None else None)

        return self._session(f"read job '{job_id}'", body, timeout)

    # Containers ------------------------------------------------------------------------

    def dispatch(self, container: int, command: str, arguments: dict[str, Any] | None = None, *,
                 wait: bool = True, timeout: float | None = None) -> Deferred[Any]:
        """
        Run a command inside a container (``corex.dispatch``).

        :param wait: wait for the inner job's result; when false, answer
            with the inner job's id as soon as it is dispatched.
        :returns: Deferred firing with the inner ``Result``, or its id.
        :raises CommandFailed: the dispatch itself failed (for example
            ``container does not exist``).
        :raises BackendUnavailable, BackendTimeout: as ``execute``.
        """
        server_wait = self._server_timeout(timeout)
        arguments = {"container": container, "command": inner_command(command, arguments or {})}

        async def body(conn: Connection, call: _Call) -> Any:
            outer = check(await self._command(conn, "corex.dispatch", arguments, server_wait), self.node)
            job = outer.value()
            if not isinstance(job, str) or not job:
                raise BackendError(f"node '{self.node}': corex.dispatch answered {job!r}, not a job id")
            if not wait:
                return job
            call.what = command
            key = result_key(job)
            return self._parse(await conn.execute_command("BRPOPLPUSH", key, key, server_wait), command)

        return self._session(f"{command} (container {container})", body, timeout)

    async def container_id(self, name: str, *, fresh: bool = False) -> int | None:
        """
        The id of the running container tagged ``name`` (the first one, by
        id, as the original did), from a cache of ``corex.list``.

        :param fresh: ask the node even if the cache has an answer.
        :returns: the id, or ``None`` when no running container has the tag.
        """
        now = self.reactor.seconds()
        if not fresh and now < self._containers_until and name in self._containers:
            return self._containers[name]
        listing = await self.call("corex.list")
        self.index_containers(listing or {})
        return self._containers.get(name)

    def index_containers(self, listing: dict[str, Any]) -> None:
        """Refresh the name -> id cache from a ``corex.list`` answer."""
        names: dict[str, int] = {}
        for key in sorted(listing, key=_int_key):
            arguments = ((listing[key] or {}).get("container") or {}).get("arguments") or {}
            for tag in arguments.get("tags") or []:
                names.setdefault(str(tag), int(key))
        self._containers = names
        self._containers_until = self.reactor.seconds() + self.container_cache_seconds

    def forget_containers(self) -> None:
        """Drop the name -> id cache (a container stopped, the node rebooted)."""
        self._containers = {}
        self._containers_until = 0.0

    async def in_container(self, name: str, command: str, arguments: dict[str, Any] | None = None, *,
                           wait: bool = True) -> Any:
        """
        ``dispatch`` into the container called ``name``; a stale cached id
        (the container was stopped or recreated) is looked up once more.

        :returns: as ``dispatch``.
        :raises LookupError: no running container has this name.
        """
        for attempt in range(2):
            container = await self.container_id(name, fresh=attempt > 0)
            if container is None:
                raise LookupError(name)
            try:
                return await self.dispatch(container, command, arguments, wait=wait)
            except CommandFailed as e:
                if attempt or e.command != "corex.dispatch" or e.detail not in STALE_CONTAINER:
                    raise
                self.forget_containers()
        raise AssertionError("unreachable")


def _int_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        return 0

