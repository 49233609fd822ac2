"""
The pool-wide container list on the AYS backend when a node does not
answer (rpoold, ayssim and core0sim as real processes): AYS still lists
the node's containers, with the status AYS last knew, and the node is named
in ``X-Unreachable-Nodes`` (its live status could not be asked within
``live_status_timeout``).  ``GET /vms`` asks no node (AYS holds the VMs'
status): it has no such header.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import pytest_twisted

from testbed.ays_split import SplitEnvironment
from testbed.http_api import Api
from tests.support.answers import body_of, expect
from tests.support.ays_split import node_entries

NODE = "525400123456"


@pytest.fixture(scope="module")
def env() -> Iterator[SplitEnvironment]:
    environment = SplitEnvironment().start()
    try:
        yield environment
    finally:
        environment.stop()


def redis_of(env: SplitEnvironment, nodeid: str) -> int:
    """The pid of the core0sim redis-server that serves ``nodeid``."""
    port = str(node_entries(env.nodes_file)[nodeid]["port"]).encode()
    for pid in env.core0sim.redis_pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
        if port in words or any(w.endswith(b":" + port) for w in words):
            return pid
    raise AssertionError(f"no redis-server of core0sim serves node {nodeid}")


@pytest_twisted.ensureDeferred
async def test_a_silent_node_is_named_and_its_containers_shown_as_ays_knows_them(
        env: SplitEnvironment) -> None:
    api = Api.over_http(env.url)
    before = body_of(expect(await api.get("/containers"), 200), "ListPoolContainers")
    assert "vfw_21" in {c["name"] for c in before if c["node"] == NODE}
    pid = redis_of(env, NODE)
    os.kill(pid, signal.SIGSTOP)
    try:
        reply = expect(await api.get("/containers"), 200)
        assert NODE in (reply.header("x-unreachable-nodes") or "").split(", ")
        during = body_of(reply, "ListPoolContainers")
        assert "vfw_21" in {c["name"] for c in during if c["node"] == NODE}
        vms = expect(await api.get("/vms"), 200)
        assert vms.header("x-unreachable-nodes") is None
    finally:
        os.kill(pid, signal.SIGCONT)
    reply = expect(await api.get("/containers"), 200)
    assert reply.header("x-unreachable-nodes") is None
