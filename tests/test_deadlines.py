"""
Deadlines of backend calls, on a test clock: a call that does not fire in
time is cancelled and fails with ``TimeoutError``, one that fires in time
is untouched, a cancellation by the caller stays a cancellation, and one
timer serves every call in flight.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.defer import TimeoutError as DeferTimeout
from twisted.internet.task import Clock

from rpoold.deadlines import Deadlines


def outcome(d: Deferred[Any]) -> list[Any]:
    seen: list[Any] = []
    d.addBoth(seen.append)
    return seen


def test_a_call_that_does_not_fire_in_time_times_out() -> None:
    clock = Clock()
    deadlines = Deadlines(10, clock)
    d: Deferred[Any] = Deferred()
    seen = outcome(deadlines.limit(d))
    clock.advance(9.9)
    assert seen == []
    clock.advance(0.1)
    assert len(seen) == 1 and seen[0].check(DeferTimeout)
    assert "10 s" in str(seen[0].value)
    assert len(deadlines) == 0


def test_a_call_that_fires_in_time_keeps_its_result() -> None:
    clock = Clock()
    deadlines = Deadlines(10, clock)
    d: Deferred[Any] = Deferred()
    seen = outcome(deadlines.limit(d))
    clock.advance(5)
    d.callback("answer")
    assert seen == ["answer"]
    clock.advance(60)
    assert seen == ["answer"]
    assert len(deadlines) == 0


def test_failures_pass_through() -> None:
    clock = Clock()
    deadlines = Deadlines(10, clock)
    d: Deferred[Any] = Deferred()
    seen = outcome(deadlines.limit(d))
    d.errback(KeyError("x"))
    assert seen[0].check(KeyError)


def test_a_call_that_has_already_fired() -> None:
    clock = Clock()
    deadlines = Deadlines(10, clock)
    assert outcome(deadlines.limit(succeed(3))) == [3]
    assert len(deadlines) == 0


def test_a_cancellation_by_the_caller_stays_one() -> None:
    clock = Clock()
    deadlines = Deadlines(10, clock)
    d: Deferred[Any] = Deferred()
    seen = outcome(deadlines.limit(d))
    d.cancel()
    assert seen[0].check(CancelledError) and not seen[0].check(DeferTimeout)
    clock.advance(20)
    assert len(seen) == 1


def test_the_canceller_of_a_late_call_runs() -> None:
    clock = Clock()
    deadlines = Deadlines(1, clock)
    cancelled: list[Deferred[Any]] = []
    d: Deferred[Any] = Deferred(cancelled.append)
    seen = outcome(deadlines.limit(d))
    clock.advance(1)
    assert cancelled == [d]
    assert seen[0].check(DeferTimeout)


@pytest.mark.parametrize("finished", [(), (0,), (0, 1), (1, 3), (0, 1, 2, 3, 4)])
def test_each_call_gets_its_own_deadline_from_one_timer(finished: tuple[int, ...]) -> None:
    """Calls start a second apart; some fire early; each other one times out at its own time."""
    clock = Clock()
    deadlines = Deadlines(10, clock)
    calls: list[Deferred[Any]] = []
    seen: list[list[Any]] = []
    for _ in range(5):
        calls.append(Deferred())
        seen.append(outcome(deadlines.limit(calls[-1])))
        clock.advance(1)
    assert len(clock.getDelayedCalls()) == 1
    for index in finished:
        calls[index].callback(index)
    # Now t = 5: call i (started at t = i) times out at t = 10 + i.
    for index in range(5):
        clock.advance(10 + index - clock.seconds() - 0.5)
        assert len(seen[index]) == (1 if index in finished else 0)
        clock.advance(0.5)
        if index in finished:
            assert seen[index] == [index]
        else:
            assert len(seen[index]) == 1 and seen[index][0].check(DeferTimeout)
        assert len(clock.getDelayedCalls()) <= 1
    assert len(deadlines) == 0


def test_the_error_of_a_late_call_can_be_chosen() -> None:
    clock = Clock()
    deadlines = Deadlines(1, clock, error=lambda: KeyError("late"))
    seen = outcome(deadlines.limit(Deferred()))
    clock.advance(1)
    assert seen[0].check(KeyError) and "late" in str(seen[0].value)


def test_calls_after_a_quiet_time_are_limited_too() -> None:
    clock = Clock()
    deadlines = Deadlines(2, clock)
    deadlines.limit(succeed(None))
    clock.advance(100)  # the timer found nothing in flight and stopped
    assert clock.getDelayedCalls() == []
    d: Deferred[Any] = Deferred()
    seen = outcome(deadlines.limit(d))
    clock.advance(2)
    assert seen[0].check(DeferTimeout)
