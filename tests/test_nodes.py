"""
Nodes: the pool's node records (``/nodes``, ``/nodes/{nodeid}``, reboot)
and what a node's agent reports about it (ping, state, cpus, disks, mem,
nics, info).
"""

from __future__ import annotations

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, no_content
from tests.support.backends import SECOND_NODE, SEED_HOSTNAME, SEED_NODE, Harness
from tests.support.polling import eventually

FAMILY = "nodes"
UNKNOWN_NODE = "000000000000"
INFO_ROUTES = [
    ("ping", "POST", "PingNode"),
    ("state", "GET", "GetNodeState"),
    ("cpus", "GET", "GetCPUInfo"),
    ("disks", "GET", "GetDiskInfo"),
    ("mem", "GET", "GetMemInfo"),
    ("nics", "GET", "GetNicInfo"),
    ("info", "GET", "GetNodeOSInfo"),
]


# GET /nodes -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_nodes_shows_the_pool(api: Api) -> None:
    """``GET /nodes`` lists every node: id, hostname, ipaddress and status."""
    nodes = body_of(await api.get("/nodes"), "ListNodes")
    by_id = {n["id"]: n for n in nodes}
    assert {SEED_NODE, SECOND_NODE} <= set(by_id)
    seed = by_id[SEED_NODE]
    assert seed["hostname"] == SEED_HOSTNAME
    assert seed["status"] == "running"
    assert seed["ipaddress"]


# GET /nodes/{nodeid} --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_get_node(api: Api) -> None:
    """``GET /nodes/{nodeid}`` answers the node as it appears in the list."""
    node = body_of(await api.get(f"/nodes/{SEED_NODE}"), "GetNode")
    listed = [n for n in (await api.get("/nodes")).json() if n["id"] == SEED_NODE]
    assert [node] == listed


@pytest_twisted.ensureDeferred
async def test_get_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get(f"/nodes/{UNKNOWN_NODE}"), 404, UNKNOWN_NODE)


@pytest.mark.parametrize("bad", ["a%20b", "caf%C3%A9", "a:b"])
@pytest_twisted.ensureDeferred
async def test_node_id_must_be_a_service_name(api: Api, bad: str) -> None:
    """A node id with characters other than letters, digits, ``_.-`` is refused (400)."""
    error_of(await api.get(f"/nodes/{bad}"), 400, "nodeid")


# POST /nodes/{nodeid}/reboot ---------------------------------------------------------


@pytest.mark.families("nodes", "node_info")
@pytest_twisted.ensureDeferred
async def test_reboot_takes_the_node_away_and_back(api: Api, harness: Harness) -> None:
    """
    ``POST /nodes/{nodeid}/reboot`` answers 204 at once; the node boots again
    (its boot time moves on) and is ``running`` afterwards.
    """
    before = body_of(await api.get(f"/nodes/{SECOND_NODE}/info"), "GetNodeOSInfo")
    no_content(await api.post(f"/nodes/{SECOND_NODE}/reboot"))

    async def info() -> dict:
        reply = await api.get(f"/nodes/{SECOND_NODE}/info")
        return reply.json() if reply.status == 200 else {}

    after = await eventually(info, lambda i: i.get("bootTime", 0) > before["bootTime"],
                             harness.patience, "node booted again")
    assert after["hostname"] == before["hostname"]
    node = body_of(await api.get(f"/nodes/{SECOND_NODE}"), "GetNode")
    assert node["status"] == "running"


@pytest_twisted.ensureDeferred
async def test_reboot_unknown_node_is_404(api: Api) -> None:
    error_of(await api.post(f"/nodes/{UNKNOWN_NODE}/reboot"), 404, UNKNOWN_NODE)


