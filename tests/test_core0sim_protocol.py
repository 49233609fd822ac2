"""
The core0 simulator's side of the protocol (protocol reference, 1.2-1.4,
2, 4.2, 7.1), run in the test's reactor against a real redis-server
child, driven by an independent Redis client (txredisapi).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest_twisted
import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import deferLater

from plugins.core0sim.link import Endpoint
from plugins.core0sim.node_agent import NodeAgent
from plugins.poolsim.pool import SEED_CONTAINER_ID, SEED_JOB, SEED_NODE, Pool
from testbed.redis_server import RedisServer

DEADLINE = 10.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``check`` until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await deferLater(reactor, 0.02)


@dataclass
class Sim:
    pool: Pool
    agent: NodeAgent
    redis: Any
    server: RedisServer

    @property
    def node(self) -> Any:
        return self.pool.nodes[SEED_NODE]

    async def push(self, command: str, arguments: Any = None, job_id: str | None = None,
                   **extra: Any) -> str:
        job_id = job_id or str(uuid.uuid4())
        payload = {"id": job_id, "command": command, "arguments": {} if arguments is None else arguments}
        payload.update(extra)
        await self.redis.rpush("core:default", json.dumps(payload))
        return job_id

    async def result(self, job_id: str, timeout: int = 10) -> dict[str, Any]:
        key = f"result:{job_id}"
        raw = await self.redis.brpoplpush(key, key, timeout)
        assert raw is not None, f"no result for {job_id}"
        decoded: dict[str, Any] = json.loads(raw)
        return decoded

    async def call(self, command: str, arguments: Any = None, **extra: Any) -> dict[str, Any]:
        return await self.result(await self.push(command, arguments, **extra))

    async def data(self, command: str, arguments: Any = None) -> Any:
        result = await self.call(command, arguments)
        assert result["state"] == "SUCCESS", result
        assert result["level"] == 20
        return json.loads(result["data"])

    async def flagged(self, job_id: str) -> bool:
        return bool(await self.redis.exists(f"result:{job_id}:flag"))

    async def running_ids(self) -> list[str]:
        return [job["cmd"]["id"] for job in await self.data("job.list")]


async def connect(port: int, password: str | None = None, db: int = 0) -> Any:
    return await txredisapi.Connection("127.0.0.1", port, dbid=db, reconnect=False,
                                       password=password, convertNumbers=False)


async def start_sim(server: RedisServer, db: int = 0, reboot_seconds: float = 0.3) -> Sim:
    pool = Pool(reactor, nodes=1, reboot_seconds=reboot_seconds)
    agent = NodeAgent(pool.nodes[SEED_NODE], Endpoint("127.0.0.1", server.port, db, server.password))
    agent.startService()
    await agent.when_ready()
    return Sim(pool, agent, await connect(server.port, server.password, db), server)


@pytest_twisted.async_yield_fixture
async def sim(redis_server: RedisServer) -> AsyncIterator[Sim]:
    s = await start_sim(redis_server)
    yield s
    await s.redis.disconnect()
    await s.agent.stopService()


class _Monitor(Protocol):
    """Records every command Redis executes (``MONITOR``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started: Deferred[None] = Deferred()
        self._partial = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"MONITOR\r\n")

    def dataReceived(self, data: bytes) -> None:
        parts = (self._partial + data).split(b"\r\n")
        self._partial = parts.pop()
        for part in parts:
            if part == b"+OK" and not self.started.called:
                self.started.callback(None)
            else:
                self.lines.append(part.decode("utf-8", "replace"))

    def commands(self) -> list[str]:
        """Each command as ``"CMD" "arg" ...``, in execution order."""
        return [line.split("] ", 1)[1] for line in self.lines if "] " in line]

    async def seen(self, prefix: str) -> list[str]:
        """The commands so far, once one starting with ``prefix`` has run."""

        async def check() -> bool:
            return any(c.startswith(prefix) for c in self.commands())

        await eventually(check, prefix)
        assert self.transport is not None
        self.transport.loseConnection()
        return self.commands()


async def monitor(port: int) -> _Monitor:
    factory = ClientFactory.forProtocol(_Monitor)
    connected: Deferred[_Monitor] = Deferred()
    factory.buildProtocol = lambda addr: _monitor_built(connected)  # type: ignore[method-assign]
    reactor.connectTCP("127.0.0.1", port, factory)  # type: ignore[attr-defined]
    protocol = await connected
    await protocol.started
    return protocol


