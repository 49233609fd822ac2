"""
Containers of a node: list, create, inspect, stop, start, delete
(``/nodes/{nodeid}/containers[/{containername}[/start|/stop]]``).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import (
    SECOND_NODE,
    SEED_CONTAINER,
    SEED_FLIST,
    SEED_NODE,
    Harness,
    unique,
)
from tests.support.resources import bridge, container, container_body, filesystem, storage_pool

FAMILY = "containers"
UNKNOWN_NODE = "000000000000"


def docs_payload(name: str) -> dict[str, Any]:
    """The create payload of the seed document, spelled as it is there (``id``, ``initprocesses``)."""
    return {
        "nics": [{"config": {"dhcp": False, "cidr": "192.168.57.217/24", "gateway": "192.168.57.254",
                             "dns": ["8.8.8.8"]}, "id": "0", "type": "vlan"}],
        "id": name,
        "filesystems": [],
        "flist": SEED_FLIST,
        "hostNetworking": False,
        "hostname": name,
        "initprocesses": [],
        "ports": [],
    }


async def listed(api: Api, nodeid: str) -> dict[str, dict[str, Any]]:
    items = body_of(await api.get(f"/nodes/{nodeid}/containers"), "ListContainers")
    return {c["name"]: c for c in items}


# Listing ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_shows_the_seed_container(api: Api) -> None:
    """Each item carries ``name`` and, for the seed document's readers, ``id`` with the same value."""
    seed = (await listed(api, SEED_NODE))[SEED_CONTAINER]
    assert seed == {"name": SEED_CONTAINER, "id": SEED_CONTAINER, "hostname": SEED_CONTAINER,
                    "flist": SEED_FLIST, "status": "running"}


@pytest_twisted.ensureDeferred
async def test_list_only_shows_the_nodes_own_containers(api: Api) -> None:
    assert SEED_CONTAINER not in await listed(api, SECOND_NODE)


@pytest_twisted.ensureDeferred
async def test_list_on_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get(f"/nodes/{UNKNOWN_NODE}/containers"), 404, UNKNOWN_NODE)


# Lifecycle ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_nic_hwaddr(api: Api, harness: Harness) -> None:
    """A NIC's ``hwaddr`` is shown back, except on AYS, whose template has none (Q9)."""
    nics = [{"type": "default", "hwaddr": "52:54:00:aa:bb:cc"}]
    async with container(api, SEED_NODE, nics=nics) as name:
        got = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}"), "GetContainer")
        [nic] = got["nics"]
        assert nic["type"] == "default"
        if harness.differs("container_nic_hwaddr"):
            assert "hwaddr" not in nic
        else:
            assert nic["hwaddr"] == "52:54:00:aa:bb:cc"


@pytest.mark.families("containers", "bridges")
@pytest_twisted.ensureDeferred
async def test_a_bridge_nic_names_a_bridge_that_exists(api: Api) -> None:
    """A nic of type ``bridge`` on a bridge the node does not have is a 400 naming it; on one it has, made."""
    name = unique("ct")
    body = container_body(name, nics=[{"type": "default"}, {"type": "bridge", "id": "nosuchbr"}])
    error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=body), 400, "nics[1].id",
             f"bridge 'nosuchbr' on node '{SEED_NODE}' does not exist")
    assert name not in [c["name"] for c in (await api.get(f"/nodes/{SEED_NODE}/containers")).json()]
    async with bridge(api, SEED_NODE) as br, \
            container(api, SEED_NODE, nics=[{"type": "bridge", "id": br}]) as name:
        got = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}"), "GetContainer")
        assert [(n["type"], n.get("id")) for n in got["nics"]] == [("bridge", br)]


@pytest_twisted.ensureDeferred
async def test_create_with_the_docs_payload(api: Api) -> None:
    """
    ``POST /nodes/{nodeid}/containers`` answers 201 with the new container's
    Location; the docs' spellings ``id`` and ``initprocesses`` are accepted.
    """
    name = unique("vfw")
    reply = expect(await api.post(f"/nodes/{SEED_NODE}/containers", json=docs_payload(name)), 201)
    try:
        assert reply.header("location") == f"/nodes/{SEED_NODE}/containers/{name}"
        # The 201 carries the container, as its GET answers it.
        answered = body_of(reply, "CreateContainer", 201)
        assert (await listed(api, SEED_NODE))[name]["status"] == "running"
        got = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}"), "GetContainer")
        assert answered == got
        assert got["hostname"] == name and got["flist"] == SEED_FLIST
        assert got["status"] == "running"
        assert got["hostNetworking"] is False
        [nic] = got["nics"]
        assert nic["type"] == "vlan" and nic["id"] == "0"
        assert nic["config"]["cidr"] == "192.168.57.217/24"
        assert nic["config"]["dns"] == ["8.8.8.8"]
    finally:
        no_content(await api.delete(f"/nodes/{SEED_NODE}/containers/{name}"))


@pytest_twisted.ensureDeferred
async def test_stop_start_delete(api: Api) -> None:
    """Stop answers 204 (halted), start 201 (running again), delete 204 (then 404)."""
    async with container(api, SEED_NODE, ports=["8080:80"]) as name:
        path = f"/nodes/{SEED_NODE}/containers/{name}"
        no_content(await api.post(f"{path}/stop"))
        assert (await listed(api, SEED_NODE))[name]["status"] == "halted"
        halted = body_of(await api.get(path), "GetContainer")
        assert halted["status"] == "halted" and halted["ports"] == ["8080:80"]
        no_content(await api.post(f"{path}/stop"))
        started = body_of(await api.post(f"{path}/start"), "StartContainer", 201)
        running = body_of(await api.get(path), "GetContainer")
        assert started == running
        assert running["status"] == "running" and running["ports"] == ["8080:80"]
        no_content(await api.delete(path))
        error_of(await api.get(path), 404, name)
        assert name not in await listed(api, SEED_NODE)
        error_of(await api.delete(path), 404, name)
        error_of(await api.post(f"{path}/start"), 404, name)
        error_of(await api.post(f"{path}/stop"), 404, name)


