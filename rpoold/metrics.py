"""
Prometheus metrics of the daemon, and the small API backends feed them
through.

Everything lives in one registry, :data:`REGISTRY`, served at ``/metrics``
by prometheus-client's Twisted resource.  The web layer records requests
itself; backends report what only they know through the functions below,
so a backend's families never import ``prometheus_client``:

- :func:`track_backend_call` (or :func:`record_backend_call`): one call to
  what a backend talks to (a core0 command, an AYS REST call), by backend,
  command and outcome, with its duration.

What only one backend has (open Redis connections per node, AYS runs by
state) is registered on :data:`REGISTRY` by that backend's own telemetry
module (``plugins.core0.telemetry``, ``plugins.ays.telemetry``).

Label values come from code (backend and command names, node ids that
passed the contract's patterns, AYS run states), never from raw client
input, so the number of series stays bounded.

Worker processes (``server.workers`` above 1, ``rpoold.workers``) count
in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set
by their parent): ``/metrics`` then serves :func:`served_registry`, every
worker's figures added up (gauges of live workers only), without the
``process_*`` and ``python_*`` series of one process.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from rpoold import errors
from rpoold.version import version

# No ``*_created`` series: they double the output and nothing here needs them.
disable_created_metrics()

#: The registry ``/metrics`` serves.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: Latency buckets, in seconds: an in-memory call takes well under a
#: millisecond, a node behind a WAN link hundreds of milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "rpoold_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "rpoold_http_request_duration_seconds",
    "Time from the request line to the end of the answer, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "rpoold_http_requests_in_flight",
    "Requests received (at least their request line) and not yet answered.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
BACKEND_CALLS = Counter(
    "rpoold_backend_calls",
    "Calls a backend made to what it talks to, by backend, command and outcome.",
    ["backend", "command", "outcome"],
    registry=REGISTRY,
)
BACKEND_LATENCY = Histogram(
    "rpoold_backend_call_duration_seconds",
    "Duration of backend calls, by backend and command.",
    ["backend", "command"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "rpoold_build_info",
    "rpoold's version (always 1).",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
BUILD_INFO.labels(version()).set(1)


def served_registry() -> CollectorRegistry:
    """
    :returns: what ``/metrics`` serves: :data:`REGISTRY`, or, in a worker
        process, every worker's figures (prometheus-client's multiprocess
        collector over ``PROMETHEUS_MULTIPROC_DIR``).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


#: HTTP methods kept as label values; any other is counted as ``other``.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})

#: Outcome label of each error class (the most specific match wins).
_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (errors.NotFound, "not_found"),
    (errors.Conflict, "conflict"),
    (errors.BadRequest, "bad_request"),
    (errors.BackendTimeout, "timeout"),
    (errors.BackendUnavailable, "unavailable"),
    (errors.ServiceUnavailable, "unavailable"),
    (errors.BackendError, "error"),
    (errors.RpoolError, "error"),
    (CancelledError, "cancelled"),
)


def outcome_of(failure: Failure | BaseException | None) -> str:
    """
    :returns: the ``outcome`` label for a call that ended with ``failure``:
        ``ok`` (no failure), ``not_found``, ``conflict``, ``bad_request``,
        ``timeout``, ``unavailable``, ``error``, ``cancelled``, or
        ``exception`` for anything else.
    """
    if failure is None:
        return "ok"
    value = failure.value if isinstance(failure, Failure) else failure
    for kind, label in _OUTCOMES:
        if isinstance(value, kind):
            return label
    return "exception"


def record_backend_call(backend: str, command: str, outcome: str, seconds: float | None = None) -> None:
    """
    Count one backend call that already ended.

    :param backend: the backend's plugin name (``core0``, ``ays``, ``mock``).
    :param command: what was called: a core0 command (``core.system``), an
        AYS call (``POST /aysrun``), an interface method.  Keep it a small
        fixed set: never put ids in it.
    :param outcome: see :func:`outcome_of`.
    :param seconds: its duration, if known.
    """
    calls, latency = _backend_series(backend, command, outcome)
    calls.inc()
    if seconds is not None:
        latency.observe(seconds)


# Label values are a bounded set (see the module docstring), so each
# combination's series are looked up once and kept: ``labels()`` costs
# more than the ``inc()`` or ``observe()`` itself.


@functools.cache
def _backend_series(backend: str, command: str, outcome: str) -> tuple[Any, Any]:
    return BACKEND_CALLS.labels(backend, command, outcome), BACKEND_LATENCY.labels(backend, command)


@functools.cache
def _request_series(route: str, method: str, status: int) -> tuple[Any, Any]:
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route, method)


T = TypeVar("T")


def _outcome_of_result(result: Any) -> str:
    return outcome_of(result if isinstance(result, Failure) else None)


def track_backend_call(
    backend: str,
    command: str,
    d: Deferred[T],
    clock: Callable[[], float] = time.monotonic,
    outcome: Callable[[Any], str] = _outcome_of_result,
) -> Deferred[T]:
    """
    Count a backend call when ``d`` fires, with its outcome and duration
    (from now until then).

    :param outcome: the ``outcome`` label of what ``d`` fired with
        (default: ``ok`` for a result, :func:`outcome_of` for a failure).
    :returns: ``d`` itself, so a call site reads
        ``return track_backend_call("core0", "core.ping", client.send(...))``.
        Its result or failure passes through unchanged.
    """
    started = clock()

    def done(result: Any) -> Any:
        record_backend_call(backend, command, outcome(result), clock() - started)
        return result

    d.addBoth(done)
    return d


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request (used by the web layer)."""
    label = method if method in KNOWN_METHODS else "other"
    requests, latency = _request_series(route, label, status)
    requests.inc()
    latency.observe(seconds)
