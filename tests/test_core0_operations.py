"""
Operations and events on the core0 backend, over real HTTP: ``twistd
rpoold`` children against a real ``twistd core0sim`` (its reboots last a
few seconds), their operations and events in one real ``redis-server``.

- a reboot with ``Prefer: respond-async``: the operation ends when the node
  answers again, with "node away" then "node back" among its steps;
- the daemon killed while the node is away and started again on the same
  store: the reboot is still followed to its end;
- two daemons on one store: an event made through one reaches a subscriber
  of the other, and an operation accepted by one is seen by the other;
- a node's Redis stopped and started (nodes on their own ``redis-server``,
  answered by the test's agent): two ``node.status`` events, ``halted`` then
  ``running``;
- no write answers 504 while its work goes on: a bridge made on a node away
  longer than the request's wait answers 202 with its operation, which
  then succeeds with the bridge's ``Location``; a reboot without the header
  answers 204 as it always did, with its ``Operation-Location``.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from plugins.poolsim.pool import Pool
from testbed.core0_agent import AgentOnRedis
from testbed.core0sim import Core0Sim
from testbed.http_api import Api
from testbed.processes import Child
from testbed.redis_server import RedisServer
from testbed.sse import EventStreamClient
from testbed.toml_text import toml
from testbed.twistd import start_rpoold
from tests.support.answers import body_of, expect
from tests.support.backends import unique
from tests.support.polling import eventually
from tests.support.resources import container_body

ASYNC = {"Prefer": "respond-async"}
#: A node is away this long, twice the backend's wait for an answer (so the node is seen away).
REBOOT_SECONDS = 3.0

pytestmark = pytest.mark.timeout(180)


def daemon_config(path: Path, backend: dict[str, Any], store: str, owner: str,
                  request_timeout: float = 20.0) -> str:
    """An rpoold configuration: ``backend`` as the core0 backend, operations and events in ``store``."""
    path.write_text(toml({
        "server": {"request_timeout": request_timeout, "access_log": False},
        "store": {"url": store},
        "families": {"default": "core0"},
        "backends": {"core0": {"plugin": "core0", "ping_timeout": 0.5, "transition_seconds": 0.05,
                               **backend}},
        "operations": {"owner": owner, "lease": 3, "reboot_timeout": 60},
        "events": {"node_interval": 0.3, "keepalive": 1},
    }))
    return str(path)


class Pair:
    """core0sim, a Redis store and up to two daemons on it."""

    def __init__(self, sim: Core0Sim, store: RedisServer) -> None:
        self.sim = sim
        self.store = f"redis://127.0.0.1:{store.port}/0?prefix=ops{unique('p')}:"
        self.children: dict[str, Child] = {}
        self.urls: dict[str, str] = {}

    def start(self, owner: str, request_timeout: float = 20.0, backend_timeout: float = 1.5) -> Api:
        config = daemon_config(self.sim.dir / f"{owner}.toml",
                               {"nodes_file": str(self.sim.node_file), "timeout": backend_timeout},
                               self.store, owner, request_timeout)
        self.children[owner], self.urls[owner] = start_rpoold(config)
        return Api.over_http(self.urls[owner])

    def kill(self, owner: str) -> None:
        child = self.children.pop(owner)
        child.signal(signal.SIGKILL)
        child.stop()

    def output(self, owner: str) -> str:
        return self.children[owner].output()

    def stop(self) -> None:
        for child in self.children.values():
            child.stop()
        self.children.clear()


@pytest.fixture(scope="module")
def sim() -> Iterator[Core0Sim]:
    started = Core0Sim(nodes=2, extra=("--reboot-seconds", str(REBOOT_SECONDS))).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def store() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def pair(sim: Core0Sim, store: RedisServer) -> Iterator[Pair]:
    daemons = Pair(sim, store)
    yield daemons
    daemons.stop()


async def ended(api: Api, operation_id: str, wait: float = 30) -> dict[str, Any]:
    body = body_of(await api.get(f"/operations/{operation_id}", params={"wait": str(wait)}), "GetOperation")
    assert body["status"] in ("succeeded", "failed", "cancelled"), body
    return body


def messages(operation: dict[str, Any]) -> list[str]:
    return [str(step.get("message", "")) for step in operation["steps"]]


async def node_answers(api: Api, nodeid: str) -> None:
    async def mem() -> int:
        return (await api.get(f"/nodes/{nodeid}/mem")).status
    await eventually(mem, lambda status: status == 200, 30, f"node {nodeid} answering")


@pytest_twisted.ensureDeferred
async def test_reboot_ends_when_the_node_is_back(sim: Core0Sim, pair: Pair) -> None:
    api = pair.start("one")
    nodeid = sim.entries[0].id
    await node_answers(api, nodeid)
    reply = await api.post(f"/nodes/{nodeid}/reboot", headers=ASYNC)
    operation = body_of(reply, "GetOperation", 202)
    assert reply.header("preference-applied") == "respond-async"
    assert operation["operation"] == "RebootNode" and operation["resource"] == f"/nodes/{nodeid}"
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded" and done["result"] == {"status": 204}, done
    steps = messages(done)
    assert "node away" in steps and steps[-1] == "node back", steps
    assert steps.index("node away") < steps.index("node back")
    expect(await api.get(f"/nodes/{nodeid}/mem"), 200)


@pytest_twisted.ensureDeferred
async def test_a_write_longer_than_its_wait_answers_202_not_504(sim: Core0Sim, pair: Pair) -> None:
    # The backend waits 10 s for an answer, the request 1 s: a node away for 3 s outlasts the request.
    api = pair.start("short", request_timeout=1.0, backend_timeout=10.0)
    nodeid = sim.entries[1].id
    await node_answers(api, nodeid)
    # Without the header a reboot answers 204 as it always did, and says where its operation is.
    reply = expect(await api.post(f"/nodes/{nodeid}/reboot"), 204)
    reboot = reply.header("operation-location")
    assert reboot is not None and reboot.startswith("/operations/"), reply.headers
    name = unique("br")
    reply = await api.post(f"/nodes/{nodeid}/bridges", json={"name": name, "networkMode": "none"})
    operation = body_of(reply, "GetOperation", 202)
    assert operation["status"] == "running" and reply.header("preference-applied") is None, operation
    assert reply.header("location") == f"/operations/{operation['id']}"
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"status": 201, "location": f"/nodes/{nodeid}/bridges/{name}"}, done
    rebooted = await ended(api, reboot.rsplit("/", 1)[1])
    assert rebooted["status"] == "succeeded" and messages(rebooted)[-1] == "node back", rebooted
    expect(await api.get(f"/nodes/{nodeid}/bridges/{name}"), 200)
    expect(await api.delete(f"/nodes/{nodeid}/bridges/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_a_restarted_daemon_still_follows_the_reboot(sim: Core0Sim, pair: Pair) -> None:
    api = pair.start("restarted")
    nodeid = sim.entries[0].id
    await node_answers(api, nodeid)
    operation = body_of(await api.post(f"/nodes/{nodeid}/reboot", headers=ASYNC), "GetOperation", 202)

    async def look() -> dict[str, Any]:
        return body_of(await api.get(f"/operations/{operation['id']}"), "GetOperation")

    seen = await eventually(look, lambda o: "node away" in messages(o) or o["status"] != "running", 10,
                            "the node away")
    assert seen["status"] == "running", seen
    pair.kill("restarted")
    again = pair.start("restarted")
    done = await ended(again, operation["id"])
    assert done["status"] == "succeeded" and done["result"] == {"status": 204}, done
    assert "followed again after a restart of the daemon" in messages(done), messages(done)
    assert messages(done)[-1] == "node back"


@pytest_twisted.ensureDeferred
async def test_two_daemons_one_store(sim: Core0Sim, pair: Pair) -> None:
    first, second = pair.start("first"), pair.start("second")
    nodeid = sim.entries[1].id
    await node_answers(first, nodeid)
    stream = await EventStreamClient.open(pair.urls["second"], f"/events?type=container.*&node={nodeid}")
    try:
        assert stream.status == 200
        name = unique("ct")
        base = f"/nodes/{nodeid}/containers"
        expect(await first.post(base, json=container_body(name)), 201)
        expect(await first.delete(f"{base}/{name}"), 204)
        try:
            events = await stream.take(2, timeout=20,
                                       accept=lambda e: e.data.get("resource") == f"{base}/{name}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the second daemon's output:\n{pair.output('second')}") from None
        assert [e.name for e in events] == ["container.created", "container.deleted"], events
        assert int(events[0].id or 0) < int(events[1].id or 0)
    finally:
        stream.close()
    # An operation accepted by the first daemon is answered by the second.
    reply = await first.post(f"/nodes/{nodeid}/reboot", headers=ASYNC)
    operation = body_of(reply, "GetOperation", 202)
    done = await ended(second, operation["id"])
    assert done["status"] == "succeeded" and done["id"] == operation["id"], done
    listed = body_of(await second.get("/operations", params={"operation": "RebootNode"}), "ListOperations")
    assert operation["id"] in [o["id"] for o in listed]


# A node's Redis stopped and started -----------------------------------------------------

NODE_A = "525400123456"
NODE_B = "525400123457"


#: rpoold's URL, the nodes' Redis servers and their agents.
OwnNodes = tuple[str, dict[str, RedisServer], dict[str, AgentOnRedis]]


@pytest_twisted.async_yield_fixture
async def own_nodes(tmp_path: Path) -> AsyncIterator[OwnNodes]:
    pool = Pool(reactor, nodes=2)
    servers = {nodeid: RedisServer().start() for nodeid in (NODE_A, NODE_B)}
    agents = {nodeid: await AgentOnRedis(server.port, node=pool.nodes[nodeid]).start()
              for nodeid, server in servers.items()}
    nodes = [{"id": nodeid, "host": "127.0.0.1", "port": server.port} for nodeid, server in servers.items()]
    config = daemon_config(tmp_path / "rpoold.toml", {"nodes": nodes, "timeout": 2.0}, "memory:", "alone")
    child, url = start_rpoold(config)
    try:
        yield url, servers, agents
    finally:
        child.stop()
        for agent in agents.values():
            await agent.stop()
        for server in servers.values():
            server.stop()


@pytest_twisted.ensureDeferred
async def test_a_nodes_redis_stopped_and_started_is_two_node_status_events(
        own_nodes: OwnNodes) -> None:
    url, servers, agents = own_nodes
    pool = Pool(reactor, nodes=2)
    api = Api.over_http(url)
    await node_answers(api, NODE_B)
    stream = await EventStreamClient.open(url, f"/events?type=node.status&node={NODE_B}")
    try:
        assert stream.status == 200
        await agents[NODE_B].stop()
        servers[NODE_B].stop()
        away = await stream.next(timeout=20)
        assert away.name == "node.status" and away.data["resource"] == f"/nodes/{NODE_B}", away
        assert away.data["data"]["status"] == "halted", away
        servers[NODE_B].start()
        agents[NODE_B] = await AgentOnRedis(servers[NODE_B].port, node=pool.nodes[NODE_B]).start()
        back = await stream.next(timeout=20)
        assert back.name == "node.status" and back.data["data"]["status"] == "running", back
        assert int(away.id or 0) < int(back.id or 0)
    finally:
        stream.close()
    # The other node never changed: no event of it on an unfiltered resume from before.
    again = await EventStreamClient.open(url, "/events?type=node.status", headers={"Last-Event-ID": "0"})
    try:
        replayed = await again.take(2, timeout=10)
        assert [e.data["resource"] for e in replayed] == [f"/nodes/{NODE_B}"] * 2, replayed
        assert [e.id for e in replayed] == [away.id, back.id]
    finally:
        again.close()