def _monitor_built(connected: Deferred[_Monitor]) -> _Monitor:
    protocol = _Monitor()
    connected.callback(protocol)
    return protocol


def index_of(commands: list[str], prefix: str) -> int:
    for index, command in enumerate(commands):
        if command.startswith(prefix):
            return index
    raise AssertionError(f"{prefix} not executed; saw {commands}")


# Flag key and result ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_flag_states_and_result_retention(sim: Sim) -> None:
    redis = sim.redis
    unknown = str(uuid.uuid4())
    assert await redis.ttl(f"result:{unknown}:flag") == -2
    job = await sim.push("core.system", {"name": "sleep", "args": ["30"]})

    await eventually(lambda: sim.flagged(job), "the pickup flag")
    flag = f"result:{job}:flag"
    assert await redis.type(flag) == "list"
    assert await redis.ttl(flag) == -1
    assert await redis.rpoplpush(flag, flag) == ""
    assert not await redis.exists(f"result:{job}")

    assert await sim.data("job.kill", {"id": job, "signal": 9}) is True
    result = await sim.result(job)
    assert result["state"] == "KILLED"
    assert 0 < await redis.ttl(flag) <= 300
    assert 0 < await redis.ttl(f"result:{job}") <= 300
    # Readable again and again: one element, rotated onto itself.
    assert await redis.llen(f"result:{job}") == 1
    assert json.loads(await redis.rpoplpush(f"result:{job}", f"result:{job}")) == result
    assert (await sim.result(job))["id"] == job


@pytest_twisted.ensureDeferred
async def test_result_shape_of_a_builtin(sim: Sim) -> None:
    job = str(uuid.uuid4())
    before = int(time.time() * 1000)
    result = await sim.result(await sim.push("info.mem", job_id=job, tags="mytag"))
    assert set(result) == {"id", "command", "data", "streams", "level", "state",
                           "starttime", "time", "tags", "container"}
    assert result["id"] == job
    assert result["command"] == "info.mem"
    assert result["state"] == "SUCCESS"
    assert result["level"] == 20
    assert result["streams"] == ["", ""]
    assert result["tags"] == "mytag"
    assert result["container"] == 0
    assert isinstance(result["time"], int)
    assert before - 1000 <= result["starttime"] <= int(time.time() * 1000)
    mem = json.loads(result["data"])
    assert mem["total"] > mem["available"] > 0
    assert isinstance(mem["usedPercent"], float)


@pytest_twisted.ensureDeferred
async def test_builtin_error_is_a_json_string(sim: Sim) -> None:
    result = await sim.call("corex.terminate", {"container": 77})
    assert result["state"] == "ERROR"
    assert result["level"] == 20
    assert json.loads(result["data"]) == "no container with id '77'"


@pytest_twisted.ensureDeferred
async def test_publishing_order(sim: Sim) -> None:
    watch = await monitor(sim.server.port)
    job = await sim.push("core.ping")
    await sim.result(job)
    commands = await watch.seen(f'"EXPIRE" "result:{job}" "300"')
    flag = index_of(commands, f'"RPUSH" "result:{job}:flag" ""')
    expire_flag = index_of(commands, f'"EXPIRE" "result:{job}:flag" "300"')
    push = index_of(commands, f'"RPUSH" "result:{job}" ')
    expire = index_of(commands, f'"EXPIRE" "result:{job}" "300"')
    assert flag < expire_flag < push < expire
    assert not any(c.startswith(('"DEL"', '"SET"', '"UNLINK"')) for c in commands)


@pytest_twisted.ensureDeferred
async def test_fifo(sim: Sim) -> None:
    # Each exists depends on the commands before it: only FIFO order
    # gives true, then false.
    jobs = []
    payloads = []
    for n in range(15):
        path = f"/tmp/fifo{n}"
        for command, arguments in (("filesystem.mkdir", {"path": path}),
                                   ("filesystem.exists", {"path": path}),
                                   ("filesystem.remove", {"path": path}),
                                   ("filesystem.exists", {"path": path})):
            job = str(uuid.uuid4())
            jobs.append(job)
            payloads.append(json.dumps({"id": job, "command": command, "arguments": arguments}))
    await sim.redis.rpush("core:default", payloads)
    answers = [json.loads((await sim.result(job))["data"]) for job in jobs]
    assert answers == [None, True, None, False] * 15


