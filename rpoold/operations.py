"""
Operations: the writes of the API followed to their end.

A write (a POST, PUT or DELETE of the contract that needs more than the
``read`` role) runs as an *operation*: ``pending`` (accepted, its work not
begun: an AYS write waiting for its turn), ``running``, then
``succeeded``, ``failed`` or ``cancelled``.  Its work is the backend call;
some writes go on after it (a reboot until the node answers again, a VM
until it reaches its target state, a storage cluster until it is ready, a
process until its job ends), followed by ``rpoold.followers``.

An operation is kept in the record store (kind ``operation`` of the
daemon's own scope), so that every daemon sharing the store answers for
it, when it was accepted with ``Prefer: respond-async`` or when its work
outlived its synchronous answer (a 202 after the wait, or a VM still on
its way); a write that ends within its answer keeps nothing.  Only the
daemon that runs an operation (its ``owner``) writes it; another daemon
asked to cancel it writes a request the owner acts on.  A daemon that
restarts goes on with its own operations (an AYS run, a reboot, a VM's
state: what ``resume`` and ``target`` say), and one whose owner stopped
beating (``lease``) is adopted by another.

Backends learn of the operation they work for through ``progress()``, a
context variable set around their call: they report steps, say that the
work waits for its turn (``queued``) or has begun (``started``), what a
restarted daemon needs to follow it (``resumable``), how it can be
cancelled, and when a synchronous caller should be answered 202 instead of
waiting longer (``answer_by``).  Outside an operation ``progress()`` is a
no-op.
"""

from __future__ import annotations

import contextvars
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from rpoold import errors
from rpoold.contract import ALL_OPERATIONS_BY_NAME, Operation
from rpoold.events import Event, EventHub, now, timestamp
from rpoold.records import IRecords, Record

log = Logger()

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "pending", "running", "succeeded", "failed", "cancelled"
ENDED = frozenset({SUCCEEDED, FAILED, CANCELLED})
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)

#: Record kinds, in the daemon's scope of the store.
KIND = "operation"
DAEMON_KIND = "daemon"
#: The daemon's scope of the store (not a backend instance name: those are bare TOML keys).
SCOPE = "@daemon"

#: Most steps an operation keeps (the oldest go first; the first is kept).
MAX_STEPS = 200
#: Seconds a cancel asked through another daemon waits for that daemon's answer.
REMOTE_CANCEL_WAIT = 5.0
#: The fields of an operation the API shows; the others are the daemons' own.
SHOWN = ("id", "operation", "resource", "status", "created", "updated", "result", "error", "steps")


def new_id() -> str:
    return uuid.uuid4().hex


def default_owner(port: str) -> str:
    """This daemon's name among those sharing a store: the host and the listening port."""
    return f"{socket.gethostname()} {port}"


@dataclass(frozen=True)
class Answer:
    """What a write answers (or would have) synchronously."""

    status: int
    location: str | None = None
    body: Any = None

    def view(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"status": self.status}
        if self.location is not None:
            shown["location"] = self.location
        if self.body is not None:
            shown["body"] = self.body
        return shown

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> Answer:
        return cls(int(view.get("status", 200)), view.get("location"), view.get("body"))


@dataclass(frozen=True)
class Settings:
    """
    The ``[operations]`` section.

    :ivar retention: seconds an ended operation is kept.
    :ivar max_wait: most seconds ``?wait=`` waits.
    :ivar reboot_timeout: a reboot fails when the node has not answered
        again within this many seconds.
    :ivar transition_timeout: a VM's target state, a storage cluster's
        ``ready``, within this many seconds.
    :ivar lease: seconds after which a daemon that stopped beating loses
        its operations to another.
    :ivar owner: this daemon's name among those sharing the store.
    """

    retention: float = 86400.0
    max_wait: float = 60.0
    reboot_timeout: float = 600.0
    transition_timeout: float = 300.0
    lease: float = 30.0
    owner: str = ""


class IOperationResumer(Interface):
    """A backend that can follow, after a restart, the work it began for an operation."""

    def resume_operation(spec: dict[str, Any]) -> Deferred[Any]:
        """
        Go on with the work ``progress().resumable(spec)`` described, in
        the operation's progress context.

        :returns: Deferred firing with what the interrupted call would have
            answered (``None`` for the writes without a body).
        :raises RpoolError: the work failed.
        """


