"""
rpoold's version: the installed distribution's (``setup.cfg``), or
``unknown`` when the package runs from a checkout that was never installed.
"""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    """:returns: the version of the installed ``rpoold`` distribution."""
    try:
        return metadata.version("rpoold")
    except metadata.PackageNotFoundError:
        return "unknown"