@pytest_twisted.ensureDeferred
async def test_process_result_shape(sim: Sim) -> None:
    result = await sim.call("core.system", {"name": "echo", "args": ["hello", "world"]})
    assert result["state"] == "SUCCESS"
    assert result["level"] == 0
    assert result["data"] == ""
    assert result["streams"] == ["hello world\n", ""]
    failed = await sim.call("bash", {"script": "echo out; exit 3"})
    assert failed["state"] == "ERROR"
    assert failed["command"] == "bash"
    assert failed["streams"][0] == "out\n"


@pytest_twisted.ensureDeferred
async def test_max_time_gives_timeout(sim: Sim) -> None:
    result = await sim.call("core.system", {"name": "sleep", "args": ["30"]}, max_time=1)
    assert result["state"] == "TIMEOUT"


# Dispatch --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_dispatch_flags_inner_job_before_answering(sim: Sim) -> None:
    watch = await monitor(sim.server.port)
    dispatch = await sim.push("corex.dispatch", {
        "container": SEED_CONTAINER_ID,
        "command": {"id": "ignored", "command": "info.os", "arguments": {}},
    })
    outer = await sim.result(dispatch)
    assert outer["state"] == "SUCCESS"
    assert outer["level"] == 20
    assert outer["container"] == 0
    inner_id = json.loads(outer["data"])
    assert isinstance(inner_id, str) and inner_id != "ignored"
    uuid.UUID(inner_id)
    inner = await sim.result(inner_id)
    assert inner["id"] == inner_id
    assert inner["command"] == "info.os"
    assert inner["container"] == SEED_CONTAINER_ID
    assert json.loads(inner["data"])["hostname"] == "vfw_21"
    commands = await watch.seen(f'"EXPIRE" "result:{inner_id}" "300"')
    assert index_of(commands, f'"RPUSH" "result:{inner_id}:flag" ""') \
        < index_of(commands, f'"RPUSH" "result:{dispatch}" ')


@pytest_twisted.ensureDeferred
async def test_dispatch_errors(sim: Sim) -> None:
    for container, message in ((0, "invalid container id"), (404, "container does not exist")):
        result = await sim.call("corex.dispatch", {"container": container,
                                                   "command": {"command": "core.ping", "arguments": {}}})
        assert result["state"] == "ERROR"
        assert json.loads(result["data"]) == message


@pytest_twisted.ensureDeferred
async def test_unknown_command_inside_a_container_is_published(sim: Sim) -> None:
    inner_id = await sim.data("corex.dispatch", {"container": SEED_CONTAINER_ID,
                                                 "command": {"command": "disk.list", "arguments": {}}})
    inner = await sim.result(inner_id)
    assert inner["state"] == "UNKNOWN_CMD"
    assert inner["container"] == SEED_CONTAINER_ID


# Rejected commands and dropped payloads --------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unknown_command(sim: Sim) -> None:
    job = await sim.push("process.killall")
    result = await sim.result(job)
    assert result["state"] == "UNKNOWN_CMD"
    assert result["level"] == 0
    assert result["data"] == ""
    assert result["starttime"] == 0 and result["time"] == 0
    assert "streams" not in result
    assert 0 < await sim.redis.ttl(f"result:{job}:flag") <= 300


@pytest_twisted.ensureDeferred
async def test_duplicate_id_answers_on_the_same_key(sim: Sim) -> None:
    job = await sim.push("core.system", {"name": "sleep", "args": ["30"]})
    await eventually(lambda: sim.flagged(job), "the first job's flag")
    await sim.push("core.ping", job_id=job)
    duplicate = await sim.result(job)
    assert duplicate["state"] == "DUPILICATE_ID"
    assert duplicate["data"] == "duplicate job id"
    assert duplicate["command"] == "core.ping"
    assert duplicate["starttime"] == 0
    assert job in await sim.running_ids()
    await sim.data("job.kill", {"id": job})

    async def both() -> bool:
        return bool(await sim.redis.llen(f"result:{job}") == 2)

    await eventually(both, "the first job's own result")
    states = [json.loads(r)["state"] for r in await sim.redis.lrange(f"result:{job}", 0, -1)]
    assert states == ["DUPILICATE_ID", "KILLED"]


