"""
Filesystems of a storage pool and their snapshots, including rollback
(``.../storagepools/{storagepoolname}/filesystems[/{filesystemname}[/snapshots[/{snapshotname}[/rollback]]]]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SEED_NODE, unique
from tests.support.resources import filesystem, storage_pool

FAMILY = ("filesystems", "storagepools")


@pytest_twisted.async_yield_fixture
async def pool(api: Api) -> AsyncIterator[str]:
    """A storage pool on the seed node's ``/dev/sdb`` for the test."""
    async with storage_pool(api, SEED_NODE, ["/dev/sdb"]) as name:
        yield name


def filesystems_of(pool: str) -> str:
    return f"/nodes/{SEED_NODE}/storagepools/{pool}/filesystems"


async def fs_names(api: Api, pool: str) -> list[str]:
    return list(body_of(await api.get(filesystems_of(pool)), "ListFilesystems"))


async def snapshot_names(api: Api, pool: str, fs: str) -> list[str]:
    reply = await api.get(f"{filesystems_of(pool)}/{fs}/snapshots")
    return list(body_of(reply, "ListFilesystemSnapshots"))


@pytest_twisted.ensureDeferred
async def test_lifecycle(api: Api, pool: str) -> None:
    """Create (201 + Location), list (names), read, delete (204)."""
    base = filesystems_of(pool)
    reply = await api.get(base)
    assert body_of(reply, "ListFilesystems") == [] and reply.body == b"[]"
    name = unique("fs")
    reply = expect(await api.post(base, json={"name": name, "quota": 1024, "readOnly": True}), 201)
    assert reply.header("location") == f"{base}/{name}"
    assert await fs_names(api, pool) == [name]
    fs = body_of(await api.get(f"{base}/{name}"), "GetFilesystemInfo")
    assert fs["name"] == name and fs["parent"] == pool
    assert fs["quota"] == 1024 and fs["readOnly"] is True
    assert fs["mountpoint"] == f"/mnt/storagepools/{pool}/filesystems/{name}"
    no_content(await api.delete(f"{base}/{name}"))
    assert await fs_names(api, pool) == []
    error_of(await api.get(f"{base}/{name}"), 404, name)
    error_of(await api.delete(f"{base}/{name}"), 404, name)


@pytest_twisted.ensureDeferred
async def test_defaults(api: Api, pool: str) -> None:
    """Only ``name`` is required: no quota, writable."""
    async with filesystem(api, SEED_NODE, pool) as name:
        fs = body_of(await api.get(f"{filesystems_of(pool)}/{name}"), "GetFilesystemInfo")
        assert fs["quota"] == 0 and fs["readOnly"] is False


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(api: Api, pool: str) -> None:
    async with filesystem(api, SEED_NODE, pool) as name:
        error_of(await api.post(filesystems_of(pool), json={"name": name}), 409, name)


@pytest_twisted.ensureDeferred
async def test_unknown_pool_is_404(api: Api) -> None:
    base = filesystems_of("nosuchpool")
    error_of(await api.get(base), 404, "nosuchpool")
    error_of(await api.post(base, json={"name": "fs"}), 404, "nosuchpool")
    error_of(await api.get(f"{base}/fs/snapshots"), 404, "nosuchpool")


# Snapshots ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_snapshot_lifecycle(api: Api, pool: str) -> None:
    async with filesystem(api, SEED_NODE, pool) as fs:
        base = f"{filesystems_of(pool)}/{fs}/snapshots"
        reply = await api.get(base)
        assert body_of(reply, "ListFilesystemSnapshots") == [] and reply.body == b"[]"
        reply = expect(await api.post(base, json={"name": "before-upgrade"}), 201)
        assert reply.header("location") == f"{base}/before-upgrade"
        assert await snapshot_names(api, pool, fs) == ["before-upgrade"]
        snap = body_of(await api.get(f"{base}/before-upgrade"), "GetFilesystemSnapshotInfo")
        assert snap["name"] == "before-upgrade" and snap["timestamp"] > 0
        error_of(await api.post(base, json={"name": "before-upgrade"}), 409, "before-upgrade")
        no_content(await api.delete(f"{base}/before-upgrade"))
        assert await snapshot_names(api, pool, fs) == []
        error_of(await api.get(f"{base}/before-upgrade"), 404, "before-upgrade")
        error_of(await api.delete(f"{base}/before-upgrade"), 404, "before-upgrade")
        # Snapshots are not filesystems.
        assert await fs_names(api, pool) == [fs]