@pytest_twisted.ensureDeferred
async def test_create_runs_init_processes(api: Api) -> None:
    init = [{"name": "/bin/dnsmasq", "args": ["-d"]}]
    async with container(api, SEED_NODE, initProcesses=init) as name:
        got = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}"), "GetContainer")
        assert [p["name"] for p in got["initprocesses"]] == ["/bin/dnsmasq"]


@pytest_twisted.ensureDeferred
async def test_duplicate_name_is_409_on_any_node(api: Api) -> None:
    """Container names are unique in the whole pool."""
    async with container(api, SEED_NODE) as name:
        for node in (SEED_NODE, SECOND_NODE):
            reply = await api.post(f"/nodes/{node}/containers", json=container_body(name))
            error_of(reply, 409, name)
            assert reply.header("location") is None
    error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=container_body(SEED_CONTAINER)),
             409, SEED_CONTAINER)


@pytest_twisted.ensureDeferred
async def test_get_unknown_container_is_404(api: Api) -> None:
    error_of(await api.get(f"/nodes/{SEED_NODE}/containers/nosuchcontainer"), 404, "nosuchcontainer")
    error_of(await api.get(f"/nodes/{UNKNOWN_NODE}/containers/{SEED_CONTAINER}"), 404, UNKNOWN_NODE)


@pytest_twisted.ensureDeferred
async def test_create_on_unknown_node_is_404(api: Api) -> None:
    error_of(await api.post(f"/nodes/{UNKNOWN_NODE}/containers", json=container_body(unique("ct"))),
             404, UNKNOWN_NODE)


@pytest.mark.families("containers", "storagepools", "filesystems", "container_info")
@pytest_twisted.ensureDeferred
async def test_filesystems_are_mounted(api: Api) -> None:
    """Each ``<pool>:<filesystem>`` is mounted at ``/fs/<pool>/<filesystem>`` in the container."""
    async with storage_pool(api, SEED_NODE, ["/dev/sdc"]) as pool, \
            filesystem(api, SEED_NODE, pool) as fs, \
            container(api, SEED_NODE, filesystems=[f"{pool}:{fs}"]) as name:
        got = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}"), "GetContainer")
        assert got["filesystems"] == [f"{pool}:{fs}"]
        disks = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{name}/disks"),
                        "GetContainerDiskInfo")
        assert f"/fs/{pool}/{fs}" in [d["mountpoint"] for d in disks]


@pytest.mark.families("containers", "storagepools")
@pytest_twisted.ensureDeferred
async def test_unknown_filesystem_is_400(api: Api) -> None:
    name = unique("ct")
    body = container_body(name, filesystems=["nosuchpool:fs"])
    error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=body), 400, "nosuchpool")
    assert name not in await listed(api, SEED_NODE)
    async with storage_pool(api, SEED_NODE, ["/dev/sdc"]) as pool:
        body = container_body(name, filesystems=[f"{pool}:nosuchfs"])
        error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=body), 400, "nosuchfs")
    assert name not in await listed(api, SEED_NODE)


# Validation ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", f"/nodes/{SEED_NODE}/containers")


@pytest.mark.parametrize(("change", "words"), [
    ({"hostname": None}, ["hostname"]),
    ({"flist": ""}, ["flist"]),
    ({"name": "a b"}, ["name", "a b"]),
    ({"name": ""}, ["name"]),
    ({"nics": [{"type": "ethernet"}]}, ["nics[0].type", "vlan"]),
    ({"nics": [{"type": "vlan"}]}, ["id"]),
    ({"nics": [{"type": "default", "hwaddr": "zz:54:00:12:34:56"}]}, ["hwaddr"]),
    ({"ports": ["80"]}, ["ports[0]"]),
    ({"filesystems": ["nocolon"]}, ["filesystems[0]"]),
    ({"hostNetworking": "yes"}, ["hostNetworking", "boolean"]),
], ids=["missing-hostname", "empty-flist", "bad-name", "empty-name", "bad-nic-type",
        "vlan-without-id", "bad-mac", "bad-port", "bad-filesystem", "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_body_is_400(api: Api, change: dict[str, Any], words: list[str]) -> None:
    name = unique("ct")
    body = {k: v for k, v in {**container_body(name), **change}.items() if v is not None}
    error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=body), 400, *words)
    assert name not in await listed(api, SEED_NODE)


@pytest_twisted.ensureDeferred
async def test_missing_name_is_400(api: Api) -> None:
    body = container_body("x")
    del body["name"]
    error_of(await api.post(f"/nodes/{SEED_NODE}/containers", json=body), 400, "missing", "name")


@pytest.mark.parametrize("path", [
    "/nodes/a%20b/containers",
    f"/nodes/{SEED_NODE}/containers/a%20b",
    f"/nodes/{SEED_NODE}/containers/a%20b/start",
])
@pytest_twisted.ensureDeferred
async def test_bad_name_in_path_is_400(api: Api, path: str) -> None:
    method = "POST" if path.endswith("/start") else "GET"
    error_of(await api.request(method, path), 400, "must be")
