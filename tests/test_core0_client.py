"""
The core0 client against a real ``redis-server``, answered by a small
in-process agent: scripted answers for the decode paths, a model node for
real commands.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted
import redis
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, gatherResults
from twisted.logger import formatEvent, globalLogPublisher

from plugins.core0.client import NodeClient
from plugins.core0.connection import CLIENT_NAME
from plugins.core0.kit.containers import ContainerIndex
from plugins.core0.protocol import CommandFailed, CommandTimedOut, Result
from plugins.poolsim.pool import SEED_CONTAINER, SEED_JOB, Pool
from rpoold.errors import BackendTimeout, BackendUnavailable, NotFound
from rpoold.nodes import NodeAddress
from rpoold.records import MemoryRecords
from testbed.core0_agent import AgentOnRedis, result
from testbed.ports import free_port, port_open
from testbed.processes import Child, wait_until
from testbed.redis_server import RedisServer
from tests.support.polling import wait_for

NODE = "525400123456"


@pytest.fixture(autouse=True)
def no_unhandled_errors() -> Iterator[None]:
    """Fail a test that leaves an error in a Deferred nobody handled."""
    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("isError") or "log_failure" in event:
            seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield
    gc.collect()
    globalLogPublisher.removeObserver(observe)
    assert not seen, seen


def client_for(port: int, *, pool_size: int = 4, timeout: float = 5.0, password: str = "",
               db: int = 0) -> NodeClient:
    address = NodeAddress(id=NODE, host="127.0.0.1", port=port, password=password, db=db)
    return NodeClient(address, pool_size=pool_size, timeout=timeout, reactor=reactor)


def our_connections(port: int, password: str | None = None) -> int:
    clients = redis.Redis(port=port, password=password).client_list()
    return sum(1 for c in clients if c.get("name") == CLIENT_NAME)


def blocking_pops(port: int) -> int:
    """How many blocking list pops the server has run (calls of ``BRPOPLPUSH`` and its kin)."""
    stats = redis.Redis(port=port).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
               for name in ("brpoplpush", "blmove", "brpop"))


def scripted(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Answers chosen by command name."""
    command = payload["command"]
    answers: dict[str, Any] = {
        "ok": lambda: result(payload, data={"a": 1}),
        "fails": lambda: result(payload, "ERROR", "container does not exist"),
        "crashes": lambda: result(payload, "ERROR", "", level=0, streams=["", "boom\nno such file\n"]),
        "slow": lambda: result(payload, "TIMEOUT", "", level=0, streams=["", ""]),
        "killed": lambda: result(payload, "KILLED", "", level=0, streams=["", ""]),
        "nosuch": lambda: result(payload, "UNKNOWN_CMD", "", level=0),
        "dup": lambda: result(payload, "DUPILICATE_ID", "duplicate job id", level=0),
        "dup2": lambda: result(payload, "DUPLICATE_ID", "duplicate job id", level=0),
        "silent": lambda: None,
    }
    return answers[command]()


@pytest_twisted.async_yield_fixture
async def script_agent(redis_server: RedisServer) -> AsyncIterator[AgentOnRedis]:
    agent = await AgentOnRedis(redis_server.port, script=scripted).start()
    yield agent
    await agent.stop()


@pytest_twisted.async_yield_fixture
async def model_agent(redis_server: RedisServer) -> AsyncIterator[AgentOnRedis]:
    pool = Pool(reactor, nodes=1, reboot_seconds=0.2)
    agent = await AgentOnRedis(redis_server.port, node=pool.nodes[NODE]).start()
    yield agent
    await agent.stop()


async def failure_of(d: Deferred[Any]) -> Exception:
    try:
        await d
    except Exception as e:
        return e
    raise AssertionError("the call succeeded")


