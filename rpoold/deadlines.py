"""
Time limits of calls that all have the same length, one timer for all.

Calls with the same time limit (every backend call of the API; the
callers waiting for a shared core0 run) reach their deadlines in the order
they started.  :class:`Deadlines` keeps the calls in flight in that order
and arms one delayed call, for the oldest one's deadline, instead of one
per call (as ``Deferred.addTimeout`` would: a ``callLater`` and its
cancellation on each request).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

T = TypeVar("T")


class Deadlines:
    """
    :param seconds: how long a call may take.
    :param clock: an ``IReactorTime`` (the reactor, or a test clock).
    :param error: makes the exception a late call fails with (default:
        ``twisted.internet.defer.TimeoutError``).
    """

    def __init__(self, seconds: float, clock: Any, error: Callable[[], Exception] | None = None) -> None:
        self.seconds = seconds
        self.clock = clock
        self.error = error or self._timeout_error
        #: Calls in flight, oldest first -> their deadline.
        self._pending: OrderedDict[Deferred[Any], float] = OrderedDict()
        self._timer: IDelayedCall | None = None

    def limit(self, d: Deferred[T]) -> Deferred[T]:
        """
        :returns: ``d``, cancelled if it has not fired within ``seconds``;
            it then fails with ``error()`` (a cancellation by anything
            else still fails with ``CancelledError``).
        """
        self._pending[d] = self.clock.seconds() + self.seconds
        d.addBoth(self._settled, d)
        if self._timer is None and self._pending:
            self._timer = self.clock.callLater(self.seconds, self._expire)
        return d

    def __len__(self) -> int:
        """:returns: how many calls are in flight."""
        return len(self._pending)

    def _settled(self, result: Any, d: Deferred[Any]) -> Any:
        if d in self._pending:
            del self._pending[d]
        elif isinstance(result, Failure) and result.check(CancelledError):
            # _expire dropped it before cancelling it: its time is over.
            raise self.error()
        return result

    def _timeout_error(self) -> Exception:
        return defer.TimeoutError(f"not done within {self.seconds:g} s")

    def _expire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        while self._pending:
            d, deadline = next(iter(self._pending.items()))
            if deadline > now:
                self._timer = self.clock.callLater(deadline - now, self._expire)
                return
            del self._pending[d]
            d.cancel()
