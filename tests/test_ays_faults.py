"""
Faults of the AYS backend, over real HTTP with real processes (rpoold,
ayssim, core0sim and its redis-server children):

- AYS down at start-up: rpoold starts, serves the other families, answers
  503 for the AYS ones, and recovers when AYS appears;
- AYS unreachable or stalling mid-request: 502 / 504, never a hang;
- a failing run: 500 whose error carries the run's logs, and the failed
  create leaves nothing behind;
- a run slower than the timeout: 202 with its operation (never 504 while
  the work goes on), which ends as the run does; what it does is completed
  (or undone) once it ends, so rpoold's view does not stay half-applied;
- run lookups lost for a while: the write rides the outage out and
  answers when its run ends;
- concurrent creates of one name: one 201, the others 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList, ensureDeferred

from testbed.ays_split import SplitEnvironment, http_json
from testbed.http_api import Api
from testbed.processes import wait_until
from tests.support.answers import body_of, error_of, expect
from tests.support.ays_split import Sim
from tests.support.backends import unique
from tests.support.polling import eventually

NODE = "525400123456"
RUN_TIMEOUT = 1.5
PATIENCE = 20.0


async def ended(api: Api, operation_id: str) -> dict[str, Any]:
    """``GET /operations/{id}?wait=``, asserting that it has ended."""
    body = body_of(await api.get(f"/operations/{operation_id}", params={"wait": str(PATIENCE)}),
                   "GetOperation")
    assert body["status"] in ("succeeded", "failed", "cancelled"), body
    return body


@pytest.fixture(scope="module")
def env() -> Iterator[SplitEnvironment]:
    environment = SplitEnvironment(request_timeout=1, run_timeout=RUN_TIMEOUT).start()
    try:
        yield environment
    finally:
        environment.stop()


@pytest.fixture
def api(env: SplitEnvironment) -> Api:
    return Api.over_http(env.url)


@pytest.fixture
def sim(env: SplitEnvironment) -> Iterator[Sim]:
    sim = Sim(env.ays_url)
    yield sim
    pytest_twisted.blockon(ensureDeferred(sim.clear_faults()))


def container(name: str) -> dict[str, Any]:
    return {"name": name, "hostname": name, "flist": "https://hub.example.org/alpine.flist",
            "nics": [{"type": "default"}]}


async def container_names(api: Api) -> list[str]:
    return [c["name"] for c in body_of(await api.get(f"/nodes/{NODE}/containers"), "ListContainers")]


# Start-up -------------------------------------------------------------------------------


def test_ays_down_at_start_up_then_appearing() -> None:
    """
    rpoold starts while AYS is down: the AYS families answer 503 (saying AYS
    is not ready), the direct families (core0, nodes from core0sim's list)
    keep serving, and once AYS appears the AYS families serve too.
    """
    environment = SplitEnvironment()
    try:
        environment.start_core0sim()
        environment.start_rpoold(wait_ready=False, nodes_file=True)
        code, body = http_json(f"{environment.url}/nodes")
        assert code == 503, (code, body)
        assert "not ready" in body["error"] and environment.ays_url in body["error"]
        code, body = http_json(f"{environment.url}/nodes/{NODE}/containers")
        assert code == 503, (code, body)
        code, body = http_json(f"{environment.url}/nodes/{NODE}/mem")
        assert code == 200 and body["total"] > 0, (code, body)
        environment.start_ayssim()
        wait_until(lambda: http_json(f"{environment.url}/nodes")[0] == 200, PATIENCE,
                   "rpoold serving the AYS families", environment.rpoold.process)
        code, body = http_json(f"{environment.url}/nodes/{NODE}")
        assert code == 200 and body["hostname"] == "core0node", (code, body)
        assert environment.rpoold.alive()
    finally:
        environment.stop()


def test_nodes_from_ays_wait_for_ays_at_start_up() -> None:
    """
    In the split deployment proper (core0 takes its nodes from AYS), the
    direct families answer 503 too until AYS appears, then serve.
    """
    environment = SplitEnvironment()
    try:
        environment.start_core0sim()
        environment.start_rpoold(wait_ready=False)
        code, body = http_json(f"{environment.url}/nodes/{NODE}/mem")
        assert code == 503 and "not ready" in body["error"], (code, body)
        environment.start_ayssim()
        wait_until(lambda: http_json(f"{environment.url}/nodes/{NODE}/mem")[0] == 200, PATIENCE,
                   "the direct families serving", environment.rpoold.process)
        code, body = http_json(f"{environment.url}/nodes/{NODE}/containers/vfw_21/jobs")
        assert code == 200 and body, (code, body)
    finally:
        environment.stop()


# AYS unreachable or stalling ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_dropped_connection_is_502(api: Api, sim: Sim) -> None:
    name = unique("drop")
    await sim.fail_endpoint(r"/ays/repository/objstor/aysrun", method="POST", drop=True)
    message = error_of(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 502,
                       "unreachable", "create a run")
    assert "Traceback" not in message


@pytest_twisted.ensureDeferred
async def test_an_ays_error_status_is_never_passed_through_bare(api: Api, sim: Sim) -> None:
    await sim.fail_endpoint(r"/ays/repository/objstor/service/container", method="GET",
                            status=500, body={"error": "disk full on the AYS host"})
    message = error_of(await api.get(f"/nodes/{NODE}/containers"), 500, "disk full on the AYS host")
    assert message != "500 Internal Server Error"


@pytest_twisted.ensureDeferred
async def test_a_stalled_ays_is_504_within_the_request_timeout(api: Api, sim: Sim) -> None:
    await sim.fail_endpoint(r"/ays/repository/objstor/service/node/.*", method="GET", stall=True)
    error_of(await api.get(f"/nodes/{NODE}"), 504, "did not answer within 1 s")


@pytest_twisted.ensureDeferred
async def test_a_stalled_write_is_504_and_does_not_block_later_writes(api: Api, sim: Sim) -> None:
    """A write stuck inside the blueprint sequence gives up and releases the write lock."""
    stuck, later = unique("stuck"), unique("later")
    await sim.fail_endpoint(r"/ays/repository/objstor/blueprint/container_stuck_.*", method="POST",
                            stall=True)
    error_of(await api.post(f"/nodes/{NODE}/containers", json=container(stuck)), 504,
             "did not answer within 1 s", "execute blueprint")
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(later)), 201)
    expect(await api.delete(f"/nodes/{NODE}/containers/{later}"), 204)
    await sim.clear_faults()
    # The stalled execute went through once released: the container exists
    # in AYS; nothing ran it (the run was never created), and a delete
    # cleans it up.
    async def known() -> int:
        return (await api.get(f"/nodes/{NODE}/containers/{stuck}")).status

    if await known() == 200:
        expect(await api.delete(f"/nodes/{NODE}/containers/{stuck}"), 204)


@pytest_twisted.ensureDeferred
async def test_ays_lost_while_waiting_for_a_run_is_502_then_settled(api: Api, sim: Sim) -> None:
    """
    AYS stops answering run lookups for a while: the run goes on in AYS, so
    the write does not give up (no 502 while its work goes on); it answers
    once the run ends, and the run's outcome is applied.
    """
    name = unique("lost")
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 201)
    await sim.fail_action("container", "stop", name, delay=0.5)
    await sim.fail_endpoint(r"/ays/repository/objstor/aysrun/.*", method="GET", drop=True, times=3)
    expect(await api.delete(f"/nodes/{NODE}/containers/{name}"), 204)

    async def names() -> list[str]:
        return await container_names(api)

    await eventually(names, lambda n: name not in n, PATIENCE, "the delete settled after the outage")


def test_ays_going_away_is_502_and_coming_back_serves_again(env: SplitEnvironment) -> None:
    env.stop_ayssim()
    try:
        code, body = http_json(f"{env.url}/nodes")
        assert code == 502, (code, body)
        assert "unreachable" in body["error"] and env.ays_url in body["error"]
    finally:
        env.start_ayssim()
    wait_until(lambda: http_json(f"{env.url}/nodes")[0] == 200, PATIENCE, "rpoold serving again")


# Runs that fail or take too long ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_failing_run_is_500_with_its_logs_and_leaves_nothing(api: Api, sim: Sim) -> None:
    name = unique("fail")
    await sim.fail_action("container", "install", name, error="flist unreachable: alpine.flist")
    message = error_of(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 500,
                       "flist unreachable: alpine.flist", f"container!{name} install")
    assert message.startswith("AYS run ")
    error_of(await api.get(f"/nodes/{NODE}/containers/{name}"), 404, name)
    assert name not in await container_names(api)
    assert await sim.service("container", name) is None
    # The name is free again.
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 201)
    expect(await api.delete(f"/nodes/{NODE}/containers/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_a_failing_state_change_is_500_and_does_not_fail_later_writes(api: Api, sim: Sim) -> None:
    name = unique("stopfail")
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 201)
    await sim.fail_action("container", "stop", name, error="container refuses to die")
    error_of(await api.post(f"/nodes/{NODE}/containers/{name}/stop"), 500,
             "container refuses to die")
    # AYS retries the failed stop with every later run; other writes are
    # judged by their own jobs.
    other = unique("after")
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(other)), 201)
    expect(await api.delete(f"/nodes/{NODE}/containers/{other}"), 204)
    expect(await api.delete(f"/nodes/{NODE}/containers/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_a_slow_create_is_202_and_completes_later(api: Api, sim: Sim) -> None:
    name = unique("slow")
    await sim.fail_action("container", "install", name, delay=RUN_TIMEOUT + 1.5)
    reply = await api.post(f"/nodes/{NODE}/containers", json=container(name))
    operation = body_of(reply, "GetOperation", 202)
    assert operation["status"] == "running" and reply.header("location") == f"/operations/{operation['id']}"
    # The create is under way: the name is taken, not created twice.
    error_of(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 409, name)

    async def status() -> str:
        reply = await api.get(f"/nodes/{NODE}/containers/{name}")
        return str(reply.json().get("status")) if reply.status == 200 else f"HTTP {reply.status}"

    await eventually(status, lambda s: s == "running", PATIENCE, "the slow create completing")
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"status": 201, "location": f"/nodes/{NODE}/containers/{name}"}, done
    expect(await api.delete(f"/nodes/{NODE}/containers/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_a_slow_create_that_fails_is_undone_later(api: Api, sim: Sim) -> None:
    name = unique("slowfail")
    await sim.fail_action("container", "install", name, delay=RUN_TIMEOUT + 1.0,
                          error="gave up late")
    reply = await api.post(f"/nodes/{NODE}/containers", json=container(name))
    operation = body_of(reply, "GetOperation", 202)

    async def known() -> int:
        return (await api.get(f"/nodes/{NODE}/containers/{name}")).status

    await eventually(known, lambda s: s == 404, PATIENCE, "the failed slow create undone")
    assert name not in await container_names(api)
    done = await ended(api, operation["id"])
    assert done["status"] == "failed" and "gave up late" in done["error"]["message"], done


@pytest_twisted.ensureDeferred
async def test_a_slow_delete_is_202_and_completes_later(api: Api, sim: Sim) -> None:
    name = unique("slowdel")
    expect(await api.post(f"/nodes/{NODE}/containers", json=container(name)), 201)
    await sim.fail_action("container", "stop", name, delay=RUN_TIMEOUT + 1.0)
    operation = body_of(await api.delete(f"/nodes/{NODE}/containers/{name}"), "GetOperation", 202)
    assert operation["operation"] == "DeleteContainer" and operation["status"] == "running", operation

    async def names() -> list[str]:
        return await container_names(api)

    await eventually(names, lambda n: name not in n, PATIENCE, "the slow delete completing")
    assert await sim.service("container", name) is None
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded" and done["result"] == {"status": 204}, done


# Concurrency ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_concurrent_creates_of_one_name_one_201_the_others_409(api: Api) -> None:
    name = unique("race")
    replies = await DeferredList([
        ensureDeferred(api.post(f"/nodes/{NODE}/containers", json=container(name)))
        for _ in range(6)], consumeErrors=True)
    statuses = sorted(reply.status for ok, reply in replies if ok)
    assert statuses == [201, 409, 409, 409, 409, 409], statuses
    assert (await container_names(api)).count(name) == 1
    expect(await api.delete(f"/nodes/{NODE}/containers/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_concurrent_writes_of_different_things_all_succeed(api: Api, sim: Sim) -> None:
    names = [unique("par") for _ in range(5)]
    replies = await DeferredList([
        ensureDeferred(api.post(f"/nodes/{NODE}/containers", json=container(n))) for n in names],
        consumeErrors=True)
    assert [reply.status for ok, reply in replies if ok] == [201] * 5
    listed = await container_names(api)
    assert set(names) <= set(listed)
    for n in names:
        assert body_of(await api.get(f"/nodes/{NODE}/containers/{n}"), "GetContainer")["status"] == "running"
    replies = await DeferredList([
        ensureDeferred(api.delete(f"/nodes/{NODE}/containers/{n}")) for n in names],
        consumeErrors=True)
    assert [reply.status for ok, reply in replies if ok] == [204] * 5
    # Each write had a blueprint of its own, none executed twice.
    posted = [b["name"] for b in await sim.blueprints()]
    assert len(posted) == len(set(posted))
    for n in names:
        assert sum(1 for b in posted if b.startswith(f"container_{n}_install_")) == 1
