"""
``core0sim --exec``: ``core.system`` and ``bash`` as real local processes
(``ExecPrograms``), served over a real redis-server child in the test's
reactor.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
import txredisapi
from twisted.internet import reactor
from twisted.internet.task import deferLater

from plugins.core0sim.link import Endpoint
from plugins.core0sim.node_agent import NodeAgent
from plugins.core0sim.programs import ExecPrograms
from plugins.poolsim.pool import SEED_NODE, Pool
from testbed.redis_server import RedisServer


class ExecSim:
    def __init__(self, redis: Any, runner: ExecPrograms, agent: NodeAgent) -> None:
        self.redis = redis
        self.runner = runner
        self.agent = agent

    async def push(self, command: str, arguments: dict[str, Any]) -> str:
        job = str(uuid.uuid4())
        await self.redis.rpush("core:default", json.dumps(
            {"id": job, "command": command, "arguments": arguments}))
        return job

    async def result(self, job: str) -> dict[str, Any]:
        raw = await self.redis.brpoplpush(f"result:{job}", f"result:{job}", 10)
        assert raw is not None, f"no result for {job}"
        decoded: dict[str, Any] = json.loads(raw)
        return decoded

    async def system(self, name: str, *args: str, **extra: Any) -> dict[str, Any]:
        return await self.result(await self.push("core.system", {"name": name, "args": list(args), **extra}))


@pytest_twisted.async_yield_fixture
async def sim(redis_server: RedisServer) -> AsyncIterator[ExecSim]:
    runner = ExecPrograms(reactor)
    pool = Pool(reactor, nodes=1, runner=runner)
    agent = NodeAgent(pool.nodes[SEED_NODE], Endpoint("127.0.0.1", redis_server.port))
    agent.startService()
    await agent.when_ready()
    redis = await txredisapi.Connection("127.0.0.1", redis_server.port, reconnect=False,
                                        convertNumbers=False)
    yield ExecSim(redis, runner, agent)
    runner.stop_all()
    await redis.disconnect()
    await agent.stopService()


async def gone(pgid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        await deferLater(reactor, 0.02)
    return False


@pytest_twisted.ensureDeferred
async def test_real_program_output(sim: ExecSim) -> None:
    result = await sim.system("uname", "-s")
    assert result["state"] == "SUCCESS"
    assert result["streams"] == [os.uname().sysname + "\n", ""]
    assert result["level"] == 0 and result["data"] == ""


@pytest_twisted.ensureDeferred
async def test_levels_streams_and_exit_status(sim: ExecSim) -> None:
    script = 'echo plain; echo "20::{\\"a\\": 1}"; echo oops >&2; echo; echo "9::bad"; exit 0'
    result = await sim.system("sh", "-c", script)
    assert result["state"] == "SUCCESS"
    assert result["streams"] == ["plain\n", "oops\n"]
    assert result["level"] == 20
    assert json.loads(result["data"]) == {"a": 1}
    assert result["critical"] == "bad"
    block = await sim.system("printf", "20:::\\n[1,\\n2]\\n:::\\n")
    assert block["data"] == "\n[1,\n2]"
    assert json.loads(block["data"]) == [1, 2]
    failed = await sim.result(await sim.push("bash", {"script": "echo out; exit 3"}))
    assert failed["state"] == "ERROR"
    assert failed["streams"][0] == "out\n"


@pytest_twisted.ensureDeferred
async def test_stdin_env_and_directory(sim: ExecSim) -> None:
    assert (await sim.system("cat", stdin="abc\ndef\n"))["streams"][0] == "abc\ndef\n"
    assert (await sim.system("sh", "-c", "echo $FOO", env={"FOO": "bar"}))["streams"][0] == "bar\n"
    assert (await sim.system("pwd", dir="/"))["streams"][0] == "/\n"


@pytest_twisted.ensureDeferred
async def test_spawn_failures(sim: ExecSim) -> None:
    missing = await sim.system("no-such-program-here")
    assert missing["state"] == "ERROR"
    assert "streams" not in missing
    assert "no-such-program-here" in missing["data"]
    bad_dir = await sim.system("pwd", dir="/no/such/dir")
    assert bad_dir["state"] == "ERROR"
    assert "streams" not in bad_dir


async def started_program(sim: ExecSim) -> int:
    """The process group of the one program running."""
    deadline = time.monotonic() + 10
    while not sim.runner.running:
        assert time.monotonic() < deadline, "the program did not start"
        await deferLater(reactor, 0.02)
    (program,) = sim.runner.running.values()
    assert program.pid is not None
    return program.pid


@pytest_twisted.ensureDeferred
async def test_killed_job_kills_the_process_group(sim: ExecSim) -> None:
    job = await sim.push("core.system", {"name": "sh", "args": ["-c", "sleep 30 & sleep 30; wait"]})
    pgid = await started_program(sim)
    deadline = time.monotonic() + 10
    while os.getpgid(pgid) != pgid:  # the program leads its own group once setsid ran
        assert time.monotonic() < deadline, "the program did not get its own process group"
        await deferLater(reactor, 0.02)
    await sim.redis.rpush("core:default", json.dumps(
        {"id": str(uuid.uuid4()), "command": "job.kill", "arguments": {"id": job, "signal": 15}}))
    assert (await sim.result(job))["state"] == "KILLED"
    assert await gone(pgid), "the program's process group survived the kill"


@pytest_twisted.ensureDeferred
async def test_timeout_kills_the_program(sim: ExecSim) -> None:
    job = str(uuid.uuid4())
    await sim.redis.rpush("core:default", json.dumps({
        "id": job, "command": "core.system", "max_time": 1,
        "arguments": {"name": "sleep", "args": ["30"]}}))
    pgid = await started_program(sim)
    assert (await sim.result(job))["state"] == "TIMEOUT"
    assert await gone(pgid), "the program survived its timeout"


@pytest_twisted.ensureDeferred
async def test_other_signals_reach_the_program(sim: ExecSim, tmp_path: Path) -> None:
    armed = tmp_path / "armed"
    script = f"trap 'echo got-usr1; exit 0' USR1; touch {armed}; while true; do sleep 0.05; done"
    job = await sim.push("bash", {"script": script})
    await started_program(sim)
    deadline = time.monotonic() + 10
    while not armed.exists():
        assert time.monotonic() < deadline, "the script did not set its trap"
        await deferLater(reactor, 0.02)
    await sim.redis.rpush("core:default", json.dumps(
        {"id": str(uuid.uuid4()), "command": "job.kill", "arguments": {"id": job, "signal": 10}}))
    result = await sim.result(job)
    assert result["state"] == "SUCCESS"
    assert result["streams"][0] == "got-usr1\n"
