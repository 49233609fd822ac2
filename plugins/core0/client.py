"""
A client for one node's core0 agent over its Redis (``ICommandClient``):
run a command and wait for its result, dispatch commands into containers,
read results of other jobs.

Round trips per call (each over one leased connection):

- a command: 1 (``RPUSH core:default`` and ``BRPOPLPUSH result:<id>``
  written together, with ``CLIENT REPLY SKIP`` before the ``RPUSH`` where
  the server has it, so only the result comes back; the agent's pickup
  flag is not waited for);
- a command inside a container: 2 (``corex.dispatch``, then the inner
  job's result, whose id the dispatch returns);
- reading a job that is not running: 1 (flag and result read together,
  without blocking), so an unknown id is a 404 at once.

Every call has one deadline (``timeout``), kept by its session: a node
that cannot be reached fails with ``BackendUnavailable``, one that does not
answer with ``BackendTimeout``.  A caller who shares a run of a read-only
command has that run's deadline.  Cancelling a call (the HTTP client went
away) closes the connection it had leased if a reply is still due.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from plugins.core0 import telemetry
from plugins.core0.connection import Connection, NodePool, write_now
from plugins.core0.protocol import (
    QUEUE,
    SUCCESS,
    Result,
    check,
    flag_key,
    inner_command,
    new_job_id,
    payload,
    result_key,
    stream_key,
)
from rpoold.errors import BackendError, BackendTimeout, BackendUnavailable, RpoolError
from rpoold.nodes import ICommandClient, NodeAddress

ONLY_SUCCESS = frozenset({SUCCESS})
#: Read-only commands without arguments whose runs concurrent callers share.
SHAREABLE = frozenset({
    "core.ping", "core.state", "info.cpu", "info.disk", "info.mem", "info.nic", "info.os",
    "disk.list", "corex.list", "job.list", "process.list", "bridge.list", "btrfs.list",
    "kvm.list", "zerotier.list",
})
#: Errors that say the node refuses the connection's credentials.
AUTH_ERRORS = ("NOAUTH", "WRONGPASS", "invalid password")


def resp(*args: str | int) -> bytes:
    """One Redis command in the protocol's wire form."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


#: The parts of a command's one round trip that never change.
_REPLY_SKIP = resp("CLIENT", "REPLY", "SKIP")
_PUSH = b"*3\r\n" + _bulk(b"RPUSH") + _bulk(QUEUE.encode())
_POP = b"*4\r\n" + _bulk(b"BRPOPLPUSH")


def _push_and_pop(job: str, command: str, arguments: dict[str, Any], wait: int) -> tuple[bytes, bytes]:
    """``RPUSH core:default <payload>`` and ``BRPOPLPUSH result:<job> result:<job> <wait>``."""
    key = _bulk(result_key(job).encode())
    return (_PUSH + _bulk(payload(job, command, arguments).encode()),
            _POP + key + key + _bulk(b"%d" % wait))


class _Timers:
    """
    The deadlines of a client's sessions of one length, one delayed call
    for all (as ``rpoold.deadlines.Deadlines``): they come due in the
    order the sessions began.
    """

    __slots__ = ("pending", "reactor", "seconds", "timer")

    def __init__(self, reactor: Any, seconds: float) -> None:
        self.reactor = reactor
        self.seconds = seconds
        self.pending: dict[_Session, float] = {}
        self.timer: Any = None

    def add(self, session: _Session) -> float:
        """:returns: the session's deadline."""
        deadline = self.reactor.seconds() + self.seconds
        self.pending[session] = deadline
        if self.timer is None:
            self.timer = self.reactor.callLater(self.seconds, self._expire)
        return deadline

    def remove(self, session: _Session) -> None:
        self.pending.pop(session, None)

    def _expire(self) -> None:
        self.timer = None
        now = self.reactor.seconds()
        while self.pending:
            session, deadline = next(iter(self.pending.items()))
            if deadline > now:
                self.timer = self.reactor.callLater(deadline - now, self._expire)
                return
            del self.pending[session]
            session._expired(self.seconds)


