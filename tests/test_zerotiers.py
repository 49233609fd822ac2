"""
ZeroTier networks a node is a member of (``/nodes/{nodeid}/zerotiers[/{zerotierid}]``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, SEED_NODE

FAMILY = "zerotiers"
ZEROTIERS = f"/nodes/{SEED_NODE}/zerotiers"


def network_id() -> str:
    """A fresh 16-hex-digit network id."""
    return uuid.uuid4().hex[:16]


async def nwids(api: Api, nodeid: str = SEED_NODE) -> list[str]:
    return [z["nwid"] for z in body_of(await api.get(f"/nodes/{nodeid}/zerotiers"), "ListZerotier")]


@pytest_twisted.ensureDeferred
async def test_join_list_get_exit(api: Api) -> None:
    nwid = network_id()
    reply = expect(await api.post(ZEROTIERS, json={"nwid": nwid}), 201)
    try:
        assert reply.header("location") == f"{ZEROTIERS}/{nwid}"
        [item] = [z for z in body_of(await api.get(ZEROTIERS), "ListZerotier") if z["nwid"] == nwid]
        assert item["name"] == f"{SEED_NODE}_{nwid}"
        assert item["type"] in ("public", "private") and item["status"]
        assert nwid not in await nwids(api, SECOND_NODE)
        network = body_of(await api.get(f"{ZEROTIERS}/{nwid}"), "GetZerotier")
        assert network["nwid"] == nwid
        assert network["assignedAddresses"] and network["mac"]
        assert all(isinstance(r["via"], str) for r in network["routes"])
    finally:
        no_content(await api.delete(f"{ZEROTIERS}/{nwid}"))
    assert nwid not in await nwids(api)
    error_of(await api.get(f"{ZEROTIERS}/{nwid}"), 404, nwid)
    error_of(await api.delete(f"{ZEROTIERS}/{nwid}"), 404, nwid)


@pytest_twisted.ensureDeferred
async def test_joining_twice_is_409(api: Api) -> None:
    nwid = network_id()
    expect(await api.post(ZEROTIERS, json={"nwid": nwid}), 201)
    try:
        error_of(await api.post(ZEROTIERS, json={"nwid": nwid}), 409, nwid)
    finally:
        await api.delete(f"{ZEROTIERS}/{nwid}")


@pytest_twisted.ensureDeferred
async def test_not_a_network_id_is_400(api: Api) -> None:
    """A servicename that is not a 16-hex-digit network id is refused by the node (400)."""
    error_of(await api.post(ZEROTIERS, json={"nwid": "notanetwork"}), 400, "notanetwork")
    assert "notanetwork" not in await nwids(api)


@pytest_twisted.ensureDeferred
async def test_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get("/nodes/000000000000/zerotiers"), 404, "000000000000")
    error_of(await api.post("/nodes/000000000000/zerotiers", json={"nwid": network_id()}),
             404, "000000000000")


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", ZEROTIERS)


@pytest.mark.parametrize(("body", "words"), [
    ({}, ["missing", "nwid"]),
    ({"nwid": ""}, ["nwid"]),
    ({"nwid": "a b"}, ["nwid"]),
    ({"nwid": 12}, ["nwid", "string"]),
])
@pytest_twisted.ensureDeferred
async def test_invalid_body_is_400(api: Api, body: dict[str, Any], words: list[str]) -> None:
    error_of(await api.post(ZEROTIERS, json=body), 400, *words)


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api) -> None:
    error_of(await api.get(f"{ZEROTIERS}/a%20b"), 400, "zerotierid")
    error_of(await api.get("/nodes/a%20b/zerotiers"), 400, "nodeid")
