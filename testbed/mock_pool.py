"""
The mock pool that runs through ``twistd rpoold`` in end-to-end tests and
benchmarks: two seeded nodes, VM transitions at once, short reboots.
"""

from __future__ import annotations

#: Its configuration (TOML, without [server] or [auth]): what the
#: scenario of every operation (``tests/support/scenario.py``) expects.
MOCK_CONFIG = """
[backends.mock]
plugin = "mock"
nodes = 2
transition_seconds = 0
reboot_seconds = 0.2

[families]
default = "mock"
"""
