"""
The action handlers of the simulated templates, one module per family of
templates; importing them registers them in
``plugins.ays.sim.context.HANDLERS``.
"""

from __future__ import annotations


def load() -> None:
    """Import (and so register) every handler module."""
    from plugins.ays.sim.handlers import (  # noqa: F401
        clusters,
        containers,
        inputs,
        network,
        nodes,
        storage,
        vms,
    )
