"""
The AYS backend's composition root: the backend built from its
``[backends.<name>]`` options (see the ``ays`` dropin for their schema),
with the HTTP client to AYS and the nodes' agents on core0's side of
``rpoold.nodes.INodeAgents``.  No other module of the AYS backend knows
how core0 is spoken.
"""

from __future__ import annotations

from typing import Any

from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool

from plugins.ays.backend import AysBackend
from plugins.ays.client import AysClient
from plugins.ays.runs import Timing
from plugins.core0.agents import NodeAgents

#: Persistent HTTP connections to AYS at most.
AYS_CONNECTIONS = 8


def from_options(options: dict[str, Any], context: Any) -> AysBackend:
    """
    :param options: the validated options, defaults filled.
    :param context: the backend context (its ``reactor``).
    :returns: the backend, not started.
    """
    reactor = context.reactor
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = AYS_CONNECTIONS
    http = HTTPClient(Agent(reactor, pool=pool))
    client = AysClient(
        options["url"], options["repository"], http, reactor,
        request_timeout=float(options["request_timeout"]),
    )
    timing = Timing(
        run_timeout=float(options["run_timeout"]),
        poll_interval=float(options["poll_interval"]),
        poll_max_interval=float(options["poll_max_interval"]),
        follow_timeout=float(options["follow_timeout"]),
    )
    return AysBackend(
        client, reactor, timing,
        health_timeout=float(options["health_timeout"]),
        connections=pool,
        agents=NodeAgents(reactor, float(options["core0_timeout"])),
        live_status_timeout=float(options["live_status_timeout"]),
        retry_interval=float(options["startup_retry_interval"]),
        retry_max_interval=float(options["startup_retry_max_interval"]),
        registry_ttl=float(options["registry_ttl"]),
    )
