"""
Shared fixtures.  Fixture modules for each kind of real component live in
``tests/support`` and are registered here.

Family tests take the ``api`` fixture and run once per backend harness that
serves their family (see ``tests/support/backends.py``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from testbed.redis_server import RedisServer
from tests.support.ayssim import served  # noqa: F401  (fixture: the AYS simulator's API over a model pool)
from tests.support.backends import ALL_FAMILIES, HARNESSES, Harness
from tests.support.core0sim import core0sim  # noqa: F401  (fixture: a twistd core0sim per module)

#: Modules that register a harness when imported (one per backend).
HARNESS_MODULES = (
    "tests.support.backends",
    "tests.support.core0_harness",
    "tests.support.ays_harness",
)

for _module in HARNESS_MODULES:
    importlib.import_module(_module)

SELECT_ENV = "RPOOLD_TEST_BACKENDS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "families(*names): the resource families this test needs (default: the module's FAMILY)"
    )


def _selected() -> list[Harness]:
    wanted = [n.strip() for n in os.environ.get(SELECT_ENV, "").split(",") if n.strip()]
    if not wanted:
        return list(HARNESSES.values())
    unknown = [n for n in wanted if n not in HARNESSES]
    if unknown:
        raise pytest.UsageError(
            f"{SELECT_ENV}: unknown harness(es) {', '.join(unknown)}; known: {', '.join(HARNESSES)}"
        )
    return [HARNESSES[n] for n in wanted]


def _families(metafunc: pytest.Metafunc) -> frozenset[str]:
    marker = metafunc.definition.get_closest_marker("families")
    names: Any = marker.args if marker is not None else getattr(metafunc.module, "FAMILY", None)
    if names is None:
        raise pytest.UsageError(
            f"{metafunc.module.__name__} uses the 'api' fixture but declares no FAMILY"
        )
    families = frozenset([names] if isinstance(names, str) else names)
    unknown = families - ALL_FAMILIES
    if unknown:
        raise pytest.UsageError(f"{metafunc.module.__name__}: unknown families {sorted(unknown)}")
    return families


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``harness`` (or ``api``) once per harness serving its families."""
    if "harness" not in metafunc.fixturenames:
        return
    families = _families(metafunc)
    harnesses = [h for h in _selected() if h.serves(families)]
    metafunc.parametrize("harness", harnesses, ids=[h.name for h in harnesses])


@pytest_twisted.async_yield_fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    """An ``Api`` to rpoold on the backend of ``harness``."""
    async with harness.open() as client:
        yield client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for harness in HARNESSES.values():
        if harness.close is not None:
            harness.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` child on a free loopback port."""
    server = RedisServer().start()
    yield server
    server.stop()