# What backends see ---------------------------------------------------------------------


class Progress:
    """The operation a backend call works for (``progress()``); no-op when there is none."""

    active = False

    def queued(self) -> None:
        """The work waits for its turn: the operation stays ``pending`` (cancellable) until ``started``."""

    def started(self) -> None:
        """The work has begun (``running``): cancelling it is no longer simply dropping it."""

    def step(self, message: str, data: Mapping[str, Any] | None = None) -> None:
        """Something learnt of the progress (an AYS run's job states, a state seen)."""

    def resumable(self, spec: Mapping[str, Any]) -> None:
        """
        What a restarted daemon needs to follow the work to its end (a JSON
        object handed to the backend's ``IOperationResumer.resume_operation``).
        """

    def cannot_cancel(self, reason: str) -> None:
        """From now on a cancel is refused (409) with ``reason``."""

    def on_cancel(self, cancel: Callable[[], Awaitable[Any]]) -> None:
        """From now on a cancel calls ``cancel`` (which stops the work)."""

    def failed_jobs(self, logs: list[dict[str, Any]]) -> None:
        """The failed jobs and their logs (``{"job", "logs"}``), for the error of a failure."""

    def answer_by(self, seconds: float) -> None:
        """A synchronous caller gets its 202 once ``seconds`` from now have passed, if the work goes on."""


NO_PROGRESS = Progress()
_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("rpoold_operation",
                                                                           default=None)


def progress() -> Progress:
    """The operation the current backend call works for (a no-op one outside operations)."""
    return _CURRENT.get() or NO_PROGRESS


def run_for(reporter: Progress, call: Callable[[], Any]) -> Deferred[Any]:
    """
    Call ``call`` with ``reporter`` as ``progress()`` (also in the
    coroutines and Deferreds it starts), and answer what it returns as a
    Deferred.
    """
    token = _CURRENT.set(reporter)
    try:
        result = call()
        if isinstance(result, Deferred):
            return result
        if hasattr(result, "__await__"):
            return ensureDeferred(result)
        return succeed(result)
    finally:
        _CURRENT.reset(token)


# One operation, in the daemon that runs it -------------------------------------------


