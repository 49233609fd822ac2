"""
The simulator's test controls under ``/_sim/``: seeding nodes, action and
endpoint faults, read-back of blueprints and runs, reset.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred

from tests.support.ayssim import REPO, Served
from tests.support.polling import eventually, wait_for

R = f"/ays/repository/{REPO}"
NODE = "525400123456"
BRIDGE = f"""
bridge__br0: {{node: "{NODE}"}}
actions: [{{action: install, actor: bridge, service: br0}}]
"""


@pytest_twisted.ensureDeferred
async def test_seed_nodes(served: Served) -> None:
    code, seeded, _ = await served.request("POST", "/_sim/nodes", [
        {"name": "aabbccddeeff", "redisAddr": "10.0.0.9", "redisPort": 6390, "hostname": "n9"},
        {"name": "aabbccddee00", "redisAddr": "10.0.0.10", "status": "halted"}])
    assert code == 201 and [s["name"] for s in seeded] == ["aabbccddeeff", "aabbccddee00"]
    code, node, _ = await served.request("GET", f"{R}/service/node/aabbccddeeff")
    assert code == 200
    assert {k: node["data"][k] for k in ("redisAddr", "redisPort", "hostname", "status")} == {
        "redisAddr": "10.0.0.9", "redisPort": 6390, "hostname": "n9", "status": "running"}
    actions = {a["name"]: a["state"] for a in node["actions"]}
    assert actions["install"] == "ok" and node["state"] == "ok"
    # Seeding again updates the address.
    await served.request("POST", "/_sim/nodes", {"name": "aabbccddeeff", "redisAddr": "10.0.0.99"})
    code, node, _ = await served.request("GET", f"{R}/service/node/aabbccddeeff")
    assert node["data"]["redisAddr"] == "10.0.0.99"

    for bad in ({"name": "x"}, {"name": "x", "redisAddr": "a", "status": "weird"},
                {"name": "x/y", "redisAddr": "a"}, None):
        code, body, _ = await served.request("POST", "/_sim/nodes", bad)
        assert code == 400 and "error" in body, bad
    code, _, _ = await served.request("POST", "/_sim/nodes?repo=nope", {"name": "x", "redisAddr": "a"})
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_action_fault_once_then_ok(served: Served) -> None:
    code, fault, _ = await served.request("POST", "/_sim/faults/actions", {
        "actor": "bridge", "action": "install", "error": "no bridge for you"})
    assert code == 201 and fault["times"] == 1
    await served.post_blueprint("bp", BRIDGE)
    run = await served.run()
    assert run["state"] == "error"
    logs = run["steps"][0]["jobs"][0]["logs"]
    assert {"category": "errormsg", "log": "no bridge for you"}.items() <= logs[-2].items()
    code, faults, _ = await served.request("GET", "/_sim/faults")
    assert faults == {"actions": [], "endpoints": []}
    # The failed action is retried by the next run, and now succeeds.
    run = await served.run()
    assert run["state"] == "ok" and run["steps"][0]["jobs"][0]["service_name"] == "br0"


@pytest_twisted.ensureDeferred
async def test_action_fault_always_and_by_instance(served: Served) -> None:
    await served.request("POST", "/_sim/faults/actions", {
        "actor": "bridge", "action": "install", "instance": "br1", "error": "br1 is cursed",
        "always": True})
    await served.post_blueprint("bp", BRIDGE + f"""