# DELETE /nodes/{nodeid} --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_delete_node_forgets_it(api: Api, harness: Harness) -> None:
    """``DELETE /nodes/{nodeid}`` answers 204; the node is then unknown."""
    if not harness.fresh:
        pytest.skip("deleting a seed node would take it from the other tests of a shared backend")
    no_content(await api.delete(f"/nodes/{SECOND_NODE}"))
    error_of(await api.get(f"/nodes/{SECOND_NODE}"), 404, SECOND_NODE)
    assert SECOND_NODE not in [n["id"] for n in (await api.get("/nodes")).json()]
    error_of(await api.delete(f"/nodes/{SECOND_NODE}"), 404, SECOND_NODE)


@pytest_twisted.ensureDeferred
async def test_delete_unknown_node_is_404(api: Api) -> None:
    error_of(await api.delete(f"/nodes/{UNKNOWN_NODE}"), 404, UNKNOWN_NODE)


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405(api: Api) -> None:
    reply = await api.put(f"/nodes/{SEED_NODE}", json={})
    error_of(reply, 405, "PUT")
    assert "GET" in (reply.header("allow") or "")


# What the node's agent reports ---------------------------------------------------------


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_ping(api: Api) -> None:
    """``POST /nodes/{nodeid}/ping`` answers the JSON literal ``true``."""
    assert body_of(await api.post(f"/nodes/{SEED_NODE}/ping"), "PingNode") is True


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_state(api: Api) -> None:
    state = body_of(await api.get(f"/nodes/{SEED_NODE}/state"), "GetNodeState")
    assert state["rss"] > 0 and state["vms"] > 0


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_cpus(api: Api) -> None:
    cpus = body_of(await api.get(f"/nodes/{SEED_NODE}/cpus"), "GetCPUInfo")
    assert cpus and all(c["mhz"] > 0 and c["cores"] >= 1 for c in cpus)


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_disks(api: Api) -> None:
    """One entry per block device: ``/dev/<name>``, size in GiB, a disk type."""
    disks = body_of(await api.get(f"/nodes/{SEED_NODE}/disks"), "GetDiskInfo")
    devices = {d["device"]: d for d in disks}
    assert all(name.startswith("/dev/") for name in devices)
    assert all(d["size"] > 0 for d in disks)
    assert {d["type"] for d in disks} >= {"ssd", "hdd"}


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_mem_is_one_object(api: Api) -> None:
    """``GET /nodes/{nodeid}/mem`` is a single MemInfo object (not a list), in bytes."""
    mem = body_of(await api.get(f"/nodes/{SEED_NODE}/mem"), "GetMemInfo")
    assert isinstance(mem, dict)
    assert mem["total"] > mem["used"] > 0
    assert 0 < mem["usedPercent"] < 100


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_nics_have_address_strings(api: Api) -> None:
    nics = body_of(await api.get(f"/nodes/{SEED_NODE}/nics"), "GetNicInfo")
    names = [n["name"] for n in nics]
    assert "lo" in names
    addrs = [a for n in nics for a in n["addrs"]]
    assert "127.0.0.1/8" in addrs and all(isinstance(a, str) for a in addrs)


@pytest.mark.families("node_info")
@pytest_twisted.ensureDeferred
async def test_os_info(api: Api) -> None:
    info = body_of(await api.get(f"/nodes/{SEED_NODE}/info"), "GetNodeOSInfo")
    assert info["hostname"] == SEED_HOSTNAME
    assert info["os"] == "linux" and info["bootTime"] > 0


@pytest.mark.families("node_info")
@pytest.mark.parametrize(("route", "method", "operation"), INFO_ROUTES)
@pytest_twisted.ensureDeferred
async def test_info_of_unknown_node_is_404(api: Api, route: str, method: str, operation: str) -> None:
    error_of(await api.request(method, f"/nodes/{UNKNOWN_NODE}/{route}"), 404, UNKNOWN_NODE)


@pytest.mark.families("node_info")
@pytest.mark.parametrize(("route", "method", "operation"), INFO_ROUTES)
@pytest_twisted.ensureDeferred
async def test_info_with_bad_node_id_is_400(api: Api, route: str, method: str, operation: str) -> None:
    error_of(await api.request(method, f"/nodes/a%20b/{route}"), 400, "nodeid")