class Tracked(Progress):
    """
    An operation this daemon runs: its record, kept here and written to
    the store once it is to be seen (``persist``), then after every change
    (one write at a time, the changes made meanwhile in the next).
    """

    active = True

    def __init__(self, manager: Operations, record: Record) -> None:
        self.manager = manager
        self.record = record
        self.persisted = False
        #: The record as last written (what ``replace`` compares with).
        self._written: Record | None = None
        self._saving = False
        self._dirty = False
        self._told_status: str | None = None
        self.work: Deferred[Any] | None = None
        self.is_queued = False
        self.cancelling = False
        self.cancel_reason: str | None = None
        self.canceller: Callable[[], Awaitable[Any]] | None = None
        self.job_logs: list[dict[str, Any]] = []
        #: The synchronous caller's wait: fires with an ``Answer``, a ``Failure`` or ``None`` (202).
        self._answer: Deferred[list[Any]] | None = None
        self._answer_timer: Any = None
        self._settled = False
        self._outcome: Any = None
        #: When a backend wants the caller answered at the latest (``answer_by``).
        self._answer_at: float | None = None
        self.ended: Deferred[None] = Deferred()

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def status(self) -> str:
        return str(self.record["status"])

    # Progress ------------------------------------------------------------------------

    def queued(self) -> None:
        if self.status == PENDING:
            self.is_queued = True

    def started(self) -> None:
        self.is_queued = False
        if self.status == PENDING:
            self.set_status(RUNNING)

    def step(self, message: str, data: Mapping[str, Any] | None = None) -> None:
        entry: dict[str, Any] = {"time": timestamp(now()), "message": message}
        if data:
            entry["data"] = dict(data)
        steps = self.record.setdefault("steps", [])
        steps.append(entry)
        if len(steps) > MAX_STEPS:
            del steps[1:len(steps) - MAX_STEPS + 1]
        self.changed()

    def resumable(self, spec: Mapping[str, Any]) -> None:
        self.record["resume"] = dict(spec)
        self.record["phase"] = "work"
        if not self.persisted:
            self.persist_soon()
        else:
            self.changed()

    def cannot_cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self.canceller = None

    def on_cancel(self, cancel: Callable[[], Awaitable[Any]]) -> None:
        self.canceller = cancel
        self.cancel_reason = None

    def failed_jobs(self, logs: list[dict[str, Any]]) -> None:
        self.job_logs = list(logs)

    def answer_by(self, seconds: float) -> None:
        at = self.manager.clock.seconds() + max(0.0, seconds)
        self._answer_at = at if self._answer_at is None else min(self._answer_at, at)
        if self._answer is None or self._answer.called:
            return
        if self._answer_timer is not None and self._answer_timer.active():
            left = self._answer_timer.getTime() - self.manager.clock.seconds()
            if left <= seconds:
                return
            self._answer_timer.cancel()
        self._answer_timer = self.manager.clock.callLater(max(0.0, seconds), self._release)

    # The synchronous caller --------------------------------------------------------

    def answer_within(self, seconds: float) -> Deferred[list[Any]]:
        """
        :returns: Deferred firing with ``[outcome]``: the ``Answer`` or the
            ``Failure`` of the work if it ends within ``seconds`` (or sooner
            than a backend's ``answer_by``), else ``None``.
        """
        if self._settled:
            return succeed([self._outcome])
        self._answer = Deferred()
        if self._answer_at is not None:
            seconds = min(seconds, self._answer_at - self.manager.clock.seconds())
        self._answer_timer = self.manager.clock.callLater(max(0.0, seconds), self._release)
        return self._answer

    def _release(self) -> None:
        self._settle(None)

    def _settle(self, outcome: Any) -> None:
        """The synchronous caller's answer: the first one given counts."""
        if self._settled:
            return
        self._settled = True
        self._outcome = outcome
        if self._answer_timer is not None and self._answer_timer.active():
            self._answer_timer.cancel()
        self._answer_timer = None
        if self._answer is not None and not self._answer.called:
            # Boxed: a Failure is an answer here, not an error of this Deferred.
            self._answer.callback([outcome])

    # Changes -------------------------------------------------------------------------

    def set_status(self, status: str, **fields: Any) -> None:
        self.record["status"] = status
        self.record.update(fields)
        self.changed()

    def changed(self) -> None:
        self.record["updated"] = timestamp(now())
        if self.persisted:
            self._save_soon()

    def persist_soon(self) -> None:
        ensureDeferred(self.persist()).addErrback(
            lambda failure: log.warn("operation {id}: not written: {why}", id=self.id,
                                     why=failure.getErrorMessage()))

    async def persist(self) -> None:
        """Write the operation now if it is not in the store yet (later changes follow)."""
        if self.persisted:
            return
        self.persisted = True
        await self._save()

    def _save_soon(self) -> None:
        if self._saving:
            self._dirty = True
            return
        ensureDeferred(self._save()).addErrback(
            lambda failure: log.warn("operation {id}: not written: {why}", id=self.id,
                                     why=failure.getErrorMessage()))

    async def _save(self) -> None:
        self._saving = True
        try:
            while True:
                self._dirty = False
                await self._write()
                if not self._dirty:
                    break
        finally:
            self._saving = False

    async def _write(self) -> None:
        records = self.manager.records
        record = dict(self.record)
        if self._written is None:
            if not await records.add(KIND, self.id, record):
                self._written = await records.get(KIND, self.id)
                await self._write()
                return
        elif not await records.replace(KIND, self.id, self._written, record):
            # Another daemon wrote it: a cancel request (nothing else is theirs to write).
            found = await records.get(KIND, self.id)
            if found is not None and found.get("cancel") == "requested":
                self.record.setdefault("cancel", "requested")
                record = dict(self.record)
            if not await records.replace(KIND, self.id, found, record):
                log.warn("operation {id}: changed elsewhere; not written", id=self.id)
                return
        self._written = record
        if record["status"] != self._told_status or record["status"] not in ENDED:
            self._told_status = record["status"]
            await self.manager.hub.emit("operation.updated", f"/operations/{self.id}",
                                        {"status": record["status"], "operation": record["operation"]})

    # Ending --------------------------------------------------------------------------

    def succeed(self, answer: Answer) -> None:
        self.set_status(SUCCEEDED, result=answer.view())
        self._end()

    def fail(self, error: errors.RpoolError | str, status: int = 500) -> None:
        message = error.message if isinstance(error, errors.RpoolError) else error
        code = error.status if isinstance(error, errors.RpoolError) else status
        shown: dict[str, Any] = {"message": message, "status": code, "logs": self.job_logs}
        self.set_status(FAILED, error=shown)
        self._end()

    def cancelled(self, why: str) -> None:
        self.set_status(CANCELLED, error={"message": why, "status": 409, "logs": []})
        self._end()

    def _end(self) -> None:
        self.canceller = None
        self.manager.live.pop(self.id, None)
        if not self.ended.called:
            self.ended.callback(None)


