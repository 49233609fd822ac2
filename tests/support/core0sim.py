"""
The ``core0sim`` fixture: one real ``twistd core0sim`` of two nodes per
test module (``testbed.core0sim.Core0Sim``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.core0sim import Core0Sim


@pytest.fixture(scope="module")
def core0sim() -> Iterator[Core0Sim]:
    """A ``twistd core0sim`` of two nodes, shared by a test module."""
    sim = Core0Sim(nodes=2, extra=("--reboot-seconds", "0.5")).start()
    yield sim
    sim.stop()