class _Session:
    """
    One call: a connection leased for it alone, a deadline, and the
    Deferred the caller holds.  ``start`` is called with the session once
    the connection is there; it sends commands and ends the session with
    ``succeed`` or ``fail``.  Cancelling the caller's Deferred, or the
    deadline, ends it too; a connection that still owes a reply is then
    closed instead of going back to the pool.
    """

    __slots__ = ("client", "conn", "deadline", "done", "leasing", "phase", "result", "start", "timers",
                 "what")

    def __init__(self, client: NodeClient, what: str, seconds: float,
                 start: Callable[[_Session], None], *, begin: bool = True) -> None:
        self.client = client
        self.what = what
        self.start = start
        self.done = False
        self.conn: Connection | None = None
        self.phase = "queued"
        self.leasing: Deferred[Connection] | None = None
        self.result: Deferred[Any] = Deferred(self._cancelled)
        self.timers = client.timers(seconds)
        self.deadline = self.timers.add(self)
        if begin:
            self.begin()

    def begin(self) -> None:
        """Lease a connection and start (a queued session's deadline is already running)."""
        if self.done:
            return
        self.phase = "lease"
        conn = self.client.pool.take()
        if conn is not None:
            self._leased(conn)
            return
        remaining = max(self.deadline - self.client.reactor.seconds(), 0.001)
        self.leasing = self.client.pool.lease(remaining)
        self.leasing.addCallbacks(self._leased, self._not_leased)

    # Outcomes ------------------------------------------------------------------------

    def _leased(self, conn: Connection) -> None:
        self.leasing = None
        if self.done:
            self.client.pool.release(conn)
            return
        self.conn = conn
        self.phase = "answer"
        try:
            self.start(self)
        except Exception as e:
            self.fail(e)

    def _not_leased(self, failure: Failure) -> None:
        self.leasing = None
        if not failure.check(CancelledError) and failure.value is not None:
            self.fail(failure.value)

    def _end(self) -> None:
        self.done = True
        self.timers.remove(self)
        if self.leasing is not None:
            self.leasing.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            if conn.owes_reply():
                self.client.pool.discard(conn)
            else:
                self.client.pool.release(conn)

    def succeed(self, value: Any) -> None:
        if not self.done:
            self._end()
            self.result.callback(value)

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self._end()
            self.result.errback(self.client.translate(error))

    def _cancelled(self, _: Deferred[Any]) -> None:
        if not self.done:
            self._end()

    def _expired(self, seconds: float) -> None:
        if self.done:
            return
        client, pool = self.client, self.client.pool
        error: Exception
        # A node whose connections the calls before this one closed a moment
        # ago, when their own deadline ran out, was reached: it is silent.
        if self.phase == "lease" and not pool.reached_within(seconds):
            error = BackendUnavailable(f"node '{client.node}' is unreachable ({client.address.endpoint}): "
                                       f"no connection within {seconds:g} s")
        elif self.phase == "lease" and client.reactor.seconds() - client.answered_at < seconds:
            error = BackendTimeout(f"node '{client.node}': all {pool.size} connections stayed busy "
                                   f"for {seconds:g} s")
        elif self.phase == "lease":
            # Every connection waits for an answer to an earlier command, and
            # none came within the deadline: the node is silent, not busy.
            error = BackendTimeout(f"node '{client.node}' did not answer '{self.what}' within "
                                   f"{seconds:g} s (nor the {pool.size} commands sent before it)")
        else:
            error = BackendTimeout(f"node '{client.node}' did not answer '{self.what}' within {seconds:g} s")
        self.fail(error)

    # Talking ------------------------------------------------------------------------------

    def send(self, *commands: tuple[str | int, ...], replies: int | None = None) -> list[Deferred[Any]]:
        """
        Write commands in one go.

        :param replies: how many replies they get (default: one each).
        :returns: one Deferred per reply, firing with it (an exception
            object for an error reply or a lost connection).
        """
        conn = self.conn
        assert conn is not None
        write_now(conn.transport, b"".join(resp(*c) for c in commands))
        return [conn.replyQueue.get() for _ in range(len(commands) if replies is None else replies)]

    def checked(self, reply: Any) -> bool:
        """``True`` if ``reply`` is not an error; else the session fails with it."""
        if isinstance(reply, Exception):
            self.fail(reply)
            return False
        return not self.done

    def expect(self, data: bytes, step: Callable[[Any], None]) -> None:
        """Write ``data``, which gets one reply, and go on with ``step(reply)`` (as ``then``)."""
        conn = self.conn
        assert conn is not None
        conn.expect(data, lambda reply: self.then(reply, step))

    def then(self, reply: Any, step: Callable[[Any], None]) -> None:
        """Go on with ``step(reply)`` unless the reply is an error or the session is over."""
        if reply is not None and not isinstance(reply, Exception):
            self.client.answered_at = self.client.reactor.seconds()
        if self.checked(reply):
            try:
                step(reply)
            except Exception as e:
                self.fail(e)


