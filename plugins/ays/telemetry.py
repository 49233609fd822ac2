"""
The AYS backend's own metrics, registered on ``rpoold.metrics.REGISTRY``:
the runs it waits for, by state (its calls to AYS count in the shared
backend-call metrics, ``plugins.ays.client``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from rpoold.metrics import REGISTRY

AYS_RUNS = Gauge(
    "rpoold_ays_runs",
    "AYS runs being waited for, by backend and state (new, running).",
    ["backend", "state"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
AYS_RUNS_FINISHED = Counter(
    "rpoold_ays_runs_finished",
    "AYS runs seen to finish, by backend and final state (ok, error, ...).",
    ["backend", "state"],
    registry=REGISTRY,
)


class AysRunStates:
    """
    AYS runs by state, for one backend.

    The backend calls :meth:`update` each time it learns a run's state
    (when it creates the run, at each poll); runs in ``new`` or ``running``
    are counted by ``rpoold_ays_runs``, and a run that reaches any other
    state is counted once by ``rpoold_ays_runs_finished`` and forgotten.
    :meth:`forget` drops a run the backend stops waiting for.

    :param backend: the backend's plugin name, the ``backend`` label.
    """

    ACTIVE = frozenset({"new", "running"})

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._state: dict[str, str] = {}

    def update(self, run: str, state: str) -> None:
        """
        :param run: the run's key.
        :param state: its state as AYS reports it (``new``, ``running``,
            ``ok``, ``error``).
        """
        previous = self._state.get(run)
        if previous == state:
            return
        if previous is not None:
            AYS_RUNS.labels(self.backend, previous).dec()
        if state in self.ACTIVE:
            self._state[run] = state
            AYS_RUNS.labels(self.backend, state).inc()
        else:
            self._state.pop(run, None)
            AYS_RUNS_FINISHED.labels(self.backend, state).inc()

    def forget(self, run: str) -> None:
        """Stop counting ``run`` (no longer waited for, state unknown)."""
        previous = self._state.pop(run, None)
        if previous is not None:
            AYS_RUNS.labels(self.backend, previous).dec()

    def active(self) -> dict[str, str]:
        """:returns: the runs counted now, run key -> state."""
        return dict(self._state)