# The operations of the daemon -----------------------------------------------------------


Follower = Callable[[Tracked, dict[str, Any]], Awaitable[None]]


class Operations(Service):
    """
    The daemon's operations.

    :param records: the daemon's scope of the store (``SCOPE``).
    :param hub: the daemon's events.
    :param clock: an ``IReactorTime``.
    :param settings: the ``[operations]`` section.
    :param follow: what follows a write after its backend call (the
        target spec a write's ``rpoold.followers.target`` gave) to its end.
    :param resumers: backend instance name -> the backend, for resuming
        the work a backend described (``IOperationResumer``).
    """

    def __init__(self, records: IRecords, hub: EventHub, clock: Any, settings: Settings | None = None,
                 follow: Follower | None = None,
                 resumers: Mapping[str, object] | None = None) -> None:
        self.records = records
        self.hub = hub
        self.clock = clock
        self.settings = settings or Settings()
        self.owner = self.settings.owner or f"rpoold-{new_id()[:8]}"
        self.follow = follow
        self.resumers = dict(resumers or {})
        #: The operations this daemon runs, by id.
        self.live: dict[str, Tracked] = {}
        self._timers: list[Any] = []
        self._stop_listening: Callable[[], None] | None = None

    # Service -----------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stop_listening = self.hub.listen(self._heard)
        ensureDeferred(self.resume()).addErrback(
            lambda failure: log.failure("operations: resuming failed", failure))
        self._every(max(1.0, self.settings.lease / 3), self._beat)
        self._every(max(1.0, self.settings.lease), self._adopt)
        # Looked at every minute, or as often as the retention when it is shorter.
        self._every(min(60.0, max(0.5, self.settings.retention)), self._expire)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        # The work in flight stops with the backends; a restarted daemon resumes it.
        for tracked in list(self.live.values()):
            if tracked.work is not None and not tracked.work.called:
                tracked.work.cancel()
        return succeed(None)

    def _every(self, seconds: float, job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        def run() -> None:
            def again(_: Any) -> None:
                if self.running:
                    self._timers.append(self.clock.callLater(seconds, run))

            ensureDeferred(job()).addErrback(
                lambda failure: log.warn("operations: {job} failed: {why}", job=job.__name__,
                                         why=failure.getErrorMessage())).addBoth(again)

        self._timers.append(self.clock.callLater(seconds, run))

    async def _beat(self) -> None:
        await self.records.put(DAEMON_KIND, self.owner, {"seen": now()})

    # Running ------------------------------------------------------------------------

    def begin(self, op: Operation, resource: str, backend: str | None = None) -> Tracked:
        """A new operation for a write of ``op`` on ``resource`` (not written, not started)."""
        stamp = timestamp(now())
        record: Record = {"id": new_id(), "operation": op.name, "resource": resource,
                          "status": PENDING, "created": stamp, "updated": stamp, "steps": [],
                          "owner": self.owner, "backend": backend, "phase": "queued"}
        tracked = Tracked(self, record)
        self.live[tracked.id] = tracked
        return tracked

    def start(self, tracked: Tracked, call: Callable[[], Any], answer: Callable[[Any], Answer],
              target: Callable[[Any, Answer], dict[str, Any] | None],
              done: Callable[[Tracked, Any, Answer], Awaitable[None]] | None = None) -> None:
        """
        Run the work: ``call`` (the backend call), then ``answer`` of its
        result (what the synchronous call answers), ``done`` (the events of
        the change), then the follow of ``target``'s spec, if any.
        """
        tracked.work = run_for(tracked, call)
        tracked.record["phase"] = "work"
        if not tracked.is_queued:
            tracked.set_status(RUNNING)
        ensureDeferred(self._finish(tracked, tracked.work, answer, target, done)).addErrback(
            lambda failure: log.failure("operation {id} failed unexpectedly", failure, id=tracked.id))

    async def _finish(self, tracked: Tracked, work: Deferred[Any], answer: Callable[[Any], Answer],
                      target: Callable[[Any, Answer], dict[str, Any] | None],
                      done: Callable[[Tracked, Any, Answer], Awaitable[None]] | None) -> None:
        try:
            result = await work
        except CancelledError:
            if tracked.cancelling:
                tracked.cancelled("cancelled before its work began")
            else:
                tracked.fail("the daemon stopped while the work went on", 503)
            tracked._settle(Failure(errors.ServiceUnavailable("the operation was cancelled")))
            return
        except errors.RpoolError as e:
            tracked.fail(e)
            tracked._settle(Failure(e))
            return
        except Exception:
            log.failure("operation {id} ({operation}) failed", id=tracked.id,
                        operation=tracked.record["operation"])
            error = errors.RpoolError(f"internal error (operation {tracked.id})")
            tracked.fail(error)
            tracked._settle(Failure(error))
            return
        shaped = answer(result)
        if done is not None:
            await done(tracked, result, shaped)
        spec = target(result, shaped)
        await self.conclude(tracked, shaped, spec)

    async def conclude(self, tracked: Tracked, shaped: Answer, spec: dict[str, Any] | None) -> None:
        """The backend call answered ``shaped``: follow ``spec`` if any, then succeed."""
        if spec is None or self.follow is None:
            tracked._settle(shaped)
            tracked.succeed(shaped)
            return
        tracked.record.update(phase="follow", target=spec, answer=shaped.view())
        tracked.record.pop("resume", None)
        if not tracked.persisted:
            await tracked.persist()
        else:
            tracked.changed()
        tracked._settle(shaped)
        await self._follow(tracked, shaped, spec)

    async def _follow(self, tracked: Tracked, shaped: Answer, spec: dict[str, Any]) -> None:
        assert self.follow is not None
        try:
            await self.follow(tracked, spec)
        except CancelledError:
            if tracked.status not in ENDED:
                tracked.fail("the daemon stopped while following the operation", 503)
            return
        except errors.RpoolError as e:
            if tracked.cancelling:
                tracked.cancelled(e.message)
            else:
                tracked.fail(e)
            return
        except Exception:
            log.failure("operation {id}: following it failed", id=tracked.id)
            tracked.fail(f"internal error (operation {tracked.id})")
            return
        if tracked.status in ENDED:
            return
        if tracked.cancelling:
            tracked.cancelled("cancelled")
        else:
            tracked.succeed(shaped)

    # Reading ------------------------------------------------------------------------

    async def get(self, operation_id: str) -> Record:
        """:raises NotFound: no such operation (or no longer kept)."""
        tracked = self.live.get(operation_id)
        if tracked is not None and tracked.persisted:
            return dict(tracked.record)
        found = await self.records.get(KIND, operation_id)
        if found is None:
            raise errors.NotFound(f"operation '{operation_id}' does not exist (or is no longer kept)")
        return found

    async def list(self, statuses: frozenset[str] = frozenset(), resource: str = "",
                   operation: str = "", limit: int = 100) -> list[Record]:
        """:returns: the kept operations matching, newest first."""
        found = [record for _, record in await self.records.list(KIND)]
        for tracked in self.live.values():
            if tracked.persisted:
                found = [r for r in found if r.get("id") != tracked.id] + [dict(tracked.record)]
        chosen = [r for r in found
                  if (not statuses or r.get("status") in statuses)
                  and str(r.get("resource", "")).startswith(resource)
                  and (not operation or r.get("operation") == operation)]
        chosen.sort(key=lambda r: str(r.get("created", "")), reverse=True)
        return chosen[:limit]

    async def wait(self, operation_id: str, seconds: float) -> Record:
        """
        :returns: the operation once it has ended, or as it is when
            ``seconds`` have passed (at most ``max_wait``).
        """
        record = await self.get(operation_id)
        seconds = min(max(0.0, seconds), self.settings.max_wait)
        if record.get("status") in ENDED or seconds <= 0:
            return record
        changed: Deferred[None] = Deferred()

        def heard(event: Event) -> None:
            if (event.type == "operation.updated" and event.resource == f"/operations/{operation_id}"
                    and event.data.get("status") in ENDED and not changed.called):
                changed.callback(None)

        def over() -> None:
            if not changed.called:
                changed.callback(None)

        stop = self.hub.listen(heard)
        timer = self.clock.callLater(seconds, over)
        try:
            # Read again: it may have ended between the first read and listening.
            record = await self.get(operation_id)
            if record.get("status") not in ENDED:
                await changed
                record = await self.get(operation_id)
        finally:
            stop()
            if timer.active():
                timer.cancel()
        return record

    # Cancelling ---------------------------------------------------------------------

    async def cancel(self, operation_id: str) -> Record:
        """
        :returns: the operation, cancelled.
        :raises Conflict: it has ended, or its work cannot be stopped now
            (the message says why).
        :raises NotFound: no such operation.
        """
        tracked = self.live.get(operation_id)
        if tracked is None:
            return await self._cancel_elsewhere(operation_id)
        await self._cancel_here(tracked)
        return dict(tracked.record)

    async def _cancel_here(self, tracked: Tracked) -> None:
        if tracked.status in ENDED:
            raise errors.Conflict(f"operation '{tracked.id}' has {tracked.status} already")
        if tracked.status == PENDING and tracked.is_queued and tracked.work is not None:
            tracked.cancelling = True
            tracked.work.cancel()
        elif tracked.canceller is not None:
            tracked.cancelling = True
            canceller, tracked.canceller = tracked.canceller, None
            try:
                await canceller()
            except errors.RpoolError as e:
                tracked.cancelling = False
                tracked.canceller = canceller
                raise errors.Conflict(
                    f"operation '{tracked.id}' could not be cancelled: {e.message}") from None
        else:
            reason = tracked.cancel_reason or "its work has begun and cannot be stopped"
            raise errors.Conflict(f"operation '{tracked.id}' cannot be cancelled: {reason}")
        await tracked.ended
        await tracked.persist()

    async def _cancel_elsewhere(self, operation_id: str) -> Record:
        record = await self.get(operation_id)
        if record.get("status") in ENDED:
            raise errors.Conflict(f"operation '{operation_id}' has {record['status']} already")
        if record.get("owner") == self.owner:
            raise errors.Conflict(f"operation '{operation_id}' cannot be cancelled: this daemon "
                                  "follows it again after a restart, its work can no longer be stopped")
        asked = {**record, "cancel": "requested"}
        asked.pop("cancel_refused", None)
        if not await self.records.replace(KIND, operation_id, record, asked):
            return await self._cancel_elsewhere(operation_id)
        await self.hub.emit("operation.updated", f"/operations/{operation_id}",
                            {"status": record["status"], "operation": record["operation"],
                             "cancel": "requested"})
        deadline = self.clock.seconds() + REMOTE_CANCEL_WAIT
        while True:
            found = await self.get(operation_id)
            if found.get("status") == CANCELLED:
                return found
            if found.get("cancel_refused"):
                raise errors.Conflict(str(found["cancel_refused"]))
            if found.get("status") in ENDED:
                raise errors.Conflict(f"operation '{operation_id}' has {found['status']} already")
            left = deadline - self.clock.seconds()
            if left <= 0:
                raise errors.Conflict(
                    f"operation '{operation_id}' is run by daemon {record.get('owner')!r}, "
                    f"which did not answer the cancel within {REMOTE_CANCEL_WAIT:g} s")
            await self.wait(operation_id, min(left, 0.5))

    def _heard(self, event: Event) -> None:
        """A cancel asked through another daemon, of an operation run here."""
        if event.type != "operation.updated" or event.data.get("cancel") != "requested":
            return
        tracked = self.live.get(event.resource.rpartition("/")[2])
        if tracked is None:
            return

        async def act() -> None:
            assert tracked is not None
            try:
                await self._cancel_here(tracked)
            except errors.Conflict as e:
                tracked.record["cancel_refused"] = e.message
                tracked.changed()

        ensureDeferred(act()).addErrback(
            lambda failure: log.failure("operation {id}: a cancel failed", failure, id=tracked.id))

    # After a restart ------------------------------------------------------------------

    async def resume(self) -> None:
        """Go on with this daemon's operations left unended (it restarted), and adopt orphans."""
        await self._beat()
        await self._adopt(mine_only=True)
        await self._expire()

    async def _adopt(self, mine_only: bool = False) -> None:
        heartbeats = dict(await self.records.list(DAEMON_KIND))
        cutoff = now() - self.settings.lease
        for key, record in await self.records.list(KIND):
            if record.get("status") in ENDED or key in self.live:
                continue
            owner = record.get("owner")
            if owner != self.owner:
                if mine_only:
                    continue
                beat = heartbeats.get(str(owner))
                if beat is not None and float(beat.get("seen", 0)) >= cutoff:
                    continue
            adopted = {**record, "owner": self.owner}
            if not await self.records.replace(KIND, key, record, adopted):
                continue
            if owner != self.owner:
                log.info("operations: adopting {id} ({operation}) of daemon {owner}, which stopped",
                         id=key, operation=record.get("operation"), owner=owner)
            self._restart(adopted)

    def _restart(self, record: Record) -> None:
        tracked = Tracked(self, record)
        tracked.persisted = True
        tracked._written = dict(record)
        tracked._told_status = str(record.get("status"))
        self.live[tracked.id] = tracked
        ensureDeferred(self._go_on(tracked)).addErrback(
            lambda failure: log.failure("operation {id}: resuming failed", failure, id=tracked.id))

    async def _go_on(self, tracked: Tracked) -> None:
        record = tracked.record
        phase = record.get("phase")
        op = ALL_OPERATIONS_BY_NAME.get(str(record.get("operation")))
        shaped = Answer.from_view(record.get("answer") or {"status": op.success if op else 200})
        if phase == "follow" and isinstance(record.get("target"), dict) and self.follow is not None:
            tracked.step("followed again after a restart of the daemon")
            await self._follow(tracked, shaped, dict(record["target"]))
            return
        resumer = self.resumers.get(str(record.get("backend")))
        spec = record.get("resume")
        if phase == "work" and isinstance(spec, dict) and resumer is not None \
                and IOperationResumer.providedBy(resumer):
            tracked.step("followed again after a restart of the daemon")
            if tracked.status == PENDING:
                tracked.set_status(RUNNING)
            tracked.work = run_for(tracked, lambda: IOperationResumer(resumer).resume_operation(dict(spec)))
            target = record.get("target_after")

            def answer(_: Any) -> Answer:
                return shaped

            def follow_spec(_: Any, __: Answer) -> dict[str, Any] | None:
                return dict(target) if isinstance(target, dict) else None

            await self._finish(tracked, tracked.work, answer, follow_spec, None)
            return
        if tracked.status == PENDING:
            tracked.fail("the daemon that accepted it stopped before its work began; nothing was done",
                         503)
        else:
            tracked.fail("the daemon that ran it stopped while its work went on; its outcome is unknown",
                         503)

    async def _expire(self) -> None:
        cutoff = timestamp(now() - self.settings.retention)
        for key, record in await self.records.list(KIND):
            if record.get("status") in ENDED and str(record.get("updated", "")) < cutoff:
                await self.records.delete(KIND, key)
        stale = now() - max(self.settings.retention, self.settings.lease * 10)
        for key, record in await self.records.list(DAEMON_KIND):
            if float(record.get("seen", 0)) < stale:
                await self.records.delete(DAEMON_KIND, key)


def shown(record: Mapping[str, Any]) -> dict[str, Any]:
    """:returns: an operation as the API shows it (the daemons' own fields left out)."""
    return {key: record[key] for key in SHOWN if key in record and record[key] is not None}
