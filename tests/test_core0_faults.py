"""
Faults, end to end: ``twistd rpoold`` on the core0 backend over real HTTP,
nodes on real ``redis-server`` children answered by the in-process test
agent.  A node whose Redis is down answers 502 while the others answer; it
is used again once its Redis is back; a node that takes commands but never
answers gets 504; an unknown job is 404 at once; a burst of requests stays
within the pool size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import redis
import treq
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults

from plugins.core0.connection import CLIENT_NAME
from plugins.poolsim.pool import Pool
from testbed.core0_agent import AgentOnRedis
from testbed.processes import Child
from testbed.redis_server import RedisServer
from testbed.twistd import start_rpoold

NODE_A = "525400123456"
NODE_B = "525400123457"
SILENT = "5254001234ff"


def write_config(path: Path, nodes: list[tuple[str, int]], *, timeout: float, pool_size: int = 4) -> str:
    lines = ["[families]", 'default = "core0"', "",
             "[backends.core0]", 'plugin = "core0"', f"timeout = {timeout}", f"pool_size = {pool_size}",
             "ping_timeout = 0.5", "",
             # No look at the nodes for node.status events: a node's queue holds the test's commands only.
             "[events]", "node_interval = 0", ""]
    for nodeid, port in nodes:
        lines += ["[[backends.core0.nodes]]", f'id = "{nodeid}"', 'host = "127.0.0.1"', f"port = {port}", ""]
    path.write_text("\n".join(lines))
    return str(path)


class Env:
    def __init__(self) -> None:
        self.servers: dict[str, RedisServer] = {}
        self.agents: dict[str, AgentOnRedis] = {}
        self.rpoold: Child | None = None
        self.url = ""
        self.pool = Pool(reactor, nodes=2)

    async def serve(self, nodeid: str) -> None:
        node = self.pool.nodes[nodeid]
        self.agents[nodeid] = await AgentOnRedis(self.servers[nodeid].port, node=node).start()

    async def mem_ok(self, nodeid: str) -> bool:
        status, answer = await self.get(f"/nodes/{nodeid}/mem")
        return status == 200 and answer["total"] == self.pool.nodes[nodeid].info_mem()["total"]

    async def get(self, path: str, timeout: float = 20) -> tuple[int, Any]:
        response = await treq.get(self.url + path, timeout=timeout)
        return response.code, json.loads(await response.content())


@pytest.fixture
def servers() -> Iterator[dict[str, RedisServer]]:
    started = {nodeid: RedisServer().start() for nodeid in (NODE_A, NODE_B, SILENT)}
    yield started
    for server in started.values():
        server.stop()


@pytest_twisted.async_yield_fixture
async def env(servers: dict[str, RedisServer], tmp_path: Path, request: Any) -> AsyncIterator[Env]:
    timeout = getattr(request, "param", 2.0)
    env = Env()
    env.servers = servers
    for nodeid in (NODE_A, NODE_B):
        await env.serve(nodeid)
    config = write_config(tmp_path / "core0.toml", [(n, s.port) for n, s in servers.items()], timeout=timeout)
    env.rpoold, env.url = start_rpoold(config)
    yield env
    env.rpoold.stop()
    for agent in env.agents.values():
        await agent.stop()


@pytest_twisted.ensureDeferred
async def test_node_down_then_back(env: Env) -> None:
    assert await env.mem_ok(NODE_B)
    await env.agents[NODE_B].stop()
    env.servers[NODE_B].stop()

    status, answer = await env.get(f"/nodes/{NODE_B}/mem")
    assert status == 502 and f"node '{NODE_B}' is unreachable" in answer["error"]
    status, _ = await env.get(f"/nodes/{NODE_A}/mem")
    assert status == 200
    status, nodes = await env.get("/nodes")
    assert status == 200
    assert {n["id"]: n["status"] for n in nodes} == {NODE_A: "running", NODE_B: "halted", SILENT: "halted"}

    env.servers[NODE_B].start()
    await env.serve(NODE_B)
    assert await env.mem_ok(NODE_B)
    status, node = await env.get(f"/nodes/{NODE_B}")
    assert status == 200 and node["status"] == "running"


@pytest_twisted.ensureDeferred
async def test_silent_node_times_out(env: Env) -> None:
    status, answer = await env.get(f"/nodes/{SILENT}/mem")
    assert status == 504
    assert answer == {"error": f"node '{SILENT}' did not answer 'info.mem' within 2 s"}
    # The node keeps the command queued; the other nodes are not held up.
    assert redis.Redis(port=env.servers[SILENT].port).llen("core:default") == 1
    assert (await env.get(f"/nodes/{NODE_A}/cpus"))[0] == 200


@pytest_twisted.ensureDeferred
async def test_silent_node_is_named_silent_beyond_its_pool(env: Env) -> None:
    """
    More calls than the node has connections (4): those that wait for a
    connection time out too, and say that the node did not answer, not that
    its connections were busy.
    """
    paths = [f"/nodes/{SILENT}/{what}" for what in
             ("mem", "cpus", "nics", "disks", "info", "state", "jobs", "processes")]
    answers = await gatherResults([ensureDeferred(env.get(p)) for p in paths])
    assert [status for status, _ in answers] == [504] * len(paths), answers
    for _, answer in answers:
        assert answer["error"].startswith(f"node '{SILENT}' did not answer '"), answer
        assert "within 2 s" in answer["error"] and "busy" not in answer["error"], answer


@pytest.mark.parametrize("env", [60.0], indirect=True)
@pytest_twisted.ensureDeferred
async def test_unknown_job_is_404_at_once(env: Env) -> None:
    # The backend would wait 60 s for an answer; the request deadline is 10 s.
    status, answer = await env.get(f"/nodes/{NODE_A}/jobs/0ff1ce00-0000-4000-8000-000000000000", timeout=10)
    assert status == 404 and "does not exist" in answer["error"]
    status, answer = await env.get(
        f"/nodes/{NODE_A}/containers/vfw_21/jobs/0ff1ce00-0000-4000-8000-000000000000", timeout=10)
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_burst_stays_within_the_pool(env: Env) -> None:
    paths = [f"/nodes/{NODE_A}/mem", f"/nodes/{NODE_A}/containers/vfw_21/jobs", f"/nodes/{NODE_A}/nics"] * 40
    answers = await gatherResults([ensureDeferred(env.get(p)) for p in paths])
    assert [status for status, _ in answers] == [200] * len(paths)
    clients = redis.Redis(port=env.servers[NODE_A].port).client_list()
    ours = [c for c in clients if c.get("name") == CLIENT_NAME]
    assert 1 <= len(ours) <= 4


@pytest_twisted.ensureDeferred
async def test_pool_wide_lists_name_the_nodes_that_do_not_answer(env: Env) -> None:
    """
    ``GET /containers`` and ``GET /vms`` answer with the nodes that do: a
    node whose Redis is stopped and one that never answers are named in
    ``X-Unreachable-Nodes`` instead of failing the list, each asked within
    its own timeout.
    """
    await env.agents[NODE_B].stop()
    env.servers[NODE_B].stop()
    for path in ("/containers", "/vms"):
        response = await treq.get(env.url + path, timeout=20)
        assert response.code == 200
        items = json.loads(await response.content())
        assert response.headers.getRawHeaders("X-Unreachable-Nodes") == [f"{NODE_B}, {SILENT}"]
        assert {item["node"] for item in items} <= {NODE_A}
        if path == "/containers":
            assert "vfw_21" in {item["name"] for item in items}
    response = await treq.get(env.url + "/containers", params={"node": NODE_A}, timeout=20)
    assert response.code == 200 and response.headers.getRawHeaders("X-Unreachable-Nodes") is None
    status, answer = await env.get(f"/containers?node={NODE_B}")
    assert status == 200 and answer == []
