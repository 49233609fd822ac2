"""
The mock backend's factory (named by the ``mock`` dropin): a simulated
pool, seeded with the seed document's examples, served through the core0
command kit in process.
"""

from __future__ import annotations

from typing import Any

from plugins.mock.backend import MockBackend
from plugins.poolsim.local import SimulatedRegistry
from plugins.poolsim.pool import Pool


def mock_backend(options: dict[str, Any], context: Any) -> MockBackend:
    """
    :param options: ``nodes`` (pool size), ``reboot_seconds`` (how long a
        reboot takes), ``transition_seconds`` (see ``MockBackend``).
    :param context: the ``IBackendContext``.
    """
    pool = Pool(context.reactor, nodes=int(options.get("nodes", 2)),
                reboot_seconds=float(options.get("reboot_seconds", 1.0)))
    registry = SimulatedRegistry(pool)
    return MockBackend(options, context, registry, registry.connect)