@pytest_twisted.ensureDeferred
async def test_undecodable_payloads_are_dropped(sim: Sim) -> None:
    bad = {
        "not-json": "this is not json",
        "tags-list": json.dumps({"id": "tags-list", "command": "core.ping", "arguments": {}, "tags": ["a"]}),
        "max-time-text": json.dumps({"id": "max-time-text", "command": "core.ping", "arguments": {},
                                     "max_time": "10"}),
        "array": json.dumps(["core.ping"]),
    }
    await sim.redis.rpush("core:default", [
        bad["not-json"], bad["tags-list"], bad["max-time-text"], bad["array"],
        json.dumps({"command": "core.ping", "arguments": {}}),
        json.dumps({"id": "", "command": "core.ping", "arguments": {}}),
        json.dumps({"id": 42, "command": "core.ping", "arguments": {}}),
    ])
    # FIFO: once this is answered, every payload before it has been seen.
    good = await sim.call("core.ping")
    assert good["state"] == "SUCCESS"
    for job_id in ("tags-list", "max-time-text", "42", ""):
        assert not await sim.redis.exists(f"result:{job_id}")
        assert not await sim.redis.exists(f"result:{job_id}:flag")
    assert await sim.redis.llen("core:default") == 0
    keys = await sim.redis.keys("result:*")
    assert all(good["id"] in key for key in keys), keys


@pytest_twisted.ensureDeferred
async def test_null_fields_and_unknown_fields_are_accepted(sim: Sim) -> None:
    job = str(uuid.uuid4())
    await sim.redis.rpush("core:default", json.dumps({
        "id": job, "command": "core.ping", "arguments": {}, "queue": None, "max_time": None,
        "tags": None, "log_levels": [1, 2], "stats_interval": 0, "something": {"new": True}}))
    result = await sim.result(job)
    assert result["state"] == "SUCCESS"
    assert result["tags"] == ""


@pytest_twisted.ensureDeferred
async def test_missing_arguments_is_an_error(sim: Sim) -> None:
    job = str(uuid.uuid4())
    await sim.redis.rpush("core:default", json.dumps({"id": job, "command": "job.list"}))
    assert (await sim.result(job))["state"] == "ERROR"


# Jobs --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_job_list_is_truthful(sim: Sim) -> None:
    job = str(uuid.uuid4())
    listed = json.loads((await sim.result(await sim.push("job.list", job_id=job)))["data"])
    ids = {entry["cmd"]["id"]: entry for entry in listed}
    assert job in ids  # the job.list job itself
    assert ids[job]["cmd"]["command"] == "job.list"
    assert "redis.public" in ids
    assert ids[f"core-{SEED_CONTAINER_ID}"]["cmd"]["command"] == ""
    for entry in listed:
        assert set(entry) == {"cpu", "rss", "vms", "swap", "debug", "starttime", "cmd"}

    container = await sim.data("corex.create", {"root": "https://hub.example.org/a.flist", "tags": ["t1"]})
    assert f"core-{container}" in await sim.running_ids()
    one = await sim.data("job.list", {"id": f"core-{container}"})
    assert [entry["cmd"]["id"] for entry in one] == [f"core-{container}"]
    missing = await sim.call("job.list", {"id": "nope"})
    assert missing["state"] == "ERROR"
    assert json.loads(missing["data"]) == "Process with id 'nope' doesn't exist"


@pytest_twisted.ensureDeferred
async def test_long_job_listed_until_killed(sim: Sim) -> None:
    job = await sim.push("core.system", {"name": "sleep", "args": ["30"]})
    await eventually(lambda: sim.flagged(job), "the sleep to start")
    listed = await sim.data("job.list", {"id": job})
    assert listed[0]["cmd"]["arguments"] == {"name": "sleep", "args": ["30"]}
    # Still listed after a shorter sleep has come and gone: it lasts as long as asked.
    short = await sim.call("core.system", {"name": "sleep", "args": ["0.2"]})
    assert short["state"] == "SUCCESS"
    assert job in await sim.running_ids()
    assert await sim.data("job.kill", {"id": job, "signal": 15}) is True
    assert (await sim.result(job))["state"] == "KILLED"
    assert job not in await sim.running_ids()
    assert await sim.data("job.kill", {"id": job, "signal": 9}) is False


