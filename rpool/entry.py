"""
The ``rpool`` console script: the command-line interface, or one line
naming the extra to install when its libraries are missing (``pip install
'rpoold[cli]'``), since the daemon's own install does not bring them.
"""

from __future__ import annotations

import sys

#: The libraries of the ``cli`` extra.
CLI_LIBRARIES = ("click", "rich", "httpx", "platformdirs")


def main() -> None:
    """Run the command line (``sys.argv``); exits with an ``ExitCode``."""
    try:
        from rpool.cli import run
    except ModuleNotFoundError as e:
        if e.name not in CLI_LIBRARIES:
            raise
        sys.stderr.write(f"rpool: the library '{e.name}' is missing: pip install 'rpoold[cli]'\n")
        sys.exit(2)  # ExitCode.USAGE (rpool.exits needs click itself)
    run()
