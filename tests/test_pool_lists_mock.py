"""
The pool-wide lists on the mock when a node does not answer: a rebooting
node is named in ``X-Unreachable-Nodes`` at once (as it is ``halted`` at
once in ``GET /nodes``), its containers are left out, and it is listed
again once it is back.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from rpoold.app import RpoolApi
from rpoold.interfaces import FAMILIES_BY_NAME
from testbed.http_api import Api
from tests.support.answers import body_of, expect
from tests.support.backends import SECOND_NODE, SEED_CONTAINER, SEED_NODE, mock_backend
from tests.support.polling import eventually


@pytest_twisted.ensureDeferred
async def test_a_rebooting_node_is_named_unreachable_then_listed_again() -> None:
    backend = mock_backend({"reboot_seconds": 1.0})
    api = Api.in_memory(RpoolApi(dict.fromkeys(FAMILIES_BY_NAME, backend), clock=reactor).resource())
    expect(await api.post(f"/nodes/{SEED_NODE}/reboot"), 204)

    async def halted() -> bool:
        nodes = body_of(expect(await api.get("/nodes", params={"status": "halted"}), 200), "ListNodes")
        return SEED_NODE in {n["id"] for n in nodes}

    await eventually(halted, lambda ok: ok, timeout=10, what="the node rebooting")
    for path, name in (("/containers", "ListPoolContainers"), ("/vms", "ListPoolVMs")):
        reply = expect(await api.get(path), 200)
        assert reply.header("x-unreachable-nodes") == SEED_NODE
        assert {item["node"] for item in body_of(reply, name)} <= {SECOND_NODE}

    async def back() -> bool:
        reply = expect(await api.get("/containers"), 200)
        return reply.header("x-unreachable-nodes") is None and SEED_CONTAINER in {
            c["name"] for c in body_of(reply, "ListPoolContainers")}

    await eventually(back, lambda ok: ok, timeout=10, what="the node listed again")
