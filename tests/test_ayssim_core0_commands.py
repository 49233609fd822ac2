"""
The AYS simulator's own core0 speaker (``plugins.ayssim.core0_commands``)
against a bare ``redis-server``, the test playing the node's agent: the
payloads it pushes, results in every state, commands in containers, the
deadline, the database and the password.  The whole path with core0sim's
agents is in ``tests/test_ayssim_core0sim.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from plugins.ayssim.core0_commands import Core0Commands
from plugins.ayssim.node_commands import CommandFailed, NodeAddress
from plugins.core0sim.resp import RespProtocol
from testbed.redis_server import RedisServer

PASSWORD = "s3cret"


def result(job: str, command: str, state: str = "SUCCESS", data: Any = None, level: int = 20,
           stderr: str = "", container: int = 0) -> str:
    """A core0 result object (level 20: ``data`` is JSON text; ``None``: no data)."""
    text = "" if data is None else json.dumps(data) if level == 20 else str(data)
    return json.dumps({"id": job, "command": command, "data": text, "streams": ["", stderr],
                       "level": level, "state": state, "starttime": 1, "time": 1, "tags": "",
                       "container": container})


class Agent:
    """The node's agent, one command at a time, on its own connection."""

    def __init__(self, conn: RespProtocol) -> None:
        self.conn = conn

    async def pop(self) -> dict[str, Any]:
        """The next command pushed on ``core:default``."""
        _, text = await self.conn.request("BLPOP", "core:default", 5)
        command: dict[str, Any] = json.loads(text)
        return command

    async def answer(self, job: str, text: str) -> None:
        await self.conn.request("RPUSH", f"result:{job}", text)

    async def serve(self, reply: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        """Pop one command and publish ``reply(command)`` as its result."""
        command = await self.pop()
        await self.answer(command["id"], reply(command))
        return command


async def connect(port: int, password: str | None = None, db: int = 0) -> RespProtocol:
    conn = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RespProtocol())
    await conn.handshake(password, db)
    return conn


@pytest_twisted.async_yield_fixture
async def agent(redis_server: RedisServer) -> AsyncIterator[Agent]:
    conn = await connect(redis_server.port)
    yield Agent(conn)
    assert conn.transport is not None
    conn.transport.loseConnection()


@pytest_twisted.async_yield_fixture
async def commands() -> AsyncIterator[Core0Commands]:
    speaker = Core0Commands(timeout=2.0)
    yield speaker
    await speaker.close()


@pytest_twisted.ensureDeferred
async def test_a_command_and_its_value(redis_server: RedisServer, agent: Agent,
                                       commands: Core0Commands) -> None:
    address = NodeAddress("127.0.0.1", redis_server.port, name="n1")
    answered = commands.execute(address, "info.os", {"x": 1})
    command = await agent.serve(lambda c: result(c["id"], c["command"], data={"hostname": "n1"}))
    assert await answered == {"hostname": "n1"}
    assert set(command) == {"id", "command", "arguments"}
    assert (command["command"], command["arguments"]) == ("info.os", {"x": 1})
    # The connection is kept: the next command needs no new one.
    before = set().union(*(n.open for n in commands.nodes.values()))
    answered = commands.execute(address, "core.system", {})
    await agent.serve(lambda c: result(c["id"], c["command"], data="text\n", level=1))
    assert await answered == "text\n"
    assert set().union(*(n.open for n in commands.nodes.values())) == before


@pytest.mark.parametrize(("state", "stderr", "data", "message"), [
    ("ERROR", "first\nno such file\n", None, "no such file"),
    ("ERROR", "", "no container with id '9'", "no container with id '9'"),
    ("KILLED", "", None, ""),
    ("UNKNOWN_CMD", "", "unknown command", "unknown command"),
    ("TIMEOUT", "", None, ""),
])
@pytest_twisted.ensureDeferred
async def test_a_failed_command_keeps_core0s_state(redis_server: RedisServer, agent: Agent,
                                                   commands: Core0Commands, state: str,
                                                   stderr: str, data: Any, message: str) -> None:
    address = NodeAddress("127.0.0.1", redis_server.port)
    answered = commands.execute(address, "core.system", {})
    await agent.serve(lambda c: result(c["id"], c["command"], state, data, stderr=stderr))
    with pytest.raises(CommandFailed) as caught:
        await answered
    assert (caught.value.command, caught.value.state, caught.value.message) == (
        "core.system", state, message)


@pytest_twisted.ensureDeferred
async def test_an_unreadable_result_is_an_error(redis_server: RedisServer, agent: Agent,
                                                commands: Core0Commands) -> None:
    answered = commands.execute(NodeAddress("127.0.0.1", redis_server.port), "info.os", {})
    await agent.serve(lambda c: "not json")
    with pytest.raises(CommandFailed) as caught:
        await answered
    assert caught.value.state == "ERROR" and "unreadable result" in caught.value.message


