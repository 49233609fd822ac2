"""
``GET /health``: the daemon is alive, and how each configured backend
instance is doing.

Every backend instance that provides ``IHealthCheck`` is asked, all at
once, with a timeout; one that does not answer in time, or whose check
fails (it should not), is reported ``ok: false``.  A backend without
``IHealthCheck`` is reported ``ok: null`` (unknown).

The answer is ``200`` whenever the daemon answers at all: ``/health`` is a
liveness probe, and restarting the daemon does not make a node reachable.
``status`` says ``ok`` or ``degraded`` (some backend is not ``ok``).  For a
readiness probe, ``/health?ready=1`` answers ``503`` when degraded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from rpoold.errors import TIMEOUTS
from rpoold.interfaces import FAMILIES, IHealthCheck

log = Logger()


class HealthReport:
    """
    :param instances: backend instance name -> (plugin name, backend).
    :param routing: family name -> backend serving it.
    :param timeout: seconds each check may take.
    :param worker: ``"INDEX/COUNT"`` when this process is one of several
        workers: the report says which (``worker``: index, count, pid).
    """

    def __init__(
        self,
        instances: Mapping[str, tuple[str, object]],
        routing: Mapping[str, object],
        timeout: float,
        clock: Any,
        worker: str | None = None,
    ) -> None:
        self.instances = dict(instances)
        self.routing = dict(routing)
        self.timeout = timeout
        self.clock = clock
        self.started = time.time()
        self.worker: dict[str, int] | None = None
        if worker is not None:
            index, _, count = worker.partition("/")
            self.worker = {"index": int(index), "workers": int(count), "pid": os.getpid()}

    def _families_of(self, backend: object) -> list[str]:
        return [f.name for f in FAMILIES if self.routing.get(f.name) is backend]

    def _check(self, name: str, backend: object) -> Deferred[dict[str, Any]]:
        checker = IHealthCheck(backend, None)
        if checker is None:
            return succeed({"ok": None, "detail": "this backend has no health check"})
        d: Deferred[Any] = maybeDeferred(checker.check_health)
        d.addTimeout(self.timeout, self.clock)

        def shaped(result: Any) -> dict[str, Any]:
            if not isinstance(result, dict) or "ok" not in result:
                return {"ok": False, "detail": "the health check answered something unexpected"}
            return dict(result)

        def failed(failure: Failure) -> dict[str, Any]:
            if failure.check(*TIMEOUTS):
                return {"ok": False, "detail": f"no answer within {self.timeout:g} s"}
            log.failure("health check of backend {backend} failed", failure, backend=name)
            return {"ok": False, "detail": "the health check failed"}

        d.addCallbacks(shaped, failed)
        return d

    async def report(self) -> dict[str, Any]:
        """
        :returns: ``{"status": "ok"|"degraded", "uptime": seconds,
            "backends": {instance: {"plugin", "families", "ok", ...}},
            "families": [served family names]}``, and ``"worker"``
            (``{"index", "workers", "pid"}``) in a worker process.
        """
        names = sorted(self.instances)
        results = await DeferredList(
            [self._check(n, self.instances[n][1]) for n in names], consumeErrors=True
        )
        backends: dict[str, Any] = {}
        degraded = False
        for name, (_, result) in zip(names, results, strict=True):
            plugin, backend = self.instances[name]
            entry = {"plugin": plugin, "families": self._families_of(backend), **result}
            if entry.get("ok") is False:
                degraded = True
            backends[name] = entry
        report = {
            "status": "degraded" if degraded else "ok",
            "uptime": round(time.time() - self.started, 3),
            "backends": backends,
            "families": sorted(self.routing),
        }
        if self.worker is not None:
            report["worker"] = dict(self.worker)
        return report
