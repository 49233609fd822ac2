"""
Operations over real HTTP, on the mock (the app served on a loopback port
of the test's process, its operations and events in a memory store):
``Prefer: respond-async`` answers 202 with the operation, which is then
followed to its end (a create to its ``Location``, a VM to its target
state, a reboot until the node is back, a process until its job ends);
``?wait=``, the list and its filters, cancelling (a job: killed; a VM's
transition: 409 with the reason), failures, roles; and that every write of
the contract is named in ``rpoold.writes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from rpoold import writes
from rpoold.auth import Authenticator, Role, hash_token
from rpoold.contract import OPERATIONS
from rpoold.operations import Settings
from testbed.http_api import Api, Reply
from tests.support.answers import body_of, expect
from tests.support.backends import SECOND_NODE, SEED_CONTAINER, SEED_NODE, unique
from tests.support.in_process import mock_app, serving
from tests.support.polling import eventually
from tests.support.resources import container_body

ASYNC = {"Prefer": "respond-async"}


@pytest_twisted.async_yield_fixture
async def api() -> AsyncIterator[Api]:
    async with serving(mock_app(operations=Settings(reboot_timeout=10, transition_timeout=10))) as base:
        yield Api.over_http(base)


def accepted(reply: Reply, operation: str) -> dict[str, Any]:
    """Assert a 202 with the operation; :returns: the operation."""
    body = body_of(reply, "GetOperation", 202)
    # The mock works in process: its work may have ended before the answer.
    assert body["operation"] == operation, body
    assert reply.header("location") == f"/operations/{body['id']}", reply.headers
    return body


async def ended(api: Api, operation_id: str, wait: float = 10) -> dict[str, Any]:
    """``GET /operations/{id}?wait=``, asserting that it has ended."""
    body = body_of(await api.get(f"/operations/{operation_id}", params={"wait": str(wait)}), "GetOperation")
    assert body["status"] in ("succeeded", "failed", "cancelled"), body
    return body


def test_every_write_is_named() -> None:
    """Each write of the contract says which event it makes (or none), nothing else is named."""
    named = {op.name for op in OPERATIONS if op.is_write}
    assert set(writes.EVENT_OF_WRITE) == named
    assert set(writes.VM_TARGET) <= named


@pytest_twisted.ensureDeferred
async def test_async_create_is_followed_to_its_location(api: Api) -> None:
    name = unique("ct")
    reply = await api.post(f"/nodes/{SEED_NODE}/containers", json=container_body(name), headers=ASYNC)
    operation = accepted(reply, "CreateContainer")
    assert reply.header("preference-applied") == "respond-async"
    assert operation["resource"] == f"/nodes/{SEED_NODE}/containers/{name}"
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"status": 201, "location": f"/nodes/{SEED_NODE}/containers/{name}"}
    assert expect(await api.get(done["result"]["location"]), 200).json()["status"] == "running"
    # Without the header a write answers as it always did, and keeps no operation.
    reply = await api.delete(f"/nodes/{SEED_NODE}/containers/{name}")
    assert reply.status == 204 and reply.header("operation-location") is None
    listed = body_of(await api.get("/operations"), "ListOperations")
    assert [o["id"] for o in listed] == [operation["id"]]


@pytest_twisted.ensureDeferred
async def test_a_failed_write_is_a_failed_operation(api: Api) -> None:
    reply = await api.post(f"/nodes/{SEED_NODE}/containers", json=container_body(SEED_CONTAINER),
                           headers=ASYNC)
    done = await ended(api, accepted(reply, "CreateContainer")["id"])
    assert done["status"] == "failed" and done["error"]["status"] == 409, done
    assert SEED_CONTAINER in done["error"]["message"] and "result" not in done
    # Refused before any work: no operation at all.
    reply = await api.post(f"/nodes/{SEED_NODE}/containers", json={"name": "x"}, headers=ASYNC)
    assert reply.status == 400 and "location" not in reply.headers


@pytest_twisted.ensureDeferred
async def test_vm_create_ends_when_the_vm_runs(api: Api) -> None:
    vmid = unique("vm")
    reply = await api.post(f"/nodes/{SEED_NODE}/vms", json={"id": vmid, "memory": 512, "cpu": 1})
    # As before: 201 while the VM deploys; the operation goes on and says where.
    assert expect(reply, 201).header("location") == f"/nodes/{SEED_NODE}/vms/{vmid}"
    where = reply.header("operation-location")
    assert where is not None and where.startswith("/operations/"), reply.headers
    done = await ended(api, where.rsplit("/", 1)[1])
    assert done["status"] == "succeeded", done
    assert [s["data"]["state"] for s in done["steps"] if "state" in s.get("data", {})][-1] == "running"
    assert expect(await api.get(f"/nodes/{SEED_NODE}/vms/{vmid}"), 200).json()["status"] == "running"
    # A VM's transition cannot be cancelled: 409 with the reason.
    reply = await api.post(f"/nodes/{SEED_NODE}/vms/{vmid}/stop", headers=ASYNC)
    operation = accepted(reply, "StopVM")
    cancel = await api.delete(f"/operations/{operation['id']}")
    if cancel.status == 409:
        message = cancel.error()
        assert "cannot be cancelled" in message or "has succeeded" in message, message
    else:
        raise AssertionError(f"a VM transition was cancelled: {cancel}")
    assert (await ended(api, operation["id"]))["status"] == "succeeded"
    expect(await api.delete(f"/nodes/{SEED_NODE}/vms/{vmid}"), 204)


@pytest_twisted.ensureDeferred
async def test_reboot_ends_when_the_node_is_back(api: Api) -> None:
    reply = await api.post(f"/nodes/{SECOND_NODE}/reboot", headers=ASYNC)
    operation = accepted(reply, "RebootNode")
    assert operation["resource"] == f"/nodes/{SECOND_NODE}"
    done = await ended(api, operation["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"status": 204}
    assert [s["message"] for s in done["steps"]][-1] == "node back"
    assert expect(await api.post(f"/nodes/{SECOND_NODE}/ping"), 200).json() is True


@pytest_twisted.ensureDeferred
async def test_process_start_ends_with_its_job_and_cancel_kills_it(api: Api) -> None:
    processes = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/processes"
    reply = await api.post(processes, json={"name": "sh", "args": ["-c", "echo hi"]}, headers=ASYNC)
    done = await ended(api, accepted(reply, "StartContainerProcess")["id"])
    assert done["status"] == "succeeded" and done["result"]["status"] == 202, done
    job = done["result"]["location"]
    assert job.startswith(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/")
    assert expect(await api.get(job), 200).json()["state"] == "success"

    reply = await api.post(processes, json={"name": "sleep", "args": ["600"]}, headers=ASYNC)
    operation = accepted(reply, "StartContainerProcess")

    async def running() -> dict[str, Any]:
        return expect(await api.get(f"/operations/{operation['id']}"), 200).json()

    started = await eventually(running, lambda o: "result" in o or any(
        s["message"] == "job started" for s in o["steps"]), 5, "the job started")
    cancelled = body_of(await api.delete(f"/operations/{operation['id']}"), "CancelOperation")
    assert cancelled["status"] == "cancelled", cancelled
    job = (await ended(api, started["id"]))["steps"][0]["data"]["job"]
    assert expect(await api.get(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/{job}"),
                  200).json()["state"] == "killed"
    # An ended operation cannot be cancelled again.
    assert "cancelled already" in expect(await api.delete(f"/operations/{operation['id']}"), 409).error()


@pytest_twisted.ensureDeferred
async def test_list_filters_and_wait(api: Api) -> None:
    ids = []
    for node in (SEED_NODE, SECOND_NODE):
        reply = await api.post(f"/nodes/{node}/bridges", json={"name": unique("br"), "networkMode": "none"},
                               headers=ASYNC)
        ids.append(accepted(reply, "CreateBridge")["id"])
        await ended(api, ids[-1])
    listed = body_of(await api.get("/operations"), "ListOperations")
    assert [o["id"] for o in listed][:2] == ids[::-1], "newest first"
    on_second = body_of(await api.get("/operations", params={"resource": f"/nodes/{SECOND_NODE}/"}),
                        "ListOperations")
    assert [o["id"] for o in on_second] == [ids[1]]
    assert body_of(await api.get("/operations", params={"status": "failed,cancelled"}),
                   "ListOperations") == []
    assert len(body_of(await api.get("/operations", params={"operation": "CreateBridge", "limit": "1"}),
                       "ListOperations")) == 1
    for query, complaint in (({"status": "done"}, "unknown status"), ({"limit": "0"}, "at least 1")):
        assert complaint in expect(await api.get("/operations", params=query), 400).error()
    assert "a number" in expect(await api.get(f"/operations/{ids[0]}", params={"wait": "soon"}), 400).error()
    unknown = "0" * 32
    assert "does not exist" in expect(await api.get(f"/operations/{unknown}"), 404).error()
    expect(await api.get("/operations/not-an-id"), 400)
    for operation_id in ids:
        bridge = body_of(await api.get(f"/operations/{operation_id}"), "GetOperation")["result"]["location"]
        expect(await api.delete(bridge), 204)


@pytest_twisted.ensureDeferred
async def test_a_write_whose_wait_runs_out_answers_202(api: Api) -> None:
    """
    A bridge made on a rebooting node waits for the node (the mock's calls
    do); with ``Prefer: wait=0`` its wait runs out at once: 202 with the
    operation, not 504, and the operation then succeeds.
    """
    reply = await api.post(f"/nodes/{SECOND_NODE}/reboot")
    # The reboot answers as it always did; its operation goes on until the node is back.
    reboot = expect(reply, 204).header("operation-location")
    assert reboot is not None
    name = unique("br")
    reply = await api.post(f"/nodes/{SECOND_NODE}/bridges", json={"name": name, "networkMode": "none"},
                           headers={"Prefer": "wait=0"})
    operation = body_of(reply, "GetOperation", 202)
    assert reply.header("preference-applied") is None and operation["status"] == "running"
    done = await ended(api, operation["id"])
    assert done["result"] == {"status": 201, "location": f"/nodes/{SECOND_NODE}/bridges/{name}"}, done
    assert (await ended(api, reboot.rsplit("/", 1)[1]))["status"] == "succeeded"
    expect(await api.delete(f"/nodes/{SECOND_NODE}/bridges/{name}"), 204)


@pytest_twisted.ensureDeferred
async def test_cancel_needs_the_role_of_the_operation() -> None:
    tokens = {role: f"token-{role.name}" for role in Role}
    authenticator = Authenticator(enabled=True, tokens={
        hash_token(token): (role.name, role) for role, token in tokens.items()})

    def as_(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with serving(mock_app(auth=authenticator)) as base:
        api = Api.over_http(base)
        reply = await api.post(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/processes",
                               json={"name": "sleep", "args": ["600"]},
                               headers={**ASYNC, **as_(Role.operate)})
        operation = accepted(reply, "StartContainerProcess")
        # Reading needs the read role only; cancelling, the operation's (operate).
        body_of(await api.get(f"/operations/{operation['id']}", headers=as_(Role.read)), "GetOperation")
        expect(await api.get("/operations"), 401)
        refused = expect(await api.delete(f"/operations/{operation['id']}", headers=as_(Role.read)), 403)
        assert "StartContainerProcess" in refused.error()
        await eventually(lambda: api.get(f"/operations/{operation['id']}", headers=as_(Role.read)),
                         lambda r: any(s["message"] == "job started" for s in r.json()["steps"]), 5,
                         "the job started")
        cancelled = await api.delete(f"/operations/{operation['id']}", headers=as_(Role.operate))
        assert body_of(cancelled, "CancelOperation")["status"] == "cancelled"


@pytest.mark.parametrize(("operation", "params", "body", "resource"), [
    ("StartContainer", {"nodeid": "n", "containername": "c"}, None, "/nodes/n/containers/c"),
    ("CreateBridge", {"nodeid": "n"}, {"name": "b"}, "/nodes/n/bridges/b"),
    ("RebootNode", {"nodeid": "n"}, None, "/nodes/n"),
    ("StartContainerProcess", {"nodeid": "n", "containername": "c"}, {}, "/nodes/n/containers/c"),
    ("CreateStoragePoolDevices", {"nodeid": "n", "storagepoolname": "p"}, [], "/nodes/n/storagepools/p"),
    ("KillAllNodeJobs", {"nodeid": "n"}, None, "/nodes/n/jobs"),
    ("DeployNewCluster", {}, {"label": "l"}, "/storageclusters/l"),
])
def test_resource_of_a_write(operation: str, params: dict[str, str], body: Any, resource: str) -> None:
    from rpoold.contract import OPERATIONS_BY_NAME

    assert writes.resource_of(OPERATIONS_BY_NAME[operation], params, body) == resource
