"""
Things a test needs and must not leave behind: each is an async context
manager that creates the thing through the API (asserting the documented
answer), yields its name, and deletes it on the way out (whatever the test
did to it meanwhile).

    async with container(api, SEED_NODE) as name:
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from testbed.http_api import Api
from tests.support.answers import expect
from tests.support.backends import SEED_FLIST, Harness, unique
from tests.support.polling import eventually


async def created(api: Api, path: str, body: Any, location: str) -> None:
    """POST ``body`` to ``path``; assert 201 with ``Location: location``."""
    reply = expect(await api.post(path, json=body), 201)
    assert reply.header("location") == location, reply.headers


async def removed(api: Api, path: str) -> None:
    """DELETE ``path``; gone already is fine."""
    reply = await api.delete(path)
    assert reply.status in (204, 404), f"cleaning up {path}: {reply}"


def container_body(name: str, **fields: Any) -> dict[str, Any]:
    """A ``CreateContainer`` body with a default nic, overridable per field."""
    body: dict[str, Any] = {
        "name": name,
        "hostname": name,
        "flist": SEED_FLIST,
        "nics": [{"type": "default"}],
    }
    body.update(fields)
    return body


@asynccontextmanager
async def container(api: Api, nodeid: str, **fields: Any) -> AsyncIterator[str]:
    """A running container on ``nodeid`` (``fields`` override the create body)."""
    name = fields.pop("name", None) or unique("ct")
    await created(api, f"/nodes/{nodeid}/containers", container_body(name, **fields),
                  f"/nodes/{nodeid}/containers/{name}")
    try:
        yield name
    finally:
        await removed(api, f"/nodes/{nodeid}/containers/{name}")


async def container_halts(api: Api, harness: Harness, nodeid: str, name: str) -> None:
    """Wait, as long as ``harness`` is patient, for the container to be ``halted``."""
    async def status() -> Any:
        return (await api.get(f"/nodes/{nodeid}/containers/{name}")).json().get("status")

    await eventually(status, lambda s: s == "halted", harness.patience, f"container {name} halted")


@asynccontextmanager
async def bridge(api: Api, nodeid: str, **fields: Any) -> AsyncIterator[str]:
    """A bridge on ``nodeid`` (no network mode by default); its name fits an interface name."""
    name = fields.pop("name", None) or f"br{unique('')[-8:]}"
    await created(api, f"/nodes/{nodeid}/bridges", {"name": name, "networkMode": "none", **fields},
                  f"/nodes/{nodeid}/bridges/{name}")
    try:
        yield name
    finally:
        await removed(api, f"/nodes/{nodeid}/bridges/{name}")


@asynccontextmanager
async def storage_pool(api: Api, nodeid: str, devices: list[str], **fields: Any) -> AsyncIterator[str]:
    """A storage pool on ``nodeid`` made of ``devices``."""
    name = fields.pop("name", None) or unique("sp")
    body = {"name": name, "metadataProfile": "single", "dataProfile": "single",
            "devices": devices, **fields}
    await created(api, f"/nodes/{nodeid}/storagepools", body,
                  f"/nodes/{nodeid}/storagepools/{name}")
    try:
        yield name
    finally:
        await removed(api, f"/nodes/{nodeid}/storagepools/{name}")


@asynccontextmanager
async def filesystem(api: Api, nodeid: str, pool: str, **fields: Any) -> AsyncIterator[str]:
    """A filesystem in storage pool ``pool``."""
    name = fields.pop("name", None) or unique("fs")
    base = f"/nodes/{nodeid}/storagepools/{pool}/filesystems"
    await created(api, base, {"name": name, **fields}, f"{base}/{name}")
    try:
        yield name
    finally:
        await removed(api, f"{base}/{name}")


@asynccontextmanager
async def storage_cluster(api: Api, nodes: list[str], drive_type: str = "hdd",
                          servers: int | None = None) -> AsyncIterator[str]:
    """A storage cluster over ``nodes`` (one server per node by default)."""
    label = unique("cl")
    body = {"label": label, "servers": servers or len(nodes), "driveType": drive_type, "nodes": nodes}
    await created(api, "/storageclusters", body, f"/storageclusters/{label}")
    try:
        yield label
    finally:
        await removed(api, f"/storageclusters/{label}")


@asynccontextmanager
async def vdisk(api: Api, cluster: str, **fields: Any) -> AsyncIterator[str]:
    """A vdisk in storage cluster ``cluster``."""
    name = fields.pop("id", None) or unique("vd")
    body = {"id": name, "size": 10, "type": "db", "storagecluster": cluster, **fields}
    await created(api, "/vdisks", body, f"/vdisks/{name}")
    try:
        yield name
    finally:
        await removed(api, f"/vdisks/{name}")


@asynccontextmanager
async def vm(api: Api, nodeid: str, **fields: Any) -> AsyncIterator[str]:
    """A VM on ``nodeid``."""
    name = fields.pop("id", None) or unique("vm")
    body = {"id": name, "memory": 512, "cpu": 2, **fields}
    await created(api, f"/nodes/{nodeid}/vms", body, f"/nodes/{nodeid}/vms/{name}")
    try:
        yield name
    finally:
        # The VM may have migrated; delete it wherever it is.
        for node in [n["id"] for n in (await api.get("/nodes")).json()]:
            reply = await api.get(f"/nodes/{node}/vms/{name}")
            if reply.status == 200:
                await removed(api, f"/nodes/{node}/vms/{name}")