@pytest_twisted.ensureDeferred
async def test_rollback(api: Api, pool: str) -> None:
    """
    Rollback answers 204; the filesystem stays, with its settings, and the
    snapshot stays available for another rollback.
    """
    async with filesystem(api, SEED_NODE, pool, quota=2048) as fs:
        base = f"{filesystems_of(pool)}/{fs}"
        expect(await api.post(f"{base}/snapshots", json={"name": "s1"}), 201)
        for _ in range(2):
            no_content(await api.post(f"{base}/snapshots/s1/rollback"))
            got = body_of(await api.get(base), "GetFilesystemInfo")
            assert got["quota"] == 2048 and got["name"] == fs
            assert await snapshot_names(api, pool, fs) == ["s1"]
            assert await fs_names(api, pool) == [fs]
        error_of(await api.post(f"{base}/snapshots/nosuchsnap/rollback"), 404, "nosuchsnap")


@pytest_twisted.ensureDeferred
async def test_deleting_a_filesystem_deletes_its_snapshots(api: Api, pool: str) -> None:
    async with filesystem(api, SEED_NODE, pool) as fs:
        expect(await api.post(f"{filesystems_of(pool)}/{fs}/snapshots", json={"name": "s1"}), 201)
        no_content(await api.delete(f"{filesystems_of(pool)}/{fs}"))
    async with filesystem(api, SEED_NODE, pool, name=fs):
        assert await snapshot_names(api, pool, fs) == []


@pytest_twisted.ensureDeferred
async def test_snapshots_of_unknown_filesystem_are_404(api: Api, pool: str) -> None:
    base = f"{filesystems_of(pool)}/nosuchfs/snapshots"
    error_of(await api.get(base), 404, "nosuchfs")
    error_of(await api.post(base, json={"name": "s"}), 404, "nosuchfs")
    error_of(await api.post(f"{base}/s/rollback"), 404, "nosuchfs")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api, pool: str) -> None:
    await malformed_json_is_400(api, "POST", filesystems_of(pool))
    async with filesystem(api, SEED_NODE, pool) as fs:
        await malformed_json_is_400(api, "POST", f"{filesystems_of(pool)}/{fs}/snapshots")


@pytest.mark.parametrize(("body", "words"), [
    ({}, ["missing", "name"]),
    ({"name": "a b"}, ["name"]),
    ({"name": "fs", "quota": -1}, ["quota", "at least 0"]),
    ({"name": "fs", "quota": 4294967296}, ["quota", "at most"]),
    ({"name": "fs", "readOnly": "no"}, ["readOnly", "boolean"]),
], ids=["missing-name", "bad-name", "negative-quota", "huge-quota", "wrong-type"])
@pytest_twisted.ensureDeferred
async def test_invalid_filesystem_is_400(api: Api, pool: str, body: dict[str, Any], words: list[str]) -> None:
    error_of(await api.post(filesystems_of(pool), json=body), 400, *words)
    assert await fs_names(api, pool) == []


@pytest.mark.parametrize(("body", "words"), [
    ({}, ["missing", "name"]),
    ({"name": "x" * 51}, ["name", "at most 50"]),
    ({"name": "a:b"}, ["name"]),
], ids=["missing-name", "too-long", "bad-name"])
@pytest_twisted.ensureDeferred
async def test_invalid_snapshot_is_400(api: Api, pool: str, body: dict[str, Any], words: list[str]) -> None:
    async with filesystem(api, SEED_NODE, pool) as fs:
        error_of(await api.post(f"{filesystems_of(pool)}/{fs}/snapshots", json=body), 400, *words)
        assert await snapshot_names(api, pool, fs) == []


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api, pool: str) -> None:
    error_of(await api.get(f"{filesystems_of(pool)}/a%20b"), 400, "filesystemname")
    error_of(await api.get(f"{filesystems_of(pool)}/fs/snapshots/a%20b"), 400, "snapshotname")
