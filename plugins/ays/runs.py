"""
Writing to AYS: blueprint -> execute -> run -> archive, and waiting for runs.

Every write of the resource pool is the same sequence: create a blueprint
under a name no other write can take, execute it (AYS creates the services
and schedules the actions), create a run (AYS collects every scheduled
action of the repository and starts it), archive the blueprint.  A run takes
*every* scheduled action of the repository, so two writes interleaving their
sequences could end up sharing one run while the second run is empty and
reports success early.  ``Writer`` therefore holds one lock per repository
around the sequence (and around whatever checks must see a consistent
repository, such as "does this name exist yet"); waiting for the run
happens outside the lock.

A run is judged by the jobs of the operation's own action: a run that failed
elsewhere (another service's retried action) does not fail this operation,
and a failure of a prerequisite (the operation's action never ran) does.
A run still going when the operation's wait ends is left alone and followed
in the background until it ends, so that what it was meant to do is either
completed (a delete forgets the service) or undone (a failed create is
forgotten) and rpoold's view does not stay half-applied.

Under one of the daemon's operations (``rpoold.operations.progress``) a
write is ``pending`` until it holds the repository's lock (and may be
cancelled until then: nothing was posted to AYS), then ``running``; its
run's steps and job states are the operation's steps; the caller is
answered 202 once ``run_timeout`` has passed, and the write goes on
waiting for its run up to ``follow_timeout``, the run's key and how to
settle it written down so that a restarted daemon follows it again
(``Writer.resume``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredLock, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from plugins.ays import blueprints
from plugins.ays.blueprints import Action
from plugins.ays.client import BACKEND, AysClient, BlueprintExists
from plugins.ays.telemetry import AysRunStates
from rpoold.errors import BackendError, BackendTimeout, BackendUnavailable, NotFound, RpoolError
from rpoold.operations import progress

log = Logger()

TERMINAL = ("ok", "error")

#: What to do once a run has ended (``None``: nothing).
Finisher = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Timing:
    """
    :ivar run_timeout: seconds an operation waits for its run (then 504).
    :ivar poll_interval: first pause between two looks at a run or service.
    :ivar poll_max_interval: longest pause (the pause doubles up to it).
    :ivar follow_timeout: seconds a run that outlived its operation is still
        followed in the background.
    """

    run_timeout: float = 20.0
    poll_interval: float = 0.05
    poll_max_interval: float = 1.0
    follow_timeout: float = 600.0


@dataclass
class Write:
    """
    One write: its blueprint and how its outcome is judged and settled.

    :ivar label: first part of the blueprint name (e.g. ``container``).
    :ivar name: the resource name (second part).
    :ivar verb: what is done (third part, e.g. ``install``).
    :ivar content: the blueprint mapping.
    :ivar ours: the actions this operation is about; the run is judged by
        their jobs.
    :ivar on_success: run after the run ended ``ok`` for ``ours``, also
        when that happens after the operation answered 504.
    :ivar on_failure: run after the run failed ``ours``, likewise.
    :ivar on_success_spec: ``on_success`` written down (``{"forget": [role,
        name]}``, ``{"undeploy": label}``), for a daemon that restarts.
    :ivar on_failure_spec: ``on_failure`` likewise.
    """

    label: str
    name: str
    verb: str
    content: dict[str, Any]
    ours: tuple[Action, ...] = ()
    on_success: Finisher | None = None
    on_failure: Finisher | None = None
    on_success_spec: dict[str, Any] | None = None
    on_failure_spec: dict[str, Any] | None = None
    #: Set once the blueprint was handed to AYS for execution.
    executed: bool = False

    def describe(self) -> str:
        return ", ".join(str(a) for a in self.ours) or f"{self.label} {self.name} {self.verb}"


def blueprint_name(label: str, name: str, verb: str, now: float) -> str:
    """``<label>_<name>_<verb>_<unix seconds>_<random>``: never the name of another write."""
    return f"{label}_{name}_{verb}_{int(now)}_{os.urandom(4).hex()}"


def _job_actor(job: dict[str, Any]) -> str:
    return str(job.get("actor_name") or job.get("actor") or "")


def _matches(job: dict[str, Any], action: Action) -> bool:
    actor = _job_actor(job)
    return (
        str(job.get("service_name", "")) == action.service
        and str(job.get("action_name", "")) == action.action
        and (not actor or actor == action.actor)
    )


def jobs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [job for step in run.get("steps") or [] for job in step.get("jobs") or []
            if isinstance(job, dict)]


def run_failed_us(run: dict[str, Any], ours: tuple[Action, ...]) -> bool:
    """
    Whether an ended run failed the operation.

    With ``ours`` empty the run's own state decides.  Otherwise the run
    failed us when one of our jobs did not end ``ok`` (it failed, or never
    ran because an earlier step failed); a run without any job of ours had
    nothing to do for us.
    """
    if run.get("state") == "ok":
        return False
    if not ours:
        return True
    return any(
        job.get("state") != "ok" for job in jobs(run) for action in ours if _matches(job, action)
    )


def failed_job_logs(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The failed jobs of a run, each ``{"job": "actor!service action", "logs": [...]}`` (no traces)."""
    found = []
    for job in jobs(run):
        if job.get("state") != "error":
            continue
        name = f"{_job_actor(job) or '?'}!{job.get('service_name', '?')} {job.get('action_name', '?')}"
        lines = [str(entry.get("log", "")).rstrip() for entry in job.get("logs") or []
                 if isinstance(entry, dict) and entry.get("category") != "trace"]
        found.append({"job": name, "logs": [line for line in lines if line]})
    return found


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A run's state, its steps and their jobs' states (an operation's step)."""
    return {"run": run.get("key"), "state": run.get("state"), "steps": [
        {"number": step.get("number"), "state": step.get("state"),
         "jobs": [{"job": f"{_job_actor(j) or '?'}!{j.get('service_name', '?')} {j.get('action_name', '?')}",
                   "state": j.get("state")} for j in step.get("jobs") or [] if isinstance(j, dict)]}
        for step in run.get("steps") or [] if isinstance(step, dict)]}


def run_error_message(run: dict[str, Any], what: str) -> str:
    """
    The error of a failed run: every failed job with its logs.  AYS's own
    tracebacks (log category ``trace``) are left out: they describe the
    orchestrator's code, not the operation, and go to rpoold's log instead.
    """
    lines = [f"AYS run {run.get('key', '?')} failed ({what})"]
    failed = [job for job in jobs(run) if job.get("state") == "error"]
    for job in failed:
        name = f"{_job_actor(job) or '?'}!{job.get('service_name', '?')} {job.get('action_name', '?')}"
        lines.append(f"{name}:")
        logs = [entry for entry in job.get("logs") or [] if isinstance(entry, dict)]
        shown = 0
        for entry in logs:
            text = str(entry.get("log", "")).rstrip()
            if not text:
                continue
            if entry.get("category") == "trace":
                log.info("AYS traceback of {job} in run {key}:\n{trace}", job=name,
                         key=run.get("key"), trace=text)
                continue
            lines.append("  " + text.replace("\n", "\n  "))
            shown += 1
        if not shown:
            lines.append("  (no log; an AYS traceback, if any, is in the rpoold log)")
    if not failed:
        lines.append("no job reported an error; the run stopped before this operation's action ran")
    return "\n".join(lines)


class Writer:
    """
    Posts blueprints for one AYS repository and follows the runs.

    :param client: the AYS client of that repository.
    :param clock: the reactor (``IReactorTime``).
    :param timing: the timeouts and poll pacing.
    """

    def __init__(self, client: AysClient, clock: Any, timing: Timing) -> None:
        self.client = client
        self.clock = clock
        self.timing = timing
        self.lock = DeferredLock()
        #: Runs followed after their operation answered, by run key.
        self.following: dict[str, Deferred[None]] = {}
        #: Runs waited for or followed, by state (the metrics).
        self.runs = AysRunStates(BACKEND)

    def seen(self, run: dict[str, Any]) -> None:
        """Count a run in the state AYS reported (``rpoold_ays_runs``)."""
        key, state = run.get("key"), run.get("state")
        if isinstance(key, str):
            # Any state but the final ones means the run goes on.
            self.runs.update(key, state if state in (*TERMINAL, "new") else "running")

    def now(self) -> float:
        return float(self.clock.seconds())

    def sleep(self, seconds: float) -> Deferred[None]:
        return deferLater(self.clock, seconds, lambda: None)

    @asynccontextmanager
    async def sequence(self) -> Any:
        """
        Hold the repository's write lock (checks + blueprint + run).  An
        operation waiting for it is ``pending``; holding it, ``running``.
        """
        await self.lock.acquire()
        progress().started()
        try:
            yield
        finally:
            self.lock.release()

    async def post(self, write: Write) -> dict[str, Any] | None:
        """
        Create, execute and archive the blueprint, and start a run when it
        schedules actions.  Call it inside ``sequence()``.

        :returns: the run, or ``None`` for a blueprint without actions
            (data changes AYS handles outside runs).
        :raises RpoolError: a step failed; the blueprint is archived.
        """
        content = blueprints.dump(write.content)
        name = blueprint_name(write.label, write.name, write.verb, self.now())
        try:
            await self.client.create_blueprint(name, content)
        except BlueprintExists:
            name = blueprint_name(write.label, write.name, write.verb, self.now())
            await self.client.create_blueprint(name, content)
        run: dict[str, Any] | None = None
        try:
            write.executed = True
            await self.client.execute_blueprint(name)
            if "actions" in write.content:
                run = await self.client.create_run()
        except BaseException:
            await self._archive(name)
            raise
        await self._archive(name)
        return run

    async def post_alone(self, write: Write) -> dict[str, Any] | None:
        """``post`` under the write lock, without checks (writes judged by their data, or not waited for)."""
        async with self.sequence():
            return await self.post(write)

    async def _archive(self, name: str) -> None:
        try:
            await self.client.archive_blueprint(name)
        except RpoolError as e:
            log.warn("could not archive AYS blueprint {name}: {error}", name=name, error=e.message)

    async def apply(self, write: Write, precheck: Callable[[], Awaitable[Any]] | None = None) -> None:
        """
        The whole write: checks and sequence under the lock, then the wait.

        :param precheck: run under the lock before the blueprint is posted
            (e.g. the check that a name is free).
        :raises BackendError: the run failed us (message with the logs).
        :raises BackendTimeout: the run did not end in time; it goes on and
            is followed in the background.
        """
        try:
            async with self.sequence():
                if precheck is not None:
                    await precheck()
                run = await self.post(write)
        except BackendError:
            # AYS refused the blueprint or the run: what the execute call
            # stored (a service whose init failed, actions no run will take
            # now) is undone.  After a timeout or a lost connection the
            # outcome is unknown, and nothing is touched.
            if write.executed and write.on_failure is not None:
                await self._settle(write.on_failure, write, "undo after a failed write")
            raise
        if run is None:
            return
        await self.wait(run, write)

    def resume_spec(self, key: str, write: Write) -> dict[str, Any]:
        """What a daemon that restarts needs to follow ``write``'s run ``key`` (``resume``)."""
        return {"ays_run": key, "label": write.label, "name": write.name, "verb": write.verb,
                "ours": [[a.actor, a.service, a.action, a.force] for a in write.ours],
                "on_success": write.on_success_spec, "on_failure": write.on_failure_spec}

    async def resume(self, spec: dict[str, Any], finisher: Callable[[dict[str, Any]], Finisher]) -> None:
        """
        Follow again, after a restart, the run a ``resume_spec`` names, and
        settle it.

        :param finisher: what a finisher spec stands for.
        :raises BackendError: the run failed us.
        :raises BackendTimeout: it did not end within ``follow_timeout``.
        """
        write = Write(str(spec["label"]), str(spec["name"]), str(spec["verb"]), {},
                      ours=tuple(Action(a, s, n, bool(f)) for a, s, n, f in spec.get("ours") or []))
        for key in ("on_success", "on_failure"):
            if isinstance(spec.get(key), dict):
                setattr(write, key, finisher(spec[key]))
                setattr(write, f"{key}_spec", spec[key])
        await self._wait_for_operation({"key": str(spec["ays_run"]), "state": "running"}, write)

    async def _wait_for_operation(self, run: dict[str, Any], write: Write) -> None:
        """As ``wait``, for a write run as one of the daemon's operations: up to ``follow_timeout``."""
        reporter = progress()
        key = run["key"]
        reporter.resumable(self.resume_spec(key, write))
        reporter.cannot_cancel(f"AYS run {key} has started; AYS cannot stop a run")
        reporter.answer_by(self.timing.run_timeout)
        ended = await self._poll(run, self.now() + self.timing.follow_timeout, patient=True)
        if ended is None:
            raise BackendTimeout(f"AYS run {key} ({write.describe()}) did not finish within "
                                 f"{self.timing.follow_timeout:g} s")
        try:
            await self._conclude(ended, write)
        finally:
            self.runs.forget(key)

    async def wait(self, run: dict[str, Any], write: Write) -> None:
        """Poll the run to its end, within ``run_timeout``, and settle it."""
        key = run["key"]
        self.seen(run)
        if progress().active:
            await self._wait_for_operation(run, write)
            return
        deadline = self.now() + self.timing.run_timeout
        try:
            ended = await self._poll(run, deadline)
        except BaseException:
            self._follow(key, write)
            raise
        if ended is None:
            self._follow(key, write)
            raise BackendTimeout(
                f"AYS run {key} ({write.describe()}) did not finish within "
                f"{self.timing.run_timeout:g} s; it goes on in AYS and rpoold "
                f"settles its outcome when it ends"
            )
        await self._conclude(ended, write)

    async def _poll(
        self, run: dict[str, Any], deadline: float, patient: bool = False
    ) -> dict[str, Any] | None:
        """
        :param patient: keep trying when AYS cannot be reached (background
            following); otherwise that error ends the wait.
        :returns: the ended run, or ``None`` when the deadline passed.
        """
        pause = self.timing.poll_interval
        key = run["key"]
        reporter = progress()
        told: dict[str, Any] | None = None
        while run.get("state") not in TERMINAL:
            left = deadline - self.now()
            if left <= 0:
                return None
            await self.sleep(min(pause, left))
            pause = min(pause * 2, self.timing.poll_max_interval)
            left = deadline - self.now()
            if left <= 0:
                return None
            try:
                run = await self.client.get_run(key, timeout=left)
                self.seen(run)
            except (BackendTimeout, BackendUnavailable):
                if self.now() >= deadline:
                    return None
                if not patient:
                    raise
                continue
            summary = run_summary(run)
            if reporter.active and summary != told:
                told = summary
                steps = "; ".join(f"step {st['number']} {st['state']}" for st in summary["steps"])
                reporter.step(f"AYS run {key}: {run.get('state')}" + (f" ({steps})" if steps else ""),
                              summary)
        return run

    async def _conclude(self, run: dict[str, Any], write: Write) -> None:
        if run_failed_us(run, write.ours):
            progress().failed_jobs(failed_job_logs(run))
            message = run_error_message(run, write.describe())
            if write.on_failure is not None:
                await self._settle(write.on_failure, write, "undo after a failed run")
            raise BackendError(message)
        if run.get("state") != "ok":
            log.warn("AYS run {key} failed elsewhere; {what} succeeded:\n{message}",
                     key=run.get("key"), what=write.describe(),
                     message=run_error_message(run, "other services"))
        if write.on_success is not None:
            await write.on_success()

    async def _settle(self, finisher: Finisher, write: Write, why: str) -> None:
        try:
            await finisher()
        except RpoolError as e:
            log.warn("{why} of {what} failed: {error}", why=why, what=write.describe(),
                     error=e.message)

    # Following runs in the background --------------------------------------------------

    def _follow(self, key: str, write: Write) -> None:
        if key in self.following:
            return
        d = ensureDeferred(self._follow_run(key, write))
        self.following[key] = d

        def done(_: object) -> None:
            self.following.pop(key, None)
            # Ended (already counted as such), or no longer followed.
            self.runs.forget(key)

        d.addBoth(done)

    async def _follow_run(self, key: str, write: Write) -> None:
        deadline = self.now() + self.timing.follow_timeout
        try:
            run = await self._poll({"key": key, "state": "running"}, deadline, patient=True)
            if run is None:
                log.warn("stopped following AYS run {key} ({what}) after {seconds} s",
                         key=key, what=write.describe(), seconds=self.timing.follow_timeout)
                return
            await self._conclude(run, write)
            log.info("AYS run {key} ({what}) ended ok after its operation answered",
                     key=key, what=write.describe())
        except CancelledError:
            pass
        except RpoolError as e:
            log.warn("AYS run {key} ({what}) ended after its operation answered: {error}",
                     key=key, what=write.describe(), error=e.message)

    def watch(self, run: dict[str, Any] | None, write: Write) -> None:
        """Follow a run nobody waits for (fire-and-forget writes), for the log."""
        if run is not None:
            self.seen(run)
            self._follow(run["key"], write)

    def stop(self) -> None:
        """Stop following runs (the daemon stops)."""
        for d in list(self.following.values()):
            d.cancel()

    async def wait_for_data(
        self,
        role: str,
        name: str,
        applied: Callable[[dict[str, Any]], bool],
        what: str,
    ) -> None:
        """
        Poll a service until its data shows a change AYS applies outside any
        run (``processChange``), within ``run_timeout``.

        :raises NotFound: the service disappeared.
        :raises BackendTimeout: the change did not show in time.
        """
        await self.wait_for_service(role, name, lambda s: applied(s.get("data") or {}), what)

    def _waited(self) -> float:
        """How long a change AYS applies outside runs is waited for: ``run_timeout``, or, under
        an operation (whose caller has its 202 by then), ``follow_timeout``."""
        reporter = progress()
        if not reporter.active:
            return self.timing.run_timeout
        reporter.cannot_cancel("AYS applies the change outside its runs; it cannot be stopped")
        reporter.answer_by(self.timing.run_timeout)
        return self.timing.follow_timeout

    async def wait_for_service(
        self,
        role: str,
        name: str,
        done: Callable[[dict[str, Any]], bool],
        what: str,
    ) -> None:
        """As ``wait_for_data``, with ``done`` judging the whole Service object."""
        waited = self._waited()
        deadline = self.now() + waited
        pause = self.timing.poll_interval
        while True:
            left = deadline - self.now()
            if left <= 0:
                break
            try:
                service = await self.client.get_service(role, name, timeout=left)
            except BackendTimeout:
                if self.now() >= deadline:
                    break
                raise
            if service is None:
                raise NotFound(f"{role} '{name}' disappeared from AYS before {what} showed")
            if done(service):
                return
            left = deadline - self.now()
            if left <= 0:
                break
            await self.sleep(min(pause, left))
            pause = min(pause * 2, self.timing.poll_max_interval)
        raise BackendTimeout(
            f"AYS did not apply {what} within {waited:g} s (AYS makes "
            f"this change outside its runs and reports no error for it; see the AYS log)"
        )
