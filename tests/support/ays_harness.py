"""
The ``ays`` harness: family tests against rpoold in the original's split
deployment (AYS for the AYS-based families, core0 for the direct ones,
nodes from AYS), with ayssim, core0sim and its redis-server children as
real processes, shared by the whole session and stopped at its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.support.api import Api
from tests.support.ays_split import AYS_FAMILIES, CORE0, DIRECT_FAMILIES, SplitEnvironment
from tests.support.backends import Harness, register

_environment: SplitEnvironment | None = None


def environment() -> SplitEnvironment:
    """The session's environment, started on first use."""
    global _environment
    if _environment is None:
        _environment = SplitEnvironment().start()
    return _environment


def close() -> None:
    global _environment
    if _environment is not None:
        _environment.stop()
        _environment = None


@asynccontextmanager
async def _open() -> AsyncIterator[Api]:
    yield Api.over_http(environment().url)


AYS = register(Harness(
    name="ays",
    families=AYS_FAMILIES | DIRECT_FAMILIES if CORE0 else AYS_FAMILIES,
    open=_open,
    patience=15.0,
    close=close,
))
