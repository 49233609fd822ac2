"""
Whether AYS is ready for the backend: the start-up attempts (AYS answers,
the repository exists or is created), retried with a doubling pause for
as long as AYS does not answer; the guard every operation runs under (503
until ready; a lost repository sends the backend back to its start-up
attempts); and the health report.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from plugins.ays.client import AysClient, RepositoryMissing
from plugins.ays.telemetry import AysRunStates
from rpoold.errors import RpoolError, ServiceUnavailable
from rpoold.operations import progress

log = Logger()

#: What a guarded coroutine answers.
T = TypeVar("T")
#: An operation's parameters after ``self``.
P = ParamSpec("P")


class Guard(Protocol):
    """Runs a coroutine using the AYS client if AYS is ready (``Readiness.guarded``)."""

    def __call__(self, work: Coroutine[Any, Any, T], /) -> Coroutine[Any, Any, T]:
        """:returns: a coroutine answering what ``work`` answers."""
        ...


class Guarded(Protocol):
    """What ``operation`` methods belong to: an object with the readiness guard."""

    guarded: Guard


#: The object an operation is a method of.
G = TypeVar("G", bound=Guarded)


def operation(
    f: Callable[Concatenate[G, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[G, P], Deferred[T]]:
    """
    An AYS operation (a method of an object with ``guarded``): refused
    with 503 until AYS is ready, and a lost repository sends the backend
    back to its start-up attempts.

    A decorated ``async def f(self, ...) -> T`` is a method taking the
    same parameters and returning a ``Deferred[T]`` (the interfaces'
    awaitable); ``inspect.signature`` of it is ``f``'s.
    """

    @functools.wraps(f)
    def wrapper(self: G, /, *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        # A write run as an operation is pending until it holds the
        # repository's lock (``Writer.sequence``): it may be cancelled until then.
        progress().queued()
        return ensureDeferred(self.guarded(f(self, *args, **kwargs)))

    return wrapper


class Readiness:
    """
    :param client: the AYS client (its repository is the one checked).
    :param clock: the reactor.
    :param runs: the runs the backend waits for (counted in the health
        report).
    :param retry_interval: first pause between two start-up attempts.
    :param retry_max_interval: longest pause between them.
    :param health_timeout: seconds the health check gives each AYS request.
    """

    def __init__(self, client: AysClient, clock: Any, runs: AysRunStates,
                 retry_interval: float = 0.2, retry_max_interval: float = 10.0,
                 health_timeout: float = 2.0) -> None:
        self.client = client
        self.clock = clock
        self.runs = runs
        self.retry_interval = retry_interval
        self.retry_max_interval = retry_max_interval
        self.health_timeout = health_timeout
        self.ready = False
        self.problem = "not started yet"
        self.running = False
        self._connecting: Deferred[None] | None = None

    # Start-up -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the start-up attempts (the backend service starts)."""
        self.running = True
        self._connect_soon()

    def stop(self) -> None:
        """Stop the start-up attempts (the backend service stops)."""
        self.running = False
        if self._connecting is not None:
            self._connecting.cancel()

    def _connect_soon(self) -> None:
        if self._connecting is not None or not self.running:
            return
        self._connecting = ensureDeferred(self._connect())

        def done(result: Any) -> None:
            self._connecting = None
            if isinstance(getattr(result, "value", None), CancelledError):
                return None
            return result

        self._connecting.addBoth(done)

    async def _connect(self) -> None:
        pause = self.retry_interval
        told = ""
        while True:
            try:
                await self.client.ping()
                created = await self.client.ensure_repository()
            except RpoolError as e:
                self.problem = e.message
                if e.message != told:
                    log.warn("AYS not ready, retrying: {problem}", problem=e.message)
                    told = e.message
                await deferLater(self.clock, pause, lambda: None)
                pause = min(pause * 2, self.retry_max_interval)
                continue
            self.ready = True
            self.problem = ""
            log.info("AYS at {url} ready; repository {repo} {how}",
                     url=self.client.url, repo=self.client.repository,
                     how="created" if created else "found")
            return

    async def ready_now(self) -> None:
        """Wait until AYS is ready (its start-up attempts succeed)."""
        while not self.ready:
            await deferLater(self.clock, self.retry_interval, lambda: None)

    # The guard ----------------------------------------------------------------------

    async def guarded(self, work: Coroutine[Any, Any, T]) -> T:
        """
        Run ``work`` (a coroutine using the client) if AYS is ready.

        :returns: what ``work`` returns.
        :raises ServiceUnavailable: AYS is not ready yet (``work`` is not
            run), or it lost the repository (the start-up attempts then
            run again).
        """
        if not self.ready:
            work.close()
            raise ServiceUnavailable(
                f"AYS at {self.client.url} is not ready yet ({self.problem}); "
                "rpoold keeps trying"
            )
        try:
            return await work
        except RepositoryMissing:
            self.ready = False
            self.problem = f"repository '{self.client.repository}' is missing"
            self._connect_soon()
            raise

    # Health -------------------------------------------------------------------------

    def check_health(self) -> Deferred[dict[str, Any]]:
        """
        Ask AYS now whether it answers and knows the repository.

        :returns: Deferred firing within ``health_timeout`` seconds (twice
            at most: two requests), never failing, with ``ok`` (AYS
            answers, the repository exists and the backend finished its
            start-up), ``ays`` (the URL), ``repository``, ``runs`` (runs
            waited for, by state) and, when not ok, ``problem``.
        """
        return ensureDeferred(self._health())

    async def _health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"ok": False, "ays": self.client.url,
                                  "repository": self.client.repository}
        report["runs"] = dict(sorted(Counter(self.runs.active().values()).items()))
        try:
            await self.client.ping(timeout=self.health_timeout)
            exists = await self.client.repository_exists(timeout=self.health_timeout)
        except RpoolError as e:
            return {**report, "problem": e.message}
        except Exception:
            log.failure("ays health check failed")
            return {**report, "problem": "the health check failed"}
        if not exists:
            return {**report, "problem": f"AYS does not know repository '{self.client.repository}'"}
        if not self.ready:
            return {**report, "problem": self.problem}
        return {**report, "ok": True}