@pytest_twisted.ensureDeferred
async def test_killall(sim: Sim) -> None:
    sleeper = await sim.push("core.system", {"name": "sleep", "args": ["30"]})
    await eventually(lambda: sim.flagged(sleeper), "the sleep to start")
    killall = await sim.call("job.killall")
    assert killall["state"] == "KILLED"
    assert killall["data"] == ""
    assert (await sim.result(sleeper))["state"] == "KILLED"
    runner = await sim.result(f"core-{SEED_CONTAINER_ID}")
    assert runner["state"] == "KILLED"
    assert runner["command"] == ""
    inner = await sim.result(SEED_JOB)
    assert inner["state"] == "KILLED"
    assert inner["container"] == SEED_CONTAINER_ID
    assert await sim.data("corex.list") == {}
    left = [job for job in await sim.data("job.list") if job["cmd"]["id"] != "redis.public"]
    assert [job["cmd"]["command"] for job in left] == ["job.list"]


@pytest_twisted.ensureDeferred
async def test_queue_runs_one_at_a_time(sim: Sim) -> None:
    first = await sim.push("core.system", {"name": "sleep", "args": ["30"]}, queue="q")
    second = await sim.push("core.ping", queue="q")
    other = await sim.call("core.ping", queue="other")
    assert other["state"] == "SUCCESS"
    assert await sim.flagged(second)
    assert await sim.redis.ttl(f"result:{second}:flag") == -1
    assert not await sim.redis.exists(f"result:{second}")
    await sim.data("job.kill", {"id": first})
    assert (await sim.result(second))["state"] == "SUCCESS"


# Reboot ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_reboot_never_answers_and_queued_commands_wait(sim: Sim) -> None:
    booted: list[int] = []
    sim.node.reboot_listeners.append(lambda node: booted.append(int(time.time() * 1000)))
    sleeper = await sim.push("core.system", {"name": "sleep", "args": ["30"]})
    await eventually(lambda: sim.flagged(sleeper), "the sleep to start")
    reboot = str(uuid.uuid4())
    ping = str(uuid.uuid4())
    await sim.redis.rpush("core:default", [
        json.dumps({"id": reboot, "command": "core.reboot", "arguments": {}}),
        json.dumps({"id": ping, "command": "core.ping", "arguments": {}}),
    ])
    assert (await sim.result(sleeper))["state"] == "KILLED"
    answer = await sim.result(ping)
    assert answer["state"] == "SUCCESS"
    assert booted, "the ping was answered before the node came back"
    assert answer["starttime"] >= booted[0] - 1
    assert not await sim.redis.exists(f"result:{reboot}")
    assert await sim.redis.ttl(f"result:{reboot}:flag") == -1
    # Containers come back with the node.
    assert str(SEED_CONTAINER_ID) in await sim.data("corex.list")


# Connections -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_reconnects_after_redis_restarts(sim: Sim) -> None:
    sleeper = await sim.push("core.system", {"name": "sleep", "args": ["30"]})
    await eventually(lambda: sim.flagged(sleeper), "the sleep to start")
    await sim.redis.disconnect()
    port = sim.server.port
    sim.server.stop()
    # The job ends while Redis is away: its result is written once it is back.
    sim.node.job_kill(sleeper, 9)
    sim.server.start()
    assert sim.server.port == port
    sim.redis = await connect(port)
    assert (await sim.call("core.ping"))["state"] == "SUCCESS"
    assert (await sim.result(sleeper))["state"] == "KILLED"


@pytest_twisted.ensureDeferred
async def test_password_and_database_index() -> None:
    server = RedisServer(password="s3cret").start()
    try:
        s = await start_sim(server, db=3)
        try:
            assert (await s.call("core.ping"))["state"] == "SUCCESS"
            other = await connect(server.port, "s3cret", 0)
            assert await other.dbsize() == 0
            await other.disconnect()
        finally:
            await s.redis.disconnect()
            await s.agent.stopService()
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_stopped_agent_leaves_the_queue_alone(sim: Sim) -> None:
    await sim.agent.stopService()
    job = await sim.push("core.ping")
    assert await sim.redis.llen("core:default") == 1
    assert not await sim.flagged(job)
    agent = NodeAgent(sim.node, sim.agent.endpoint)
    agent.startService()
    sim.agent = agent
    assert (await sim.result(job))["state"] == "SUCCESS"
