"""
Waiting for something to become true, in tests that run on the reactor.

Tests never sleep a fixed time: they ask again and again until the answer
is the expected one, and fail with the last answer after a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from twisted.internet import reactor
from twisted.internet.task import deferLater

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """
    Call ``probe`` until ``accept`` takes its result.

    :returns: the accepted result.
    :raises AssertionError: not accepted within ``timeout`` seconds; the
        message holds ``what`` and the last result.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s; last: {value}")
        await deferLater(reactor, interval, lambda: None)


async def wait_for(predicate: Callable[[], T], what: str, timeout: float = 10.0,
                   interval: float = 0.02) -> T:
    """
    Call ``predicate`` (a plain function) until it answers something true,
    letting the reactor run in between.

    :returns: that answer.
    :raises AssertionError: not true within ``timeout`` seconds.
    """
    async def probe() -> T:
        return predicate()

    return await eventually(probe, bool, timeout, what, interval)
