"""
Runs: collection, dependency chains, producer and consumer edges, steps,
claiming, states, logs and failures.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from plugins.ayssim.controls import ActionFault
from plugins.ayssim.runs import Run
from plugins.ayssim.simulator import Simulator
from tests.support.ayssim import finished, model_sim, repo, service
from tests.support.polling import wait_for

NODE = "525400123456"

STACK = f"""
storagepool__pool1:
  node: "{NODE}"
  dataProfile: single
  metadataProfile: single
  devices: [{{device: /dev/sdb}}]
filesystem__fs1: {{storagePool: pool1, name: fs1}}
container__web1:
  node: "{NODE}"
  flist: https://hub.example.org/ubuntu.flist
  mounts: [{{filesystem: fs1, target: /fs/pool1/fs1}}]
actions:
  - {{action: install, actor: container, service: web1}}
"""


async def run_now(sim: Simulator) -> Run:
    return await finished(await sim.create_run(repo(sim)))


def steps(run: Run) -> list[set[tuple[str, str]]]:
    return [{(j.service.name, j.action) for j in step.jobs} for step in run.steps]


def step_of(run: Run, name: str, action: str) -> int:
    for step in run.steps:
        if any((j.service.name, j.action) == (name, action) for j in step.jobs):
            return step.number
    raise AssertionError(f"{name} {action} not in the run")


@pytest_twisted.ensureDeferred
async def test_producers_install_first() -> None:
    sim, pool, _ = model_sim()
    await sim.execute_blueprint(repo(sim), STACK)
    run = await run_now(sim)
    assert run.state == "ok"
    assert steps(run) == [{("pool1", "install")}, {("fs1", "install")}, {("web1", "install")}]
    assert all(s.state == "ok" for s in run.steps)
    assert pool.nodes[NODE].btrfs["sp_pool1"].mountpoint == "/mnt/storagepools/pool1"
    for name, role in (("pool1", "storagepool"), ("fs1", "filesystem"), ("web1", "container")):
        assert service(sim, role, name).actions["install"] == "ok"


@pytest_twisted.ensureDeferred
async def test_dependency_chain_pulls_prerequisites() -> None:
    sim, _, _ = model_sim()
    await sim.execute_blueprint(repo(sim), f'container__c1: {{node: "{NODE}", flist: x}}\n'
                                           "actions: [{action: start, actor: container, service: c1}]")
    run = await run_now(sim)
    assert run.state == "ok"
    # start needs install (init is done); start on the parent node comes first too.
    assert step_of(run, "c1", "install") < step_of(run, "c1", "start")
    assert step_of(run, NODE, "start") < step_of(run, "c1", "start")
    assert ("c1", "init") not in {pair for step in steps(run) for pair in step}


@pytest_twisted.ensureDeferred
async def test_teardown_runs_consumers_first() -> None:
    sim, pool, _ = model_sim()
    await sim.execute_blueprint(repo(sim), STACK)
    await run_now(sim)
    node = pool.nodes[NODE]
    assert any("web1" in c.tags for c in node.containers.values())
    await sim.execute_blueprint(repo(sim), "actions: [{action: delete, actor: storagepool, "
                                           "service: pool1, force: true}]")
    run = await run_now(sim)
    assert run.state == "ok", [j.logs for j in run.jobs]
    # The container mounting the filesystem stops before the filesystem goes,
    # the filesystem is deleted before its pool.
    assert step_of(run, "web1", "stop") < step_of(run, "fs1", "stop") < step_of(run, "pool1", "stop")
    assert step_of(run, "fs1", "delete") < step_of(run, "pool1", "delete")
    assert not any("web1" in c.tags for c in node.containers.values())
    assert "sp_pool1" not in node.btrfs


@pytest_twisted.ensureDeferred
async def test_claimed_actions_are_not_shared() -> None:
    sim, _, _ = model_sim()
    sim.faults.actions.append(ActionFault("bridge", "install", delay=0.2))
    await sim.execute_blueprint(repo(sim), f'bridge__br0: {{node: "{NODE}"}}\n'
                                           "actions: [{action: install, actor: bridge, service: br0}]")
    first = await sim.create_run(repo(sim))
    second = await sim.create_run(repo(sim))
    assert steps(first) == [{("br0", "install")}]
    assert second.steps == []
    assert service(sim, "bridge", "br0").actions["install"] == "running"
    await finished(first)
    await finished(second)
    assert first.state == second.state == "ok"
    assert service(sim, "bridge", "br0").actions["install"] == "ok"


@pytest_twisted.ensureDeferred
async def test_failing_job_stops_the_run_and_logs() -> None:
    sim, _, _ = model_sim()
    sim.faults.actions.append(ActionFault("storagepool", "install", error="disk on fire"))
    await sim.execute_blueprint(repo(sim), STACK)
    run = await run_now(sim)
    assert run.state == "error"
    assert [s.state for s in run.steps] == ["error", "new", "new"]
    [job] = run.steps[0].jobs
    assert job.state == "error"
    categories = [log["category"] for log in job.logs]
    assert categories[-2:] == ["errormsg", "trace"]
    assert job.logs[-2]["log"] == "disk on fire"
    assert "ActionFailed" in job.logs[-1]["log"]
    pool1 = service(sim, "storagepool", "pool1")
    assert pool1.actions["install"] == "error" and pool1.state == "error"
    # Jobs that never ran get their actions back.
    assert service(sim, "filesystem", "fs1").actions["install"] == "new"
    assert service(sim, "container", "web1").actions["install"] == "scheduled"
    view = run.view()
    assert view["state"] == "error" and view["steps"][0]["jobs"][0]["logs"][-2]["category"] == "errormsg"

    # Actions in error are retried by the next run (the fault fired once).
    retry = await run_now(sim)
    assert retry.state == "ok"
    assert steps(retry) == [{("pool1", "install")}, {("fs1", "install")}, {("web1", "install")}]


@pytest_twisted.ensureDeferred
async def test_handler_error_message_becomes_the_log() -> None:
    sim, _, _ = model_sim()
    await sim.execute_blueprint(repo(sim), f"""