# Decoding ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_success_is_decoded(redis_server: RedisServer, script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    try:
        assert await client.call("ok") == {"a": 1}
        assert script_agent.received[-1]["arguments"] == {}
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_states_become_errors(redis_server: RedisServer, script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    try:
        e = await failure_of(client.call("fails"))
        assert isinstance(e, CommandFailed) and e.status == 500
        assert e.detail == "container does not exist" and NODE in str(e)
        e = await failure_of(client.call("crashes"))
        assert isinstance(e, CommandFailed) and e.detail == "no such file"
        e = await failure_of(client.call("slow"))
        assert isinstance(e, CommandTimedOut) and e.status == 504
        e = await failure_of(client.call("killed"))
        assert isinstance(e, CommandFailed) and e.state == "KILLED"
        e = await failure_of(client.call("nosuch"))
        assert isinstance(e, CommandFailed) and "does not know the command 'nosuch'" in str(e)
        for name in ("dup", "dup2"):
            e = await failure_of(client.call(name))
            assert isinstance(e, CommandFailed) and "duplicate id" in str(e)
        assert await client.call("killed", accept=frozenset({"KILLED"})) == ""
    finally:
        await client.close()


def test_result_parsing() -> None:
    r = Result.parse('{"id": "x", "command": "zerotier.list", "data": "\\n[{\\"nwid\\": \\"a\\"}]",'
                     ' "level": 20, "state": "SUCCESS", "starttime": 5}', NODE)
    assert r.value() == [{"nwid": "a"}] and r.starttime == 5 and r.streams is None
    with pytest.raises(Exception, match="unreadable result"):
        Result.parse("[1, 2]", NODE)


# Faults --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_no_answer_times_out(redis_server: RedisServer, script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port, timeout=0.3)
    try:
        e = await failure_of(client.call("silent"))
        assert isinstance(e, BackendTimeout) and "did not answer 'silent' within 0.3 s" in str(e)
        # The connection that was waiting is closed, not reused.
        await wait_for(lambda: our_connections(redis_server.port) == 0, "connection closed")
        assert await client.call("ok") == {"a": 1}
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_calls_queued_behind_a_silent_node_time_out_as_silent(
        redis_server: RedisServer, script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port, pool_size=1, timeout=0.5)
    try:
        calls = [client.call("silent") for _ in range(4)]
        errors = [await failure_of(call) for call in calls]
        # The connection the first call closed at its deadline was the
        # node's; the calls behind it do not say the node is unreachable.
        assert all(isinstance(e, BackendTimeout) for e in errors), errors
        assert all("did not answer 'silent' within 0.5 s" in str(e) for e in errors), errors
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_unreachable_node() -> None:
    client = client_for(free_port(), timeout=2)
    try:
        e = await failure_of(client.call("ok"))
        assert isinstance(e, BackendUnavailable) and e.status == 502
        assert f"node '{NODE}' is unreachable" in str(e)
        assert client.pool.count == 0 and not client.pool.reached_within(2)
        assert await client.ping(0.5) is False
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_node_comes_back(redis_server: RedisServer) -> None:
    agent = await AgentOnRedis(redis_server.port, script=scripted).start()
    client = client_for(redis_server.port, timeout=2)
    try:
        assert await client.call("ok") == {"a": 1}
        await agent.stop()
        redis_server.stop()
        e = await failure_of(client.call("ok"))
        assert isinstance(e, BackendUnavailable)
        redis_server.start()
        agent = await AgentOnRedis(redis_server.port, script=scripted).start()
        assert await client.call("ok") == {"a": 1}
    finally:
        await agent.stop()
        await client.close()


@pytest_twisted.ensureDeferred
async def test_password_and_database() -> None:
    server = RedisServer(password="s3cret").start()
    agent = None
    try:
        agent = await AgentOnRedis(server.port, script=scripted, db=3, password="s3cret").start()
        client = client_for(server.port, password="s3cret", db=3)
        assert await client.call("ok") == {"a": 1}
        assert agent.received[-1]["command"] == "ok"
        await client.close()
        wrong = client_for(server.port, password="nope")
        e = await failure_of(wrong.call("ok"))
        assert isinstance(e, BackendUnavailable) and "auth" in str(e).lower()
        await wrong.close()
        missing = client_for(server.port)
        e = await failure_of(missing.call("ok"))
        assert isinstance(e, BackendUnavailable) and "refused access" in str(e)
        await missing.close()
    finally:
        if agent is not None:
            await agent.stop()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_pool_is_bounded(redis_server: RedisServer, model_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port, pool_size=3)
    try:
        answers = await gatherResults([client.call("info.mem") for _ in range(30)])
        assert len(answers) == 30 and all(a["total"] > 0 for a in answers)
        assert 1 <= our_connections(redis_server.port) == client.pool.count <= 3
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_cancelled_call_releases_its_connection(redis_server: RedisServer,
                                                      script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port, pool_size=1, timeout=30)
    try:
        blocked = client.call("silent")
        await wait_for(lambda: our_connections(redis_server.port) == 1, "connected")
        blocked.cancel()
        e = await failure_of(blocked)
        assert isinstance(e, CancelledError)
        # The only connection was waiting for a reply: it is closed, and the
        # next call gets a fresh one instead of the abandoned reply.
        assert await client.call("ok") == {"a": 1}
        assert client.pool.count == 1
    finally:
        await client.close()


# Jobs and containers -----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_peek_unknown_and_finished_jobs(redis_server: RedisServer, model_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    try:
        before = blocking_pops(redis_server.port)
        assert await client.peek("0ff1ce00-0000-4000-8000-000000000000") == (False, None)
        assert blocking_pops(redis_server.port) == before, "peek waited on Redis"
        done = await client.execute("info.os")
        flagged, found = await client.peek(done.id)
        assert flagged and found is not None and found.command == "info.os"
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_dispatch_into_container(redis_server: RedisServer, model_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    index = ContainerIndex(MemoryRecords(), reactor)
    node = model_agent.node
    assert node is not None
    try:
        jobs = (await index.run(client, SEED_CONTAINER, "job.list")).value()
        assert SEED_JOB in [j["cmd"]["id"] for j in jobs]
        inner = await index.run(client, SEED_CONTAINER, "core.system",
                                          {"name": "sleep", "args": ["30"]}, wait=False)
        assert inner in node.containers[9].jobs
        # The container is recreated: the cached id is stale and looked up again.
        arguments = node.containers[9].arguments
        node.containers[9].terminate()
        new_id = node.corex_create(**arguments)
        assert new_id != 9
        listed = (await index.run(client, SEED_CONTAINER, "job.list")).value()
        assert all(j["cmd"]["id"] != SEED_JOB for j in listed)
        with pytest.raises(NotFound):
            await index.run(client, "no_such_container", "core.ping")
    finally:
        await client.close()


# Shared runs of read-only commands ---------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_concurrent_reads_share_runs(redis_server: RedisServer, model_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    try:
        first = client.execute("info.mem")
        later = [client.execute("info.mem") for _ in range(19)]
        results = await gatherResults([first, *later])
        mems = [r for r in model_agent.received if r["command"] == "info.mem"]
        # The first caller's run, then one run for all who came while it was under way.
        assert len(mems) == 2
        assert results[0].id == mems[0]["id"]
        assert {r.id for r in results[1:]} == {mems[1]["id"]}
        assert all(r.value()["total"] > 0 for r in results)
        # Other arguments, other commands: not shared.
        await gatherResults([client.execute("process.list", {"pid": 100}) for _ in range(3)])
        assert len([r for r in model_agent.received if r["command"] == "process.list"]) == 3
    finally:
        await client.close()


def quiet_os(payload: dict[str, Any]) -> dict[str, Any] | None:
    return None if payload["command"] == "info.os" else scripted(payload)


@pytest_twisted.ensureDeferred
async def test_shared_run_nobody_waits_for_is_dropped(redis_server: RedisServer) -> None:
    agent = await AgentOnRedis(redis_server.port, script=quiet_os).start()
    client = client_for(redis_server.port, timeout=30)
    try:
        waiting = [client.execute("info.os") for _ in range(3)]
        await wait_for(lambda: our_connections(redis_server.port) == 1, "connected")
        for d in waiting:
            d.cancel()
        for d in waiting:
            assert isinstance(await failure_of(d), CancelledError)
        await wait_for(lambda: our_connections(redis_server.port) == 0, "connection closed")
        # A caller's own deadline holds even while it waits behind another run.
        e = await failure_of(client.execute("info.os", timeout=0.3))
        assert isinstance(e, BackendTimeout) and "within 0.3 s" in str(e)
        assert await client.call("ok") == {"a": 1}
    finally:
        await client.close()
        await agent.stop()


class ServerWithoutClientCommand(RedisServer):
    """A redis-server on which ``CLIENT`` (so ``CLIENT REPLY``) is not available."""

    def start(self) -> ServerWithoutClientCommand:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--rename-command", "CLIENT", ""]
        self.child = Child(argv)
        wait_until(lambda: port_open(self.port), 10.0, "redis-server", self.child.process)
        return self


@pytest_twisted.ensureDeferred
async def test_replies_are_skipped_only_where_the_server_can(redis_server: RedisServer,
                                                             script_agent: AgentOnRedis) -> None:
    client = client_for(redis_server.port)
    try:
        assert await client.call("ok") == {"a": 1}
        assert [c.reply_skip for c in client.pool.idle] == [True]
    finally:
        await client.close()
    server = ServerWithoutClientCommand().start()
    agent = await AgentOnRedis(server.port, script=scripted).start()
    client = client_for(server.port)
    try:
        assert await gatherResults([client.call("ok") for _ in range(5)]) == [{"a": 1}] * 5
        assert client.pool.idle and not any(c.reply_skip for c in client.pool.idle)
        e = await failure_of(client.call("fails"))
        assert isinstance(e, CommandFailed)
    finally:
        await client.close()
        await agent.stop()
        server.stop()


def test_the_client_keeps_the_command_client_contract() -> None:
    from zope.interface.verify import verifyObject

    from rpoold.nodes import ICommandClient

    client = client_for(free_port())
    assert verifyObject(ICommandClient, client)
