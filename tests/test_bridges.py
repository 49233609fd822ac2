"""
Bridges of a node (``/nodes/{nodeid}/bridges[/{bridgeid}]``).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, SEED_NODE, Harness, unique

FAMILY = "bridges"
BRIDGES = f"/nodes/{SEED_NODE}/bridges"


def bridge_body(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "networkMode": "static", "nat": True,
            "setting": {"cidr": "10.20.0.1/24", "start": "", "end": ""}, **fields}


async def names(api: Api, nodeid: str = SEED_NODE) -> list[str]:
    return [b["name"] for b in body_of(await api.get(f"/nodes/{nodeid}/bridges"), "ListBridges")]


@pytest_twisted.ensureDeferred
async def test_lifecycle(api: Api) -> None:
    """Create answers 201 with Location; the bridge is listed and readable; delete answers 204."""
    name = unique("br")
    reply = expect(await api.post(BRIDGES, json=bridge_body(name)), 201)
    try:
        assert reply.header("location") == f"{BRIDGES}/{name}"
        assert name in await names(api)
        assert name not in await names(api, SECOND_NODE)
        bridge = body_of(await api.get(f"{BRIDGES}/{name}"), "GetBridge")
        assert bridge["name"] == name
        assert bridge["setting"] == {"cidr": "10.20.0.1/24", "start": "", "end": ""}
        assert bridge["status"] == "up"
    finally:
        no_content(await api.delete(f"{BRIDGES}/{name}"))
    assert name not in await names(api)
    error_of(await api.get(f"{BRIDGES}/{name}"), 404, name)
    error_of(await api.delete(f"{BRIDGES}/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_dnsmasq_range(api: Api) -> None:
    name = unique("br")
    setting = {"cidr": "192.168.10.1/24", "start": "192.168.10.10", "end": "192.168.10.100"}
    expect(await api.post(BRIDGES, json=bridge_body(name, networkMode="dnsmasq", setting=setting)), 201)
    try:
        assert body_of(await api.get(f"{BRIDGES}/{name}"), "GetBridge")["setting"] == setting
    finally:
        await api.delete(f"{BRIDGES}/{name}")


@pytest_twisted.ensureDeferred
async def test_minimal_body(api: Api) -> None:
    """Only ``name`` and ``networkMode`` are required."""
    name = unique("br")
    expect(await api.post(BRIDGES, json={"name": name, "networkMode": "none"}), 201)
    try:
        assert name in await names(api)
    finally:
        no_content(await api.delete(f"{BRIDGES}/{name}"))


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api) -> None:
    name = unique("br")
    expect(await api.post(BRIDGES, json=bridge_body(name)), 201)
    try:
        reply = await api.post(BRIDGES, json=bridge_body(name))
        error_of(reply, 409, name)
        assert reply.header("location") is None
    finally:
        await api.delete(f"{BRIDGES}/{name}")


@pytest_twisted.ensureDeferred
async def test_same_name_on_another_node(api: Api, harness: Harness) -> None:
    """
    A bridge name is per node (201 on the second node), except on AYS,
    which names services per repository (409 naming the first node).
    """
    name = unique("br")
    expect(await api.post(BRIDGES, json=bridge_body(name)), 201)
    try:
        reply = await api.post(f"/nodes/{SECOND_NODE}/bridges", json=bridge_body(name))
        if harness.differs("names_unique_across_nodes"):
            error_of(reply, 409, name, SEED_NODE)
            assert name not in await names(api, SECOND_NODE)
        else:
            expect(reply, 201)
            assert name in await names(api, SECOND_NODE)
            no_content(await api.delete(f"/nodes/{SECOND_NODE}/bridges/{name}"))
        assert name in await names(api)
    finally:
        no_content(await api.delete(f"{BRIDGES}/{name}"))


@pytest_twisted.ensureDeferred
async def test_unknown_node_or_bridge_is_404(api: Api) -> None:
    error_of(await api.get("/nodes/000000000000/bridges"), 404, "000000000000")
    error_of(await api.post("/nodes/000000000000/bridges", json=bridge_body(unique("br"))),
             404, "000000000000")
    error_of(await api.get(f"{BRIDGES}/nosuchbridge"), 404, "nosuchbridge")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", BRIDGES)


@pytest.mark.parametrize(("change", "words"), [
    ({"name": None}, ["missing", "name"]),
    ({"networkMode": None}, ["missing", "networkMode"]),
    ({"name": "a/b"}, ["name", "a/b"]),
    ({"networkMode": "bridged"}, ["networkMode", "dnsmasq"]),
    ({"hwaddr": "52:54:00:12:34"}, ["hwaddr"]),
    ({"setting": {"cidr": "10.0.0.1"}}, ["setting.cidr"]),
    ({"setting": {"cidr": "10.0.0.1/33"}}, ["setting.cidr"]),
    ({"setting": {"start": "10.0.0"}}, ["setting.start"]),
    ({"setting": {"end": "host"}}, ["setting.end"]),
    ({"nat": "yes"}, ["nat", "boolean"]),
], ids=["missing-name", "missing-mode", "bad-name", "bad-mode", "bad-mac", "cidr-without-prefix",
        "cidr-bad-prefix", "bad-start", "bad-end", "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_body_is_400(api: Api, change: dict[str, Any], words: list[str]) -> None:
    name = unique("br")
    body = {k: v for k, v in {**bridge_body(name), **change}.items() if v is not None}
    error_of(await api.post(BRIDGES, json=body), 400, *words)
    assert name not in await names(api)


@pytest.mark.parametrize("hwaddr", ["", "52:54:00:12:34:56", "52-54-00-12-34-56", "5254.0012.3456"])
@pytest_twisted.ensureDeferred
async def test_mac_spellings_accepted(api: Api, hwaddr: str) -> None:
    name = unique("br")
    expect(await api.post(BRIDGES, json=bridge_body(name, hwaddr=hwaddr)), 201)
    no_content(await api.delete(f"{BRIDGES}/{name}"))


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api) -> None:
    error_of(await api.get(f"{BRIDGES}/a%20b"), 400, "bridgeid")
    error_of(await api.get("/nodes/a%20b/bridges"), 400, "nodeid")
