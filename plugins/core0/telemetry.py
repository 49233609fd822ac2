"""
How the core0 client's calls to a node count in ``rpoold.metrics``, and
the core0 backend's own metric: its open Redis connections, by node.

A call's ``command`` label is the core0 command it runs (``info.mem``,
``corex.list``), ``corex.dispatch/<command>`` for a command run inside a
container, ``job.peek`` for reading another job's result: names written in
code, never ids, so the label set stays small.  Its ``outcome`` is that of
``rpoold.metrics.outcome_of`` for a call that failed (``unavailable``,
``timeout``, ``cancelled``, ...); for a call that got its result, ``ok``
when the command succeeded, ``timeout`` when the agent stopped it at its
time limit, ``error`` for any other final state (``ERROR``, ``KILLED``,
``UNKNOWN_CMD``, ...).
"""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import Gauge
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from plugins.core0.protocol import SUCCESS, TIMEOUT, Result
from rpoold import metrics

T = TypeVar("T")

#: ``backend`` label of calls made by the core0 backend.
BACKEND = "core0"

REDIS_CONNECTIONS = Gauge(
    "rpoold_redis_connections",
    "Open Redis connections, by node.",
    ["node"],
    registry=metrics.REGISTRY,
    multiprocess_mode="livesum",
)


def result_outcome(result: Any) -> str:
    """The outcome of a call that ended with ``result``."""
    if isinstance(result, Failure):
        return metrics.outcome_of(result)
    if isinstance(result, Result) and result.state != SUCCESS:
        return "timeout" if result.state == TIMEOUT else "error"
    return "ok"


def track(command: str, d: Deferred[T]) -> Deferred[T]:
    """
    Count the call ``d`` stands for when it fires (its result passes
    through unchanged).

    :param command: the ``command`` label (see the module docstring).
    :returns: ``d``.
    """
    return metrics.track_backend_call(BACKEND, command, d, outcome=result_outcome)


def connection_opened(node: str) -> None:
    """One more open Redis connection to ``node`` (a node id)."""
    REDIS_CONNECTIONS.labels(node).inc()


def connection_closed(node: str) -> None:
    """One Redis connection to ``node`` was closed or lost."""
    REDIS_CONNECTIONS.labels(node).dec()
