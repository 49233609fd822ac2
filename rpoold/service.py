"""
The daemon's service tree, and how it stops.

``DaemonService`` holds the backends that are services and the listening
web service.  It stops in order:

1. stop listening (new connections are refused);
2. let the requests already received finish, up to ``grace_period``
   seconds; answers given meanwhile close their connection;
3. stop the backends (closing their connections), all at once, each
   within ``BACKEND_STOP`` seconds;
4. log how many requests were received, answered and aborted.

SIGTERM stops the reactor through this path and the process exits 0
(twistd alone would re-raise the signal and exit with -15): a requested
stop is a clean exit, for systemd and for scripts.

The web service (``ListeningService``) listens as soon as the service tree
is made, before twistd starts its log: a port that cannot be opened stops
``twistd rpoold`` with one line, where twistd would log a traceback.

Once the reactor runs, what start-up made (modules, the contract, the
mock's model, ...) is frozen out of the garbage collector's sight
(``gc.freeze``): a full collection then walks only what was made since,
instead of pausing every request in flight for tens of milliseconds.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from rpoold.errors import TIMEOUTS
from rpoold.records import IRecords, MemoryRecords
from rpoold.site import ApiSite

log = Logger()

#: Seconds between two looks at the connections still closing.
CLOSE_POLL = 0.01
#: Seconds a backend may take to stop (close its connections).
BACKEND_STOP = 5.0


def _freeze_start_up_objects() -> None:
    gc.collect()
    gc.freeze()


class ListeningService(StreamServerEndpointService):
    """
    Serves ``factory`` on ``endpoint``, as ``strports.service`` does (a
    failure to listen at once is raised, not logged), and may be told to
    listen before twistd starts it (:meth:`listen`): it listens once.
    """

    _raiseSynchronously = True

    def listen(self) -> None:
        """
        Listen now.

        :raises twisted.internet.error.CannotListenError: the endpoint
            cannot listen (a port in use, an address not of this machine).
        """
        self.privilegedStartService()

    def privilegedStartService(self) -> None:
        """Listen, unless :meth:`listen` did already."""
        if self._waitingForPort is None:
            super().privilegedStartService()


class DaemonService(MultiService):
    """
    :param web: the service listening for HTTP (a ``ListeningService``).
    :param site: the site it serves (its tracker says what is in flight).
    :param backends: backend services, in configuration order.
    :param grace_period: seconds to wait for in-flight requests.
    :param log_observer: if given, twistd logs through it (set as the
        application's ``ILogObserver``, see ``twistd`` documentation).
    :param store: the record store, opened when the service starts (calls
        made meanwhile wait for it) and closed once the backends stopped.
    :param parts: the daemon's own services on the store (events,
        operations), started after the store opens and stopped before the
        backends.
    :param stopping: called first when the daemon stops (the event
        streams end, so that the requests to drain are the others).
    """

    def __init__(
        self,
        web: Service,
        site: ApiSite,
        backends: list[Any],
        grace_period: float,
        clock: Any = None,
        log_observer: Any = None,
        store: IRecords | None = None,
        parts: list[Service] | None = None,
        stopping: list[Callable[[], None]] | None = None,
    ) -> None:
        super().__init__()
        self.parts = list(parts or [])
        self.stopping = list(stopping or [])
        self.store: IRecords = store if store is not None else MemoryRecords()
        from twisted.internet import reactor

        self.clock: Any = clock if clock is not None else reactor
        self.web = web
        self.site = site
        self.backends = backends
        self.grace_period = grace_period
        self.log_observer = log_observer
        self._previous_sigterm: Any = None
        self._stop_asked = False
        for backend in backends:
            IService(backend).setServiceParent(self)
        web.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.log_observer)
        super().setServiceParent(parent)

    def startService(self) -> None:
        self.store.open().addErrback(
            lambda failure: log.error("the record store did not open: {why}",
                                      why=failure.getErrorMessage()))
        super().startService()
        for part in self.parts:
            part.startService()
        self.clock.callWhenRunning(self._install_sigterm)
        self.clock.callWhenRunning(_freeze_start_up_objects)

    def _install_sigterm(self) -> None:
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._sigterm)
        except ValueError:  # not the main thread (embedded use): leave it
            self._previous_sigterm = None

    def _sigterm(self, number: int, frame: Any) -> None:
        # Runs between bytecodes of the reactor thread; hand over to it.
        self.clock.callFromThread(self.stop_requested)

    def stop_requested(self, why: str = "SIGTERM") -> None:
        """Stop the daemon as SIGTERM does (a second request changes nothing)."""
        if self._stop_asked:
            return
        self._stop_asked = True
        log.info("{why}: stopping (grace period {grace:g} s)", why=why, grace=self.grace_period)
        if self.clock.running:
            self.clock.stop()

    def stopService(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._stop())

    async def _stop_backends(self) -> None:
        """
        Stop the backends that are services (they close their connections
        to nodes and to AYS), all at once, each within ``BACKEND_STOP``
        seconds.
        """
        services = [IService(b) for b in reversed(self.backends)]
        stops = []
        for service in services:
            d: Deferred[Any] = maybeDeferred(service.stopService)
            d.addTimeout(BACKEND_STOP, self.clock)
            stops.append(d)
        results = await DeferredList(stops, consumeErrors=True)
        for service, (ok, result) in zip(services, results, strict=True):
            if ok or not isinstance(result, Failure):
                continue
            if result.check(*TIMEOUTS):
                log.warn("backend {backend} did not close its connections within {seconds:g} s",
                         backend=repr(service), seconds=BACKEND_STOP)
            else:
                log.failure("backend {backend} did not stop cleanly", result, backend=repr(service))

    async def _stop(self) -> None:
        Service.stopService(self)
        for stop in self.stopping:
            stop()
        tracker = self.site.tracker
        tracker.draining = True
        deadline = self.clock.seconds() + self.grace_period
        await maybeDeferred(self.web.stopService)
        waiting = len(tracker.active)
        if waiting:
            log.info("waiting for {count} request(s) in flight", count=waiting)
        while True:
            drained = tracker.drain()
            drained.addTimeout(max(0.0, deadline - self.clock.seconds()), self.clock)
            try:
                await drained
            except TIMEOUTS:
                log.warn(
                    "grace period over: dropping {count} request(s) still in flight",
                    count=len(tracker.active),
                )
                for request in list(tracker.active):
                    request.loseConnection()
                break
            tracker.close_idle_connections()
            if not tracker.active:
                break
        # Answers are written, not yet sent: let their connections close
        # (each answer given while draining closes its own) before the
        # reactor drops them.
        tracker.close_idle_connections()
        while tracker.open_connections() and self.clock.seconds() < deadline:
            await deferLater(self.clock, CLOSE_POLL, lambda: None)
        for part in reversed(self.parts):
            try:
                await maybeDeferred(part.stopService)
            except Exception:
                log.failure("{part} did not stop cleanly", part=type(part).__name__)
        await self._stop_backends()
        try:
            await self.store.close()
        except Exception:
            log.failure("the record store did not close cleanly")
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        log.info(
            "stopped: {received} request(s) received, {answered} answered, {aborted} aborted",
            received=tracker.received,
            answered=tracker.answered,
            aborted=tracker.aborted,
        )