@pytest_twisted.ensureDeferred
async def test_no_result_in_time_is_a_timeout(redis_server: RedisServer, agent: Agent) -> None:
    commands = Core0Commands(timeout=0.3)
    address = NodeAddress("127.0.0.1", redis_server.port, name="slow")
    try:
        started = reactor.seconds()
        with pytest.raises(CommandFailed) as caught:
            await commands.execute(address, "info.os", {})
        assert caught.value.state == "TIMEOUT" and "slow" in caught.value.message
        assert reactor.seconds() - started < 2
        # The connection still blocked waiting for that result is not used
        # again: the next command goes out at once on another one.
        assert (await agent.pop())["command"] == "info.os"
        answered = commands.execute(address, "info.mem", {})
        command = await agent.serve(lambda c: result(c["id"], c["command"], data={"total": 1}))
        assert command["command"] == "info.mem"
        assert await answered == {"total": 1}
    finally:
        await commands.close()


@pytest_twisted.ensureDeferred
async def test_spawn_pushes_without_waiting(redis_server: RedisServer, agent: Agent,
                                            commands: Core0Commands) -> None:
    job = await commands.spawn(NodeAddress("127.0.0.1", redis_server.port), "core.reboot", {})
    command = await agent.pop()
    assert command == {"id": job, "command": "core.reboot", "arguments": {}}


@pytest_twisted.ensureDeferred
async def test_commands_in_a_container(redis_server: RedisServer, agent: Agent,
                                       commands: Core0Commands) -> None:
    address = NodeAddress("127.0.0.1", redis_server.port)
    answered = commands.execute(address, "info.os", {"a": 1}, container=3)
    dispatch = await agent.serve(lambda c: result(c["id"], c["command"], data="inner-1"))
    assert dispatch["command"] == "corex.dispatch"
    assert dispatch["arguments"] == {"container": 3, "command": {
        "command": "info.os", "arguments": {"a": 1}, "queue": "", "tags": ""}}
    await agent.answer("inner-1", result("inner-1", "info.os", data={"hostname": "c3"}, container=3))
    assert await answered == {"hostname": "c3"}

    spawned = commands.spawn(address, "core.system", {}, container=3)
    await agent.serve(lambda c: result(c["id"], c["command"], data="inner-2"))
    assert await spawned == "inner-2"

    refused = commands.execute(address, "info.os", {}, container=9)
    await agent.serve(lambda c: result(c["id"], c["command"], "ERROR", "container does not exist"))
    with pytest.raises(CommandFailed) as caught:
        await refused
    assert (caught.value.command, caught.value.state, caught.value.message) == (
        "info.os", "ERROR", "container does not exist")


@pytest_twisted.ensureDeferred
async def test_the_database_of_the_address(redis_server: RedisServer,
                                           commands: Core0Commands) -> None:
    conn = await connect(redis_server.port, db=3)
    try:
        answered = commands.execute(NodeAddress("127.0.0.1", redis_server.port, db=3), "info.os", {})
        await Agent(conn).serve(lambda c: result(c["id"], c["command"], data="db3"))
        assert await answered == "db3"
    finally:
        assert conn.transport is not None
        conn.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_the_password_of_the_address(commands: Core0Commands) -> None:
    server = RedisServer(password=PASSWORD).start()
    conn = await connect(server.port, password=PASSWORD)
    try:
        answered = commands.execute(NodeAddress("127.0.0.1", server.port, password=PASSWORD),
                                    "info.os", {})
        await Agent(conn).serve(lambda c: result(c["id"], c["command"], data="in"))
        assert await answered == "in"
        with pytest.raises(CommandFailed) as caught:
            await commands.execute(NodeAddress("127.0.0.1", server.port, password="wrong"),
                                   "info.os", {})
        assert caught.value.state == "UNREACHABLE" and "refused access" in caught.value.message
        with pytest.raises(CommandFailed) as caught:
            await commands.execute(NodeAddress("127.0.0.1", server.port), "info.os", {})
        assert caught.value.state == "UNREACHABLE" and "refused access" in caught.value.message
    finally:
        assert conn.transport is not None
        conn.transport.loseConnection()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_a_lost_connection_is_unreachable(commands: Core0Commands) -> None:
    server = RedisServer().start()
    address = NodeAddress("127.0.0.1", server.port)
    answered = commands.execute(address, "info.os", {})
    conn = await connect(server.port)
    try:
        await Agent(conn).pop()
    finally:
        assert conn.transport is not None
        conn.transport.loseConnection()
    server.stop()
    with pytest.raises(CommandFailed) as caught:
        await answered
    assert caught.value.state == "UNREACHABLE"