class _Rider:
    """One caller of a shared command."""

    __slots__ = ("done", "result", "shared")

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.done = False
        self.result: Deferred[Result] = Deferred(self._cancelled)

    def settle(self, outcome: Any) -> None:
        if self.done:
            return
        self.done = True
        if isinstance(outcome, Failure):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)

    def _cancelled(self, _: Deferred[Result]) -> None:
        # Cancelled by the caller.
        if not self.done:
            self.done = True
            self.shared.left(self)


class _Shared:
    """
    The runs of one read-only command on one node, shared by the callers
    that come while one is under way: they wait for the next run, which
    starts when the current one ends.  The next run's session, and so its
    deadline, begins when the first of them comes: no caller waits longer
    than the deadline.  A run nobody waits for any more is cancelled.
    """

    __slots__ = ("client", "command", "current", "next", "run", "timeout", "upcoming")

    def __init__(self, client: NodeClient, command: str, timeout: float) -> None:
        self.client = client
        self.command = command
        self.timeout = timeout
        self.current: list[_Rider] = []
        self.next: list[_Rider] = []
        #: The run under way, and the one queued behind it.
        self.run: _Session | None = None
        self.upcoming: _Session | None = None

    def join(self) -> Deferred[Result]:
        rider = _Rider(self)
        if self.run is None:
            self.current.append(rider)
            self.run = self._session(begin=True)
        else:
            self.next.append(rider)
            if self.upcoming is None:
                self.upcoming = self._session(begin=False)
        return rider.result

    def _session(self, begin: bool) -> _Session:
        session = self.client.run_session(self.command, self.timeout, begin=begin)
        session.result.addBoth(self._ended, session)
        return session

    def _ended(self, outcome: Any, session: _Session) -> None:
        if session is self.run:
            riders, self.current, self.run = self.current, [], None
            if self.upcoming is not None:
                self.current, self.next = self.next, []
                self.run, self.upcoming = self.upcoming, None
                self.run.begin()
        elif session is self.upcoming:
            # Its deadline passed before the run ahead of it ended.
            riders, self.next, self.upcoming = self.next, [], None
        else:
            return
        for rider in riders:
            rider.settle(outcome)

    def left(self, rider: _Rider) -> None:
        if rider in self.next:
            self.next.remove(rider)
            if not self.next and self.upcoming is not None:
                upcoming, self.upcoming = self.upcoming, None
                upcoming.result.cancel()
        elif rider in self.current:
            self.current.remove(rider)
            if not self.current and self.run is not None:
                run, self.run = self.run, None
                run.result.cancel()
                if self.upcoming is not None:
                    self.current, self.next = self.next, []
                    self.run, self.upcoming = self.upcoming, None
                    self.run.begin()


