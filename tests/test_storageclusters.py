"""
Storage clusters (``/storageclusters[/{label}]``): storage servers spread
over the free disks of some nodes.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SECOND_NODE, SEED_NODE, unique
from tests.support.resources import storage_cluster

FAMILY = "storageclusters"


def cluster_body(label: str, **fields: Any) -> dict[str, Any]:
    return {"label": label, "servers": 2, "driveType": "ssd", "nodes": [SEED_NODE, SECOND_NODE], **fields}


async def labels(api: Api) -> list[str]:
    return list(body_of(await api.get("/storageclusters"), "ListAllClusters"))


@pytest_twisted.ensureDeferred
async def test_lifecycle(api: Api) -> None:
    """Deploy (201 + Location), list (labels), read (servers per node), kill (204)."""
    label = unique("cl")
    reply = expect(await api.post("/storageclusters", json=cluster_body(label, servers=4)), 201)
    try:
        assert reply.header("location") == f"/storageclusters/{label}"
        assert label in await labels(api)
        cluster = body_of(await api.get(f"/storageclusters/{label}"), "GetClusterInfo")
        assert cluster["label"] == label and cluster["driveType"] == "ssd"
        assert sorted(cluster["nodes"]) == sorted([SEED_NODE, SECOND_NODE])
        assert cluster["status"] in ("deploying", "ready")
        assert len(cluster["dataStorage"]) == 4
        assert cluster["metadataStorage"]
        servers = cluster["dataStorage"] + cluster["metadataStorage"]
        assert len({(s["ip"], s["port"]) for s in servers}) == len(servers)
    finally:
        no_content(await api.delete(f"/storageclusters/{label}"))
    assert label not in await labels(api)
    error_of(await api.get(f"/storageclusters/{label}"), 404, label)
    error_of(await api.delete(f"/storageclusters/{label}"), 404, label)


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api) -> None:
    async with storage_cluster(api, [SECOND_NODE]) as label:
        error_of(await api.post("/storageclusters", json=cluster_body(label)), 409, label)


@pytest_twisted.ensureDeferred
async def test_unknown_node_is_404(api: Api) -> None:
    label = unique("cl")
    reply = await api.post("/storageclusters", json=cluster_body(label, nodes=["000000000000"], servers=1))
    error_of(reply, 404, "000000000000")
    assert label not in await labels(api)


@pytest_twisted.ensureDeferred
async def test_not_enough_disks_is_400(api: Api) -> None:
    """The second node has no NVMe drive."""
    label = unique("cl")
    reply = await api.post("/storageclusters",
                           json=cluster_body(label, nodes=[SECOND_NODE], servers=1, driveType="nvme"))
    error_of(reply, 400, SECOND_NODE, "nvme")
    assert label not in await labels(api)


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", "/storageclusters")


@pytest.mark.parametrize(("change", "words"), [
    ({"servers": 3}, ["servers", "multiple", "nodes"]),
    ({"servers": 0}, ["servers", "at least 1"]),
    ({"nodes": []}, ["nodes", "at least 1"]),
    ({"nodes": None}, ["missing", "nodes"]),
    ({"driveType": "tape"}, ["driveType", "archive"]),
    ({"label": "a b"}, ["label"]),
    ({"servers": "2"}, ["servers", "integer"]),
], ids=["not-divisible", "no-servers", "no-nodes", "missing-nodes", "bad-drive-type", "bad-label",
        "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_body_is_400(api: Api, change: dict[str, Any], words: list[str]) -> None:
    label = unique("cl")
    body = {k: v for k, v in {**cluster_body(label), **change}.items() if v is not None}
    error_of(await api.post("/storageclusters", json=body), 400, *words)
    assert label not in await labels(api)


@pytest_twisted.ensureDeferred
async def test_bad_label_in_path_is_400(api: Api) -> None:
    error_of(await api.get("/storageclusters/a%20b"), 400, "label")
    error_of(await api.delete("/storageclusters/a%20b"), 400, "label")
