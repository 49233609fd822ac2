"""
The action handlers of the simulated templates, one module per family of
templates; importing them registers them in
``plugins.ayssim.context.HANDLERS``.
"""

from __future__ import annotations


def load() -> None:
    """Import (and so register) every handler module."""
    from plugins.ayssim.handlers import (  # noqa: F401
        clusters,
        containers,
        inputs,
        network,
        nodes,
        storage,
        vms,
    )
