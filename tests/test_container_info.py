"""
What a container's agent reports about it: ping, state, cpus, disks, mem
(also under the reference server's ``mems`` spelling), nics, info.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, no_content
from tests.support.backends import SEED_CONTAINER, SEED_NODE
from tests.support.resources import container

FAMILY = "container_info"
BASE = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}"
ROUTES = [
    ("ping", "POST", "PingContainer"),
    ("state", "GET", "GetContainerState"),
    ("cpus", "GET", "GetContainerCPUInfo"),
    ("disks", "GET", "GetContainerDiskInfo"),
    ("mem", "GET", "GetContainerMemInfo"),
    ("mems", "GET", "GetContainerMemInfo"),
    ("nics", "GET", "GetContainerNicInfo"),
    ("info", "GET", "GetContainerOSInfo"),
]


@pytest_twisted.ensureDeferred
async def test_ping(api: Api) -> None:
    assert body_of(await api.post(f"{BASE}/ping"), "PingContainer") is True


@pytest_twisted.ensureDeferred
async def test_state(api: Api) -> None:
    state = body_of(await api.get(f"{BASE}/state"), "GetContainerState")
    assert state["rss"] > 0


@pytest_twisted.ensureDeferred
async def test_cpus_are_the_nodes(api: Api) -> None:
    cpus = body_of(await api.get(f"{BASE}/cpus"), "GetContainerCPUInfo")
    assert cpus and all(c["mhz"] > 0 for c in cpus)


@pytest_twisted.ensureDeferred
async def test_disks(api: Api) -> None:
    disks = body_of(await api.get(f"{BASE}/disks"), "GetContainerDiskInfo")
    assert "/" in [d["mountpoint"] for d in disks]


@pytest_twisted.ensureDeferred
async def test_mem_and_its_alias_mems(api: Api) -> None:
    """``.../mem`` is one MemInfo object; ``.../mems`` (the reference's route) answers the same."""
    mem = body_of(await api.get(f"{BASE}/mem"), "GetContainerMemInfo")
    assert isinstance(mem, dict) and mem["total"] > 0
    assert body_of(await api.get(f"{BASE}/mems"), "GetContainerMemInfo")["total"] == mem["total"]


@pytest_twisted.ensureDeferred
async def test_nics(api: Api) -> None:
    nics = body_of(await api.get(f"{BASE}/nics"), "GetContainerNicInfo")
    assert "lo" in [n["name"] for n in nics]
    assert all(isinstance(a, str) for n in nics for a in n["addrs"])


@pytest_twisted.ensureDeferred
async def test_info_names_the_container(api: Api) -> None:
    info = body_of(await api.get(f"{BASE}/info"), "GetContainerOSInfo")
    assert info["hostname"] == SEED_CONTAINER


@pytest.mark.families("container_info", "containers")
@pytest_twisted.ensureDeferred
async def test_info_of_a_new_container(api: Api) -> None:
    async with container(api, SEED_NODE, hostname="myhost") as name:
        info = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}/info"), "GetContainerOSInfo")
        assert info["hostname"] == "myhost"


@pytest.mark.families("container_info", "containers")
@pytest_twisted.ensureDeferred
async def test_a_stopped_container_does_not_answer(api: Api) -> None:
    """A halted container has no agent to ask: 404 naming it."""
    async with container(api, SEED_NODE) as name:
        no_content(await api.post(f"/nodes/{SEED_NODE}/containers/{name}/stop"))
        error_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}/info"), 404, name)


@pytest.mark.parametrize(("route", "method", "operation"), ROUTES)
@pytest_twisted.ensureDeferred
async def test_unknown_container_is_404(api: Api, route: str, method: str, operation: str) -> None:
    reply = await api.request(method, f"/nodes/{SEED_NODE}/containers/nosuchcontainer/{route}")
    error_of(reply, 404, "nosuchcontainer")
    reply = await api.request(method, f"/nodes/000000000000/containers/{SEED_CONTAINER}/{route}")
    error_of(reply, 404, "000000000000")


@pytest.mark.parametrize(("route", "method", "operation"), ROUTES)
@pytest_twisted.ensureDeferred
async def test_bad_names_are_400(api: Api, route: str, method: str, operation: str) -> None:
    reply = await api.request(method, f"/nodes/{SEED_NODE}/containers/a%20b/{route}")
    error_of(reply, 400, "containername")
    reply = await api.request(method, f"/nodes/a:b/containers/{SEED_CONTAINER}/{route}")
    error_of(reply, 400, "nodeid")
