"""
Storage pools of a node and their devices
(``/nodes/{nodeid}/storagepools[/{storagepoolname}[/devices[/{deviceuuid}]]]``).

A pool is a btrfs filesystem over whole disks of the node; these tests use
the free disks ``/dev/sdb`` and ``/dev/sdc`` of the second node.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, unique
from tests.support.resources import storage_pool

FAMILY = "storagepools"
POOLS = f"/nodes/{SECOND_NODE}/storagepools"


def pool_body(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "metadataProfile": "raid1", "dataProfile": "raid0",
            "devices": ["/dev/sdb"], **fields}


async def names(api: Api) -> list[str]:
    return [p["name"] for p in body_of(await api.get(POOLS), "ListStoragePools")]


async def devices(api: Api, pool: str) -> list[dict[str, Any]]:
    return list(body_of(await api.get(f"{POOLS}/{pool}/devices"), "ListStoragePoolDevices"))


@pytest_twisted.ensureDeferred
async def test_lifecycle(api: Api) -> None:
    """Create (201 + Location), list, read (capacities in GiB, profiles, mountpoint), delete (204)."""
    name = unique("sp")
    reply = expect(await api.post(POOLS, json=pool_body(name)), 201)
    try:
        assert reply.header("location") == f"{POOLS}/{name}"
        [item] = [p for p in body_of(await api.get(POOLS), "ListStoragePools") if p["name"] == name]
        assert item["status"] == "healthy" and item["capacity"] > 0
        pool = body_of(await api.get(f"{POOLS}/{name}"), "GetStoragePoolInfo")
        assert pool["name"] == name
        assert pool["metadataProfile"] == "raid1" and pool["dataProfile"] == "raid0"
        assert 0 < pool["capacity"] <= pool["totalCapacity"] <= 100
        assert pool["mountpoint"] == f"/mnt/storagepools/{name}"
    finally:
        no_content(await api.delete(f"{POOLS}/{name}"))
    assert name not in await names(api)
    error_of(await api.get(f"{POOLS}/{name}"), 404, name)
    error_of(await api.delete(f"{POOLS}/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_a_deleted_pools_disks_are_free_again(api: Api) -> None:
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]):
        pass
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]) as name:
        assert name in await names(api)


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api) -> None:
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]) as name:
        reply = await api.post(POOLS, json=pool_body(name, devices=["/dev/sdc"]))
        error_of(reply, 409, name)
        assert reply.header("location") is None


@pytest.mark.parametrize(("devices", "words"), [
    (["/dev/nosuchdisk"], ["/dev/nosuchdisk"]),
    (["/dev/sda"], ["/dev/sda", "in use"]),
])
@pytest_twisted.ensureDeferred
async def test_unusable_device_is_400(api: Api, devices: list[str], words: list[str]) -> None:
    name = unique("sp")
    error_of(await api.post(POOLS, json=pool_body(name, devices=devices)), 400, *words)
    assert name not in await names(api)


@pytest_twisted.ensureDeferred
async def test_a_disk_serves_one_pool(api: Api) -> None:
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]):
        name = unique("sp")
        error_of(await api.post(POOLS, json=pool_body(name)), 400, "/dev/sdb")
        assert name not in await names(api)


@pytest_twisted.ensureDeferred
async def test_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get("/nodes/000000000000/storagepools"), 404, "000000000000")
    error_of(await api.post("/nodes/000000000000/storagepools", json=pool_body(unique("sp"))),
             404, "000000000000")


# Devices ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_devices(api: Api) -> None:
    """
    A pool lists its devices (disk path, partition uuid); more disks can be
    added (204, disks already in the pool are skipped) and removed by uuid
    (204 with the removed device's Location).
    """
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]) as name:
        [first] = await devices(api, name)
        assert first["deviceName"] == "/dev/sdb" and first["uuid"]
        assert first["status"] == "healthy"
        device = body_of(await api.get(f"{POOLS}/{name}/devices/{first['uuid']}"),
                         "GetStoragePoolDeviceInfo")
        assert device == first

        no_content(await api.post(f"{POOLS}/{name}/devices", json=["/dev/sdb", "/dev/sdc"]))
        now = {d["deviceName"]: d for d in await devices(api, name)}
        assert set(now) == {"/dev/sdb", "/dev/sdc"}
        total = body_of(await api.get(f"{POOLS}/{name}"), "GetStoragePoolInfo")["totalCapacity"]
        assert total > 100

        uuid = now["/dev/sdc"]["uuid"]
        reply = no_content(await api.delete(f"{POOLS}/{name}/devices/{uuid}"))
        assert reply.header("location") == f"{POOLS}/{name}/devices/{uuid}"
        assert [d["deviceName"] for d in await devices(api, name)] == ["/dev/sdb"]
        error_of(await api.get(f"{POOLS}/{name}/devices/{uuid}"), 404, uuid)
        error_of(await api.delete(f"{POOLS}/{name}/devices/{uuid}"), 404, uuid)
        async with storage_pool(api, SECOND_NODE, ["/dev/sdc"]) as other:
            assert other in await names(api)


@pytest_twisted.ensureDeferred
async def test_adding_an_unknown_device_is_400(api: Api) -> None:
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]) as name:
        reply = await api.post(f"{POOLS}/{name}/devices", json=["/dev/nosuchdisk"])
        error_of(reply, 400, "/dev/nosuchdisk")
        assert len(await devices(api, name)) == 1


@pytest_twisted.ensureDeferred
async def test_devices_of_unknown_pool_are_404(api: Api) -> None:
    error_of(await api.get(f"{POOLS}/nosuchpool/devices"), 404, "nosuchpool")
    error_of(await api.post(f"{POOLS}/nosuchpool/devices", json=["/dev/sdc"]), 404, "nosuchpool")
    error_of(await api.get(f"{POOLS}/nosuchpool/devices/abc"), 404, "nosuchpool")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", POOLS)
    await malformed_json_is_400(api, "POST", f"{POOLS}/anypool/devices")


@pytest.mark.parametrize(("change", "words"), [
    ({"devices": None}, ["missing", "devices"]),
    ({"devices": []}, ["devices", "at least 1"]),
    ({"metadataProfile": None}, ["missing", "metadataProfile"]),
    ({"dataProfile": "raid7"}, ["dataProfile", "raid10"]),
    ({"name": "a b"}, ["name"]),
    ({"devices": "/dev/sdb"}, ["devices", "array"]),
], ids=["missing-devices", "no-devices", "missing-profile", "bad-profile", "bad-name", "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_body_is_400(api: Api, change: dict[str, Any], words: list[str]) -> None:
    name = unique("sp")
    body = {k: v for k, v in {**pool_body(name), **change}.items() if v is not None}
    error_of(await api.post(POOLS, json=body), 400, *words)
    assert name not in await names(api)


@pytest.mark.parametrize("body", [{"devices": ["/dev/sdc"]}, "/dev/sdc", [1]])
@pytest_twisted.ensureDeferred
async def test_devices_body_is_an_array_of_paths(api: Api, body: Any) -> None:
    async with storage_pool(api, SECOND_NODE, ["/dev/sdb"]) as name:
        error_of(await api.post(f"{POOLS}/{name}/devices", json=body), 400)
        assert len(await devices(api, name)) == 1


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api) -> None:
    error_of(await api.get(f"{POOLS}/a%20b"), 400, "storagepoolname")
    error_of(await api.get(f"{POOLS}/anypool/devices/a%20b"), 400, "deviceuuid")
