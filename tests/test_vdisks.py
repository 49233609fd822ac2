"""
Virtual disks (``/vdisks[/{vdiskid}[/resize|/rollback]]``), stored in a
storage cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, Harness, unique
from tests.support.polling import eventually
from tests.support.resources import storage_cluster, vdisk

FAMILY = ("vdisks", "storageclusters")


@pytest_twisted.async_yield_fixture
async def cluster(api: Api) -> AsyncIterator[str]:
    async with storage_cluster(api, [SECOND_NODE]) as label:
        yield label


def vdisk_body(name: str, cluster: str, **fields: Any) -> dict[str, Any]:
    return {"id": name, "size": 20, "type": "boot", "storagecluster": cluster, **fields}


async def listed(api: Api) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in body_of(await api.get("/vdisks"), "ListVdisks")}


@pytest_twisted.ensureDeferred
async def test_lifecycle(api: Api, cluster: str) -> None:
    """Create (201 + Location; blocksize 4096 by default), list, read, delete (204)."""
    name = unique("vd")
    reply = expect(await api.post("/vdisks", json=vdisk_body(name, cluster)), 201)
    try:
        assert reply.header("location") == f"/vdisks/{name}"
        item = (await listed(api))[name]
        assert item["type"] == "boot"
        assert item["storageCluster"] == item["storagecluster"] == cluster
        got = body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")
        assert (got["id"], got["size"], got["blocksize"], got["type"]) == (name, 20, 4096, "boot")
        assert got["storagecluster"] == cluster and got["readOnly"] is False
        assert got["tlogStoragecluster"] == ""
    finally:
        no_content(await api.delete(f"/vdisks/{name}"))
    assert name not in await listed(api)
    error_of(await api.get(f"/vdisks/{name}"), 404, name)
    error_of(await api.delete(f"/vdisks/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_from_a_template(api: Api, cluster: str) -> None:
    async with vdisk(api, cluster) as template, \
            vdisk(api, cluster, templatevdisk=template, blocksize=512, readOnly=True) as name:
        got = body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")
        assert got["blocksize"] == 512 and got["readOnly"] is True


@pytest_twisted.ensureDeferred
async def test_resize(api: Api, cluster: str) -> None:
    """Growing (or keeping the size) answers 204; shrinking is 400."""
    async with vdisk(api, cluster, size=10) as name:
        no_content(await api.post(f"/vdisks/{name}/resize", json={"newSize": 30}))
        assert body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")["size"] == 30
        no_content(await api.post(f"/vdisks/{name}/resize", json={"newSize": 30}))
        error_of(await api.post(f"/vdisks/{name}/resize", json={"newSize": 5}), 400, "newSize", "30")
        assert body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")["size"] == 30


@pytest_twisted.ensureDeferred
async def test_rollback(api: Api, cluster: str, harness: Harness) -> None:
    """
    Rollback to an epoch answers 204; the vdisk is ``rollingback`` for a
    while, then as before (on AYS: ``running``, see DIFFERENCES).
    """
    async with vdisk(api, cluster) as name:
        before = body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")["status"]
        no_content(await api.post(f"/vdisks/{name}/rollback", json={"epoch": 1491984742}))
        after = "running" if harness.differs("vdisk_rollback_status") else before

        async def status() -> str:
            return str(body_of(await api.get(f"/vdisks/{name}"), "GetVdiskInfo")["status"])

        # Something must show that it happened: the vdisk seen rolling back,
        # or a status other than before.
        first = await status()
        assert first == "rollingback" or after != before, (before, first)
        await eventually(status, lambda s: s == after, harness.patience, "rollback done")


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api, cluster: str) -> None:
    async with vdisk(api, cluster) as name:
        error_of(await api.post("/vdisks", json=vdisk_body(name, cluster)), 409, name)


@pytest.mark.parametrize(("change", "words"), [
    ({"storagecluster": "nosuchcluster"}, ["nosuchcluster"]),
    ({"tlogStoragecluster": "nosuchcluster"}, ["nosuchcluster"]),
    ({"templatevdisk": "nosuchvdisk"}, ["nosuchvdisk"]),
], ids=["cluster", "tlog-cluster", "template"])
@pytest_twisted.ensureDeferred
async def test_unknown_references_are_404(api: Api, cluster: str, change: dict[str, Any],
                                          words: list[str]) -> None:
    name = unique("vd")
    error_of(await api.post("/vdisks", json=vdisk_body(name, cluster, **change)), 404, *words)
    assert name not in await listed(api)


@pytest_twisted.ensureDeferred
async def test_unknown_vdisk_is_404(api: Api) -> None:
    error_of(await api.get("/vdisks/nosuchvdisk"), 404, "nosuchvdisk")
    error_of(await api.post("/vdisks/nosuchvdisk/resize", json={"newSize": 10}), 404, "nosuchvdisk")
    error_of(await api.post("/vdisks/nosuchvdisk/rollback", json={"epoch": 10}), 404, "nosuchvdisk")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api, cluster: str) -> None:
    await malformed_json_is_400(api, "POST", "/vdisks")
    async with vdisk(api, cluster) as name:
        await malformed_json_is_400(api, "POST", f"/vdisks/{name}/resize")
        await malformed_json_is_400(api, "POST", f"/vdisks/{name}/rollback")


@pytest.mark.parametrize(("change", "words"), [
    ({"storagecluster": None}, ["missing", "storagecluster"]),
    ({"size": 0}, ["size", "at least 1"]),
    ({"blocksize": 0}, ["blocksize", "one of", "512"]),
    ({"blocksize": 3000}, ["blocksize", "one of", "65536"]),
    ({"size": 65537}, ["size", "at most 65536"]),
    ({"type": "swap"}, ["type", "boot"]),
    ({"id": "a/b"}, ["id"]),
    ({"id": "v" * 65}, ["id", "at most 64"]),
    ({"readOnly": 1}, ["readOnly", "boolean"]),
], ids=["missing-cluster", "zero-size", "zero-blocksize", "blocksize-not-a-power-of-two", "huge-size",
        "bad-type", "bad-id", "long-id", "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_create_is_400(api: Api, cluster: str, change: dict[str, Any],
                                     words: list[str]) -> None:
    name = unique("vd")
    body = {k: v for k, v in {**vdisk_body(name, cluster), **change}.items() if v is not None}
    error_of(await api.post("/vdisks", json=body), 400, *words)
    assert name not in await listed(api)


@pytest_twisted.ensureDeferred
async def test_invalid_resize_and_rollback_are_400(api: Api, cluster: str) -> None:
    async with vdisk(api, cluster) as name:
        error_of(await api.post(f"/vdisks/{name}/resize", json={}), 400, "missing", "newSize")
        error_of(await api.post(f"/vdisks/{name}/resize", json={"newSize": "big"}), 400, "newSize")
        error_of(await api.post(f"/vdisks/{name}/rollback", json={}), 400, "missing", "epoch")
        error_of(await api.post(f"/vdisks/{name}/rollback", json={"epoch": 0}), 400, "epoch")


@pytest_twisted.ensureDeferred
async def test_bad_id_in_path_is_400(api: Api) -> None:
    error_of(await api.get("/vdisks/a%20b"), 400, "vdiskid")
    error_of(await api.post("/vdisks/a%20b/resize", json={"newSize": 10}), 400, "vdiskid")