@implementer(ICommandClient)
class NodeClient:
    """
    :param address: the node.
    :param pool_size: the most Redis connections to it at once.
    :param timeout: default deadline of a call, in seconds.
    """

    def __init__(self, address: NodeAddress, *, pool_size: int, timeout: float, reactor: Any) -> None:
        self.address = address
        self.node = address.id
        self.timeout = timeout
        self.reactor = reactor
        self.pool = NodePool(address, pool_size, reactor)
        self._shared: dict[tuple[str, float], _Shared] = {}
        #: When the node last answered a command (``reactor.seconds()``).
        self.answered_at = float("-inf")
        self._timers: dict[float, _Timers] = {}

    def timers(self, seconds: float) -> _Timers:
        """The deadlines of this client's sessions of ``seconds``."""
        timers = self._timers.get(seconds)
        if timers is None:
            timers = self._timers[seconds] = _Timers(self.reactor, seconds)
        return timers

    def close(self) -> Deferred[None]:
        """Close every connection; later calls fail with ``BackendUnavailable``."""
        return self.pool.close()

    # The call machinery ---------------------------------------------------------------

    def translate(self, error: BaseException) -> BaseException:
        """Redis-level errors as rpoold errors naming the node."""
        if isinstance(error, txredisapi.ConnectionError):
            return BackendUnavailable(f"node '{self.node}': connection lost ({error})")
        if isinstance(error, txredisapi.ResponseError):
            if str(error).startswith(AUTH_ERRORS):
                return BackendUnavailable(f"node '{self.node}' refused access: {error}")
            return BackendError(f"node '{self.node}': Redis error: {error}")
        return error

    def _session(self, what: str, timeout: float | None, start: Callable[[_Session], None],
                 command: str | None = None) -> Deferred[Any]:
        """
        :param what: the call, for error messages.
        :param command: its ``command`` label in the metrics (default:
            ``what``); never an id.
        """
        seconds = self.timeout if timeout is None else timeout
        session = _Session(self, what, seconds, start)
        return telemetry.track(command or what, session.result)

    def run_session(self, command: str, timeout: float, *, begin: bool) -> _Session:
        """
        The session of one run of ``command`` without arguments (for
        shared runs): its deadline starts now, its run when it begins.
        """
        wait = self._server_timeout(timeout)

        def start(session: _Session) -> None:
            self._run(session, command, {}, wait, session.succeed)

        session = _Session(self, command, timeout, start, begin=begin)
        telemetry.track(command, session.result)
        return session

    def _server_timeout(self, timeout: float | None) -> int:
        """The ``BRPOPLPUSH`` timeout: after our own deadline, a safety net only."""
        return int(self.timeout if timeout is None else timeout) + 2

    def _parse(self, text: Any, what: str) -> Result:
        if text is None:
            raise BackendTimeout(f"node '{self.node}' did not answer '{what}' in time")
        return Result.parse(text, self.node)

    def _run(self, session: _Session, command: str, arguments: dict[str, Any], wait: int,
             then: Callable[[Result], None]) -> None:
        """Queue a command and wait for its result (one round trip), then ``then(result)``."""
        job = new_job_id()
        push, pop = _push_and_pop(job, command, arguments, wait)
        assert session.conn is not None
        if session.conn.reply_skip:
            # The RPUSH's reply is not sent: one reply, one wake-up per call.
            session.expect(_REPLY_SKIP + push + pop, lambda text: then(self._parse(text, command)))
            return
        key = result_key(job)
        pushed, answer = session.send(("RPUSH", QUEUE, payload(job, command, arguments)),
                                      ("BRPOPLPUSH", key, key, wait))
        pushed.addCallback(session.checked)
        answer.addCallback(session.then, lambda text: then(self._parse(text, command)))

    # Commands ------------------------------------------------------------------------

    def execute(self, command: str, arguments: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Deferred[Result]:
        """
        Run a command on the node and wait for its result.

        Concurrent callers of the same read-only command without arguments
        (``SHAREABLE``) share its runs: each joins the next run that starts
        after it came, so no answer predates its question.

        :returns: Deferred firing with the ``Result``, whatever its state.
        :raises BackendUnavailable: the node's Redis cannot be reached.
        :raises BackendTimeout: no result within ``timeout`` (default: the
            client's).
        """
        if not arguments and command in SHAREABLE:
            seconds = self.timeout if timeout is None else timeout
            shared = self._shared.get((command, seconds))
            if shared is None:
                shared = self._shared[(command, seconds)] = _Shared(self, command, seconds)
            return shared.join()
        return self.run_alone(command, arguments, timeout=timeout)

    def run_alone(self, command: str, arguments: dict[str, Any] | None = None, *,
                  timeout: float | None = None) -> Deferred[Result]:
        """``execute``, never sharing the command with other callers."""
        wait = self._server_timeout(timeout)

        def start(session: _Session) -> None:
            self._run(session, command, arguments or {}, wait, session.succeed)

        return self._session(command, timeout, start)

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
        return self.execute(command, arguments, timeout=timeout).addCallback(self._value, accept)

    def _value(self, result: Result, accept: frozenset[str]) -> Any:
        return check(result, self.node, accept).value()

    def execute_together(self, commands: list[str], *, timeout: float) -> Deferred[list[Result]]:
        """
        Run several commands without arguments on one connection, in one
        round trip (their ``RPUSH``es, then a ``BRPOPLPUSH`` per result,
        written together): what ``GET /nodes`` asks a node it does not know
        yet (a ping and its facts) costs one connection, not one each.

        :returns: Deferred firing with each command's ``Result``, in order,
            whatever their states.
        :raises BackendUnavailable, BackendTimeout: as ``execute``, for all.
        """
        wait = self._server_timeout(timeout)

        def start(session: _Session) -> None:
            jobs = [new_job_id() for _ in commands]
            pushes = [("RPUSH", QUEUE, payload(job, command, {})) for job, command in zip(jobs, commands,
                                                                                          strict=True)]
            pops = [("BRPOPLPUSH", result_key(job), result_key(job), wait) for job in jobs]
            replies = session.send(*pushes, *pops)
            for pushed in replies[:len(commands)]:
                pushed.addCallback(session.checked)
            results: list[Result] = []

            def answered(text: Any, command: str) -> None:
                results.append(self._parse(text, command))
                if len(results) == len(commands):
                    session.succeed(results)

            for answer, command in zip(replies[len(commands):], commands, strict=True):
                step: Callable[[Any], None] = functools.partial(answered, command=command)
                answer.addCallback(session.then, step)

        return self._session("+".join(commands), timeout, start, "together")

    def submit(self, command: str, arguments: dict[str, Any] | None = None, *,
               timeout: float | None = None) -> Deferred[str]:
        """
        Queue a command without waiting for it (``core.reboot`` never
        answers).

        :returns: Deferred firing with the job id once it is queued.
        """
        job = new_job_id()

        def start(session: _Session) -> None:
            (push,) = session.send(("RPUSH", QUEUE, payload(job, command, arguments or {})))
            push.addCallback(session.then, lambda _: session.succeed(job))

        return self._session(command, timeout, start)

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
        def start(session: _Session) -> None:
            flag, result = session.send(("RPOPLPUSH", flag_key(job_id), flag_key(job_id)),
                                        ("RPOPLPUSH", result_key(job_id), result_key(job_id)))
            flagged: list[bool] = []
            flag.addCallback(session.then, lambda reply: flagged.append(reply is not None))

            def found(text: Any) -> None:
                session.succeed((bool(flagged and flagged[0]),
                                 Result.parse(text, self.node) if text is not None else None))

            result.addCallback(session.then, found)

        return self._session(f"read job '{job_id}'", timeout, start, "job.peek")

    def read_stream(self, job_id: str, start: int, *,
                    timeout: float | None = None) -> Deferred[list[dict[str, Any]]]:
        """
        What the agent streamed of a job's output from entry ``start`` on
        (``LRANGE stream:<id>``: read, not taken).

        :returns: Deferred firing with the decoded entries.
        """
        def start_reading(session: _Session) -> None:
            (entries,) = session.send(("LRANGE", stream_key(job_id), start, -1))

            def decoded(items: Any) -> None:
                found = []
                for item in items or []:
                    try:
                        entry = json.loads(item)
                    except (TypeError, ValueError):
                        continue
                    if isinstance(entry, dict):
                        found.append(entry)
                session.succeed(found)

            entries.addCallback(session.then, decoded)

        return self._session(f"read the output of job '{job_id}'", timeout, start_reading, "job.stream")

    # Inside containers -------------------------------------------------------------

    def dispatch(self, container: int, command: str, arguments: dict[str, Any] | None = None, *,
                 wait: bool = True, timeout: float | None = None, stream: bool = False) -> Deferred[Any]:
        """
        Run a command inside a container (``corex.dispatch``): two round
        trips on one connection, the dispatch and the inner job's result.

        :param wait: wait for the inner job's result; when false, answer
            with the inner job's id as soon as it is dispatched.
        :returns: Deferred firing with the inner ``Result``, or its id.
        :raises CommandFailed: the dispatch itself failed (for example
            ``container does not exist``).
        :raises BackendUnavailable, BackendTimeout: as ``execute``.
        """
        server_wait = self._server_timeout(timeout)
        arguments = {"container": container, "command": inner_command(command, arguments or {}, stream)}

        def start(session: _Session) -> None:
            self._run(session, "corex.dispatch", arguments, server_wait,
                      lambda outer: dispatched(session, outer))

        def dispatched(session: _Session, outer: Result) -> None:
            job = check(outer, self.node).value()
            if not isinstance(job, str) or not job:
                raise BackendError(f"node '{self.node}': corex.dispatch answered {job!r}, not a job id")
            if not wait:
                session.succeed(job)
                return
            session.what = command
            key = result_key(job)
            session.expect(resp("BRPOPLPUSH", key, key, server_wait),
                           lambda text: session.succeed(self._parse(text, command)))

        return self._session(f"{command} (container {container})", timeout, start,
                             f"corex.dispatch/{command}")