bridge__br1: {{node: "{NODE}"}}
actions: [{{action: install, actor: bridge}}]
""")
    for _ in range(2):
        run = await served.run()
        assert run["state"] == "error"
        jobs = {j["service_name"]: j for s in run["steps"] for j in s["jobs"]}
        assert jobs["br1"]["state"] == "error"
        assert jobs["br1"]["logs"][-2]["log"] == "br1 is cursed"
    code, br0, _ = await served.request("GET", f"{R}/service/bridge/br0")
    assert {a["name"]: a["state"] for a in br0["actions"]}["install"] == "ok"
    code, _, _ = await served.request("DELETE", "/_sim/faults/actions")
    assert code == 204
    assert (await served.run())["state"] == "ok"


@pytest_twisted.ensureDeferred
async def test_action_delay_keeps_the_job_running(served: Served) -> None:
    await served.request("POST", "/_sim/faults/actions", {
        "actor": "bridge", "action": "install", "delay": 0.3})
    await served.post_blueprint("bp", BRIDGE)
    _, run, _ = await served.request("POST", f"{R}/aysrun")
    seen = []

    async def ended() -> bool:
        _, current, _ = await served.request("GET", f"{R}/aysrun/{run['key']}")
        seen.append(current["state"])
        return current["state"] in ("ok", "error")

    await eventually(ended, bool, 10.0, "run end")
    assert "running" in seen and seen[-1] == "ok"


@pytest.mark.parametrize("spec", [
    {"action": "install", "error": "x"},
    {"actor": "bridge", "action": "install"},
    {"actor": "bridge", "action": "install", "delay": -1},
    {"actor": "bridge", "action": "install", "error": "x", "times": 0},
    [],
])
@pytest_twisted.ensureDeferred
async def test_bad_action_fault_is_400(served: Served, spec: object) -> None:
    code, body, _ = await served.request("POST", "/_sim/faults/actions", spec)
    assert code == 400 and "error" in body


@pytest_twisted.ensureDeferred
async def test_endpoint_status_fault(served: Served) -> None:
    code, _, _ = await served.request("POST", "/_sim/faults/endpoints", {
        "path": f"{R}/aysrun", "method": "post", "status": 503, "times": 2})
    assert code == 201
    for _ in range(2):
        code, body, _ = await served.request("POST", f"{R}/aysrun")
        assert (code, body) == (503, {"error": "simulated failure"})
    code, _, _ = await served.request("POST", f"{R}/aysrun")
    assert code == 200
    await served.request("POST", "/_sim/faults/endpoints", {"path": "/", "status": 500,
                                                           "body": "Internal Server Error"})
    code, body, _ = await served.request("GET", "/")
    assert (code, body) == (500, "Internal Server Error")


@pytest_twisted.ensureDeferred
async def test_endpoint_stall_until_released(served: Served) -> None:
    await served.request("POST", "/_sim/faults/endpoints", {"path": f"{R}/.*", "stall": True,
                                                           "always": True})
    pending = ensureDeferred(served.request("GET", f"{R}/service/node"))
    await wait_for(lambda: served.api._stalled, "request stalled")
    # Test controls are never stalled.
    code, faults, _ = await served.request("GET", "/_sim/faults")
    assert code == 200 and len(faults["endpoints"]) == 1
    assert not pending.called
    code, _, _ = await served.request("DELETE", "/_sim/faults/endpoints")
    assert code == 204
    code, items, _ = await pending
    assert code == 200 and len(items) == 2


@pytest_twisted.ensureDeferred
async def test_endpoint_stall_for_a_while_then_status(served: Served) -> None:
    await served.request("POST", "/_sim/faults/endpoints", {"path": "/", "stall": 0.05, "status": 502})
    code, _, _ = await served.request("GET", "/")
    assert code == 502


@pytest_twisted.ensureDeferred
async def test_endpoint_drop_loses_the_connection(served: Served) -> None:
    await served.request("POST", "/_sim/faults/endpoints", {"path": "/", "drop": True})
    with pytest.raises(Exception) as info:
        await served.request("GET", "/")
    assert "Response" in type(info.value).__name__ or "Connection" in type(info.value).__name__
    code, _, _ = await served.request("GET", "/")
    assert code == 200


@pytest.mark.parametrize("spec", [
    {"status": 500},
    {"path": "(", "status": 500},
    {"path": "/"},
    {"path": "/", "status": 42},
    {"path": "/", "drop": "yes"},
])
@pytest_twisted.ensureDeferred
async def test_bad_endpoint_fault_is_400(served: Served, spec: object) -> None:
    code, body, _ = await served.request("POST", "/_sim/faults/endpoints", spec)
    assert code == 400 and "error" in body


@pytest_twisted.ensureDeferred
async def test_read_back_blueprints_runs_and_reset(served: Served) -> None:
    await served.post_blueprint("bp1", BRIDGE)
    await served.request("POST", f"{R}/blueprint", {"name": "bp2", "content": "actions: []"})
    run = await served.run()
    code, blueprints, _ = await served.request("GET", "/_sim/blueprints")
    assert code == 200
    assert [(b["name"], b["content"], b["archived"]) for b in blueprints] == [
        ("bp1", BRIDGE, True), ("bp2", "actions: []", False)]
    code, runs, _ = await served.request("GET", f"/_sim/runs?repo={REPO}")
    assert [r["key"] for r in runs] == [run["key"]] and runs[0]["state"] == "ok"

    await served.request("POST", "/_sim/faults/actions", {"actor": "x", "action": "y", "error": "z"})
    code, _, _ = await served.request("POST", "/_sim/reset")
    assert code == 204
    code, _, _ = await served.request("GET", R)
    assert code == 200
    _, blueprints, _ = await served.request("GET", "/_sim/blueprints")
    _, services, _ = await served.request("GET", f"{R}/service")
    _, faults, _ = await served.request("GET", "/_sim/faults")
    assert (blueprints, services, faults) == ([], [], {"actions": [], "endpoints": []})


@pytest_twisted.ensureDeferred
async def test_changes_are_readable(served: Served) -> None:
    await served.post_blueprint("bp1", f"""
vm__vm1: {{node: "{NODE}", memory: 512}}
""")
    await served.post_blueprint("bp2", "vm__vm1: {memory: 1024}\n")

    async def changed() -> list[dict[str, object]] | None:
        _, body, _ = await served.request("GET", "/_sim/changes")
        return body if body and body[-1]["state"] != "running" else None

    body = await eventually(changed, bool, 10.0, "processChange")
    assert body[-1]["service"] == "vm!vm1" and body[-1]["arguments"] == {"memory": 1024}
    assert body[-1]["state"] == "ok"
