"""
Operations on the AYS backend, over real HTTP, in the split deployment
(``twistd`` rpoold, ayssim and core0sim as processes, the operations in an
SQLite store): ayssim's ``/_sim/`` controls make runs slow or fail.

- a create with ``Prefer: respond-async``: 202, then ``succeeded`` with the
  created resource's ``Location``, the run's steps in the operation;
- a run slower than ``run_timeout`` without the header: 202 with the
  operation, never 504, and it succeeds later;
- a failed run: ``failed`` with the failed job's logs;
- a write cancelled while it waits for its turn: ``cancelled``, and nothing
  of it in AYS (no blueprint, no service);
- a reboot: ends when the node answers again;
- a daemon killed mid-operation and started again: the run is followed to
  its end.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted

from testbed.ays_split import SplitEnvironment
from testbed.http_api import Api
from tests.support.answers import body_of, expect
from tests.support.ays_split import Sim
from tests.support.backends import SEED_NODE, unique
from tests.support.polling import eventually

ASYNC = {"Prefer": "respond-async"}
RUN_TIMEOUT = 2.0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def env() -> Iterator[SplitEnvironment]:
    environment = SplitEnvironment(
        run_timeout=RUN_TIMEOUT, follow_timeout=60,
        sections={"store": {"url": "sqlite:///operations.db"},
                  "operations": {"owner": "ays-test-daemon", "lease": 5},
                  "events": {"node_interval": 0}})
    environment.start()
    yield environment
    environment.stop()


@pytest_twisted.async_yield_fixture
async def api(env: SplitEnvironment) -> AsyncIterator[Api]:
    yield Api.over_http(env.url)
    await Sim(env.ays_url).clear_faults()


def bridge(name: str) -> dict[str, Any]:
    return {"name": name, "networkMode": "none"}


async def ended(api: Api, operation_id: str, wait: float = 30) -> dict[str, Any]:
    body = body_of(await api.get(f"/operations/{operation_id}", params={"wait": str(wait)}), "GetOperation")
    assert body["status"] in ("succeeded", "failed", "cancelled"), body
    return body


@pytest_twisted.ensureDeferred
async def test_async_create_succeeds_with_its_location(api: Api) -> None:
    name = unique("br")
    reply = await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(name), headers=ASYNC)
    operation = body_of(reply, "GetOperation", 202)
    assert reply.header("preference-applied") == "respond-async"
    assert reply.header("location") == f"/operations/{operation['id']}"
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded", done
    location = f"/nodes/{SEED_NODE}/bridges/{name}"
    assert done["result"] == {"status": 201, "location": location}
    runs = [s["data"] for s in done["steps"] if s.get("data", {}).get("run")]
    assert runs and runs[-1]["state"] == "ok", done["steps"]
    assert any(job["job"] == f"bridge!{name} install" and job["state"] == "ok"
               for step in runs[-1]["steps"] for job in step["jobs"]), runs[-1]
    expect(await api.get(location), 200)
    expect(await api.delete(location), 204)


@pytest_twisted.ensureDeferred
async def test_a_slow_run_answers_202_not_504(env: SplitEnvironment, api: Api) -> None:
    name = unique("br")
    await Sim(env.ays_url).fail_action("bridge", "install", instance=name, delay=RUN_TIMEOUT + 2)
    reply = await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(name))
    operation = body_of(reply, "GetOperation", 202)
    assert operation["status"] == "running" and reply.header("preference-applied") is None
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded" and done["result"]["status"] == 201, done
    expect(await api.delete(f"/nodes/{SEED_NODE}/bridges/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_a_failed_run_fails_with_the_job_logs(env: SplitEnvironment, api: Api) -> None:
    name = unique("br")
    await Sim(env.ays_url).fail_action("bridge", "install", instance=name, error="the bridge melted")
    reply = await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(name), headers=ASYNC)
    done = await ended(api, body_of(reply, "GetOperation", 202)["id"])
    assert done["status"] == "failed", done
    error = done["error"]
    assert error["status"] == 500 and "the bridge melted" in error["message"]
    [job] = error["logs"]
    assert job["job"] == f"bridge!{name} install" and any("the bridge melted" in line for line in job["logs"])
    # A failed create is undone: the name is free.
    expect(await api.get(f"/nodes/{SEED_NODE}/bridges/{name}"), 404)


@pytest_twisted.ensureDeferred
async def test_cancel_before_the_run_starts_leaves_nothing(env: SplitEnvironment, api: Api) -> None:
    sim = Sim(env.ays_url)
    first, second = unique("br"), unique("br")
    # The first write stalls while it posts its blueprint, holding the repository's lock.
    await sim.fail_endpoint(r"/ays/repository/objstor/blueprint", method="POST", stall=True)
    holding = body_of(await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(first), headers=ASYNC),
                      "GetOperation", 202)
    waiting = body_of(await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(second), headers=ASYNC),
                      "GetOperation", 202)
    assert waiting["status"] == "pending", waiting
    cancelled = body_of(await api.delete(f"/operations/{waiting['id']}"), "CancelOperation")
    assert cancelled["status"] == "cancelled", cancelled
    # The first one, under way, cannot be stopped.
    refused = expect(await api.delete(f"/operations/{holding['id']}"), 409).error()
    assert "cannot be cancelled" in refused, refused
    await sim.request("DELETE", "/_sim/faults/endpoints")
    assert (await ended(api, holding["id"]))["status"] == "succeeded"
    assert (await ended(api, waiting["id"]))["status"] == "cancelled"
    assert not [b for b in await sim.blueprints() if second in b["name"]]
    assert await sim.service("bridge", second) is None
    expect(await api.get(f"/nodes/{SEED_NODE}/bridges/{second}"), 404)
    expect(await api.delete(f"/nodes/{SEED_NODE}/bridges/{first}"), 204)


@pytest_twisted.ensureDeferred
async def test_reboot_ends_when_the_node_is_back(api: Api) -> None:
    reply = await api.post(f"/nodes/{SEED_NODE}/reboot", headers=ASYNC)
    done = await ended(api, body_of(reply, "GetOperation", 202)["id"])
    assert done["status"] == "succeeded" and done["result"] == {"status": 204}, done
    assert done["steps"][-1]["message"] == "node back", done["steps"]
    expect(await api.get(f"/nodes/{SEED_NODE}/mem"), 200)


@pytest_twisted.ensureDeferred
async def test_a_restarted_daemon_follows_the_run_to_its_end(env: SplitEnvironment, api: Api) -> None:
    name = unique("br")
    await Sim(env.ays_url).fail_action("bridge", "install", instance=name, delay=6)
    reply = await api.post(f"/nodes/{SEED_NODE}/bridges", json=bridge(name), headers=ASYNC)
    operation = body_of(reply, "GetOperation", 202)

    async def look() -> dict[str, Any]:
        return expect(await api.get(f"/operations/{operation['id']}"), 200).json()

    await eventually(look, lambda o: any(s.get("data", {}).get("run") for s in o["steps"]), 10,
                     "the run under way")
    assert env.rpoold is not None
    env.rpoold.signal(signal.SIGKILL)
    env.rpoold.stop()
    env.start_rpoold()
    again = Api.over_http(env.url)
    done = await ended(again, operation["id"])
    assert done["status"] == "succeeded", done
    assert "followed again after a restart of the daemon" in [s["message"] for s in done["steps"]]
    expect(await again.get(f"/nodes/{SEED_NODE}/bridges/{name}"), 200)
    expect(await again.delete(f"/nodes/{SEED_NODE}/bridges/{name}"), 204)