storagepool__p1:
  node: "{NODE}"
  dataProfile: single
  metadataProfile: single
  devices: [{{device: /dev/nope}}]
actions: [{{action: install, actor: storagepool, service: p1}}]
""")
    run = await run_now(sim)
    assert run.state == "error"
    [job] = run.jobs
    assert job.logs[-2] == {**job.logs[-2], "category": "errormsg",
                            "log": f"device /dev/nope is not a disk of node {NODE}"}


@pytest_twisted.ensureDeferred
async def test_job_timeout_is_an_error() -> None:
    sim, _, _ = model_sim(job_timeout=0.05)
    sim.faults.actions.append(ActionFault("bridge", "install", delay=5))
    await sim.execute_blueprint(repo(sim), f'bridge__br0: {{node: "{NODE}"}}\n'
                                           "actions: [{action: install, actor: bridge, service: br0}]")
    run = await run_now(sim)
    assert run.state == "error"
    assert run.jobs[0].logs[-2]["log"] == "action timed out"


@pytest_twisted.ensureDeferred
async def test_rescheduled_while_running_runs_again() -> None:
    sim, _, _ = model_sim()
    sim.faults.actions.append(ActionFault("container", "stop", delay=0.1))
    await sim.execute_blueprint(repo(sim), f'container__c1: {{node: "{NODE}", flist: x}}\n'
                                           "actions: [{action: stop, actor: container, service: c1}]")
    first = await sim.create_run(repo(sim))
    await wait_for(lambda: first.state == "running", "first run running")
    await sim.execute_blueprint(repo(sim), "actions: [{action: stop, actor: container, service: c1}]")
    await finished(first)
    c1 = service(sim, "container", "c1")
    assert c1.actions["stop"] == "scheduled"
    second = await run_now(sim)
    assert steps(second) == [{("c1", "stop")}]


@pytest_twisted.ensureDeferred
async def test_run_states_progress() -> None:
    sim, _, _ = model_sim()
    gate: Deferred[None] = Deferred()
    seen: list[Any] = []

    async def slow(ctx: Any) -> None:
        seen.append(ctx.service.name)
        ctx.log("waiting for the gate")
        await gate

    sim.handlers[("bridge", "install")] = slow
    await sim.execute_blueprint(repo(sim), f'bridge__br0: {{node: "{NODE}"}}\n'
                                           "actions: [{action: install, actor: bridge, service: br0}]")
    run = await sim.create_run(repo(sim))
    assert run.state == "new" and run.jobs[0].state == "new"
    await wait_for(lambda: seen, "handler called")
    assert (run.state, run.steps[0].state, run.jobs[0].state) == ("running", "running", "running")
    assert run.jobs[0].logs[0]["log"] == "waiting for the gate"
    reactor.callLater(0, gate.callback, None)  # type: ignore[attr-defined]
    await finished(run)
    assert (run.state, run.steps[0].state, run.jobs[0].state) == ("ok", "ok", "ok")
    assert service(sim, "bridge", "br0").state == "ok"
