"""
Shared fixtures.  Fixture modules for each kind of real component live in
``tests/support`` and are registered here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.core0sim import core0sim  # noqa: F401  (fixture: a twistd core0sim per module)
from tests.support.processes import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` child on a free loopback port."""
    server = RedisServer().start()
    yield server
    server.stop()
