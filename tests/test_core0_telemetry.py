"""
What the core0 backend reports and how it stops, against a real
``redis-server`` answered by the in-process test agent: calls by command and
outcome (the node's result state counts), open connections per node, a
health check that never fails and stays bounded, and every connection
(idle or leased) closed by ``stopService``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted
import redis
from twisted.internet.defer import ensureDeferred

from plugins.core0.backend import Core0Backend
from plugins.core0.connection import CLIENT_NAME
from rpoold.config import build
from rpoold.errors import BackendTimeout, BackendUnavailable
from rpoold.metrics import REGISTRY
from testbed.core0_agent import AgentOnRedis, result
from testbed.ports import free_port
from testbed.redis_server import RedisServer
from tests.support.polling import wait_for

ANSWERING = "5254001234a1"
SILENT = "5254001234a2"
CLOSED = "5254001234a3"


def script(payload: dict[str, Any]) -> dict[str, Any] | None:
    command = payload["command"]
    if command == "core.ping":
        return result(payload, data="pong")
    if command == "info.mem":
        return result(payload, data={"total": 1})
    if command == "info.cpu":
        return result(payload, state="ERROR", data="no cpu today", level=1)
    if command == "info.os":
        return result(payload, state="TIMEOUT", data="", level=1)
    return None  # never answered


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def calls(command: str, outcome: str) -> float:
    return sample("rpoold_backend_calls_total", backend="core0", command=command, outcome=outcome)


def ours(server: RedisServer) -> int:
    return sum(1 for c in redis.Redis(port=server.port).client_list() if c.get("name") == CLIENT_NAME)


@pytest.fixture
def servers() -> Iterator[dict[str, RedisServer]]:
    started = {nodeid: RedisServer().start() for nodeid in (ANSWERING, SILENT)}
    yield started
    for server in started.values():
        server.stop()


@pytest_twisted.async_yield_fixture
async def backend(servers: dict[str, RedisServer]) -> AsyncIterator[Core0Backend]:
    agent = await AgentOnRedis(servers[ANSWERING].port, script=script).start()
    nodes = [{"id": n, "host": "127.0.0.1", "port": s.port} for n, s in servers.items()]
    nodes.append({"id": CLOSED, "host": "127.0.0.1", "port": free_port()})
    raw = {"backends": {"core0": {"plugin": "core0", "timeout": 5, "ping_timeout": 0.5,
                                  "health_timeout": 1, "nodes": nodes}},
           "families": {"default": "core0"}}
    core0 = build(raw, "test", ".").backends["core0"]
    assert isinstance(core0, Core0Backend)
    core0.startService()
    yield core0
    if core0.running:
        await core0.stopService()
    await agent.stop()


@pytest_twisted.ensureDeferred
async def test_calls_by_command_and_outcome(backend: Core0Backend) -> None:
    before = {k: calls(*k) for k in [("info.mem", "ok"), ("info.cpu", "error"), ("info.os", "timeout"),
                                      ("info.nic", "timeout"), ("info.mem", "unavailable")]}
    client = await backend.directory.client(ANSWERING)
    assert await client.call("info.mem") == {"total": 1}
    with pytest.raises(Exception, match="no cpu today"):
        await client.call("info.cpu")
    with pytest.raises(Exception, match=r"info\.os"):
        await client.call("info.os")           # the agent's own time limit: state TIMEOUT
    with pytest.raises(BackendTimeout):
        await client.call("info.nic", timeout=0.3)  # no answer at all
    with pytest.raises(BackendUnavailable):
        await (await backend.directory.client(CLOSED)).call("info.mem")
    after = {k: calls(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == dict.fromkeys(before, 1)
    assert sample("rpoold_backend_call_duration_seconds_count", backend="core0", command="info.mem") >= 1


@pytest_twisted.ensureDeferred
async def test_health_names_the_nodes_that_do_not_answer(backend: Core0Backend) -> None:
    report = await backend.check_health()
    assert report["ok"] is False
    assert (report["nodes"], report["answering"], sorted(report["down"])) == (3, 1, sorted([SILENT, CLOSED]))


@pytest_twisted.ensureDeferred
async def test_connections_counted_and_all_closed_on_stop(
        backend: Core0Backend, servers: dict[str, RedisServer]) -> None:
    base = sample("rpoold_redis_connections", node=ANSWERING)
    client = await backend.directory.client(ANSWERING)
    # Two calls at once: two connections, one of them still leased
    # (waiting for an answer that never comes) when the backend stops.
    pending = ensureDeferred(_expect_unavailable(client.call("job.list", {"id": "x"}, timeout=30)))
    assert await client.call("info.mem") == {"total": 1}
    await wait_for(lambda: sample("rpoold_redis_connections", node=ANSWERING) - base >= 2,
                   "connections counted")
    open_now = sample("rpoold_redis_connections", node=ANSWERING) - base
    assert open_now == client.pool.ready == ours(servers[ANSWERING])
    await backend.stopService()
    assert sample("rpoold_redis_connections", node=ANSWERING) == base
    await pending
    await wait_for(lambda: ours(servers[ANSWERING]) == 0, "server sees the connections closed")


async def _expect_unavailable(d: Any) -> None:
    with pytest.raises(BackendUnavailable):
        await d
