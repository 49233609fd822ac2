"""
Lists that page and filter, on every backend (README, "Lists: paging,
filters, unknown parameters"): every list operation pages by ``?limit=``
and the cursor of its ``Link: <...>; rel="next"`` header without a
duplicate or a gap, also while items are added between pages; bad limits
and cursors and unknown query parameters are 400s naming them; the
``status`` and ``name`` filters; the pool-wide ``GET /containers`` and
``GET /vms``, each item naming its node.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_twisted

from rpoold.contract import OPERATIONS
from testbed.http_api import Api, Reply
from tests.support.answers import body_of, error_of, expect
from tests.support.backends import SECOND_NODE, SEED_CONTAINER, SEED_NODE, Harness, unique
from tests.support.resources import container, vm

FAMILY = "containers"

#: Where each list operation is reached with the seed alone.
SEED_PATHS: dict[str, str] = {
    "ListNodes": "/nodes",
    "GetCPUInfo": f"/nodes/{SEED_NODE}/cpus",
    "GetDiskInfo": f"/nodes/{SEED_NODE}/disks",
    "GetNicInfo": f"/nodes/{SEED_NODE}/nics",
    "ListNodeJobs": f"/nodes/{SEED_NODE}/jobs",
    "ListNodeProcesses": f"/nodes/{SEED_NODE}/processes",
    "ListBridges": f"/nodes/{SEED_NODE}/bridges",
    "ListStoragePools": f"/nodes/{SEED_NODE}/storagepools",
    "ListZerotier": f"/nodes/{SEED_NODE}/zerotiers",
    "ListContainers": f"/nodes/{SEED_NODE}/containers",
    "GetContainerCPUInfo": f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/cpus",
    "GetContainerDiskInfo": f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/disks",
    "GetContainerNicInfo": f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/nics",
    "ListContainerJobs": f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs",
    "ListContainerProcesses": f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/processes",
    "ListVMs": f"/nodes/{SEED_NODE}/vms",
    "ListAllClusters": "/storageclusters",
    "ListVdisks": "/vdisks",
    "ListPoolContainers": "/containers",
    "ListPoolVMs": "/vms",
}
#: The lists below a storage pool or a filesystem (reached in the tests of those families).
NEEDS_MORE = {"ListStoragePoolDevices", "ListFilesystems", "ListFilesystemSnapshots"}
LISTS = {op.name: op for op in OPERATIONS if op.listing is not None}


def test_every_list_operation_pages() -> None:
    """Every GET answering an array declares its paging, and is paged below (or in its family's tests)."""
    arrays = {op.name for op in OPERATIONS if op.method == "GET" and (op.response or "").endswith("[]")}
    assert set(LISTS) == arrays
    assert set(SEED_PATHS) | NEEDS_MORE == arrays


def next_link(reply: Reply) -> str | None:
    """The path and query of the ``Link: <...>; rel="next"`` header, if any."""
    link = reply.header("link")
    if link is None:
        return None
    found = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert found is not None, link
    return found.group(1)


def key_of(op_name: str, item: Any) -> Any:
    spec = LISTS[op_name].listing
    assert spec is not None
    if not spec.key:
        return item if isinstance(item, str) else repr(sorted(item.items()))
    return tuple(item[name] for name in spec.key)


async def pages(api: Api, op_name: str, path: str, limit: int, between: Any = None,
                **params: str) -> tuple[list[Any], list[Reply]]:
    """Every page of a list, following its ``Link`` headers; ``between()`` runs after each page."""
    replies = [expect(await api.get(path, params={"limit": str(limit), **params}), 200)]
    items = list(body_of(replies[0], op_name))
    while (link := next_link(replies[-1])) is not None:
        assert len(body_of(replies[-1], op_name)) == limit
        if between is not None:
            await between()
        replies.append(expect(await api.get(link), 200))
        items += body_of(replies[-1], op_name)
    return items, replies


@pytest.mark.parametrize("name", list(SEED_PATHS))
@pytest_twisted.ensureDeferred
async def test_a_list_pages_one_by_one_as_it_is_whole(api: Api, harness: Harness, name: str) -> None:
    """Pages of one item hold the whole list's items, each once, in the list's order."""
    if not harness.serves(frozenset({LISTS[name].family})):
        pytest.skip(f"{harness} does not serve the '{LISTS[name].family}' family")
    path = SEED_PATHS[name]
    whole = body_of(expect(await api.get(path), 200), name)
    assert expect(await api.get(path), 200).header("link") is None
    items, replies = await pages(api, name, path, 1)
    keys = [key_of(name, i) for i in items]
    assert sorted(keys, key=repr) == sorted((key_of(name, i) for i in whole), key=repr)
    assert len(replies) == max(len(whole), 1)


@pytest_twisted.ensureDeferred
async def test_paging_while_containers_are_added_has_no_duplicate_and_no_gap(api: Api) -> None:
    """Containers created between pages, before and after the cursor, never shift a page."""
    prefix = unique("pg")
    async with AsyncExitStack() as stack:
        first = [await stack.enter_async_context(container(api, SEED_NODE, name=f"{prefix}_{c}"))
                 for c in "bdfh"]
        added: list[str] = []

        async def add() -> None:
            # One before every name listed so far, one after them all.
            for name in (f"{prefix}_a{len(added)}", f"{prefix}_z{len(added)}"):
                added.append(await stack.enter_async_context(container(api, SEED_NODE, name=name)))

        items, replies = await pages(api, "ListContainers", f"/nodes/{SEED_NODE}/containers", 2,
                                     between=add, name=prefix)
        names = [i["name"] for i in items]
        assert len(names) == len(set(names)), names
        assert set(first) <= set(names)
        assert names == sorted(names)
        assert len(replies) >= 2 and added
        assert {f"{prefix}_z{n}" for n in range(0, len(added), 2)} <= set(names)


@pytest.mark.families("vms")
@pytest_twisted.ensureDeferred
async def test_paging_vms_while_vms_are_added(api: Api) -> None:
    prefix = unique("pv")
    async with AsyncExitStack() as stack:
        first = [await stack.enter_async_context(vm(api, SEED_NODE, id=f"{prefix}_{c}")) for c in "bdf"]
        added: list[str] = []

        async def add() -> None:
            added.append(await stack.enter_async_context(vm(api, SEED_NODE, id=f"{prefix}_a{len(added)}")))

        items, _ = await pages(api, "ListVMs", f"/nodes/{SEED_NODE}/vms", 1, between=add)
        ids = [i["id"] for i in items]
        assert len(ids) == len(set(ids)), ids
        assert set(first) <= set(ids)


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "", "1.5", "٣"])
@pytest_twisted.ensureDeferred
async def test_a_limit_out_of_bounds_is_400_naming_it(api: Api, limit: str) -> None:
    reply = await api.get(f"/nodes/{SEED_NODE}/containers", params={"limit": limit})
    assert error_of(reply, 400) == "query parameter 'limit' must be an integer from 1 to 1000"


@pytest.mark.parametrize("limit", ["1", "1000"])
@pytest_twisted.ensureDeferred
async def test_the_limit_bounds_are_taken(api: Api, limit: str) -> None:
    reply = expect(await api.get(f"/nodes/{SEED_NODE}/containers", params={"limit": limit}), 200)
    assert 1 <= len(reply.json()) <= int(limit)


@pytest.mark.parametrize("cursor", ["!!", "bm90IGpzb24", "WzEsMiwzXQ", "e30", "x" * 3000])
@pytest_twisted.ensureDeferred
async def test_a_cursor_this_list_did_not_give_is_400_naming_it(api: Api, cursor: str) -> None:
    reply = await api.get(f"/nodes/{SEED_NODE}/containers", params={"cursor": cursor})
    assert error_of(reply, 400) == "the cursor is not one this list gave out (query parameter 'cursor')"


@pytest_twisted.ensureDeferred
async def test_a_limit_given_twice_is_400(api: Api) -> None:
    reply = await api.get(f"/nodes/{SEED_NODE}/containers?limit=1&limit=2")
    assert error_of(reply, 400) == "query parameter 'limit' is given more than once"


@pytest.mark.parametrize(("path", "takes"), [
    (f"/nodes/{SEED_NODE}/containers", "limit, cursor, status, name"),
    (f"/nodes/{SEED_NODE}/mem", "none"),
    ("/containers", "node, limit, cursor, status, name"),
])
@pytest_twisted.ensureDeferred
async def test_unknown_query_parameters_are_400_naming_them(api: Api, path: str, takes: str) -> None:
    reply = await api.get(path, params={"sort": "name", "fields": "x"})
    assert error_of(reply, 400) == (
        f"unknown query parameter(s) 'fields', 'sort' (this operation takes: {takes})")


@pytest_twisted.ensureDeferred
async def test_unknown_query_parameters_are_400_on_writes_too(api: Api) -> None:
    reply = await api.post(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/ping", params={"x": "1"})
    assert error_of(reply, 400) == "unknown query parameter(s) 'x' (this operation takes: none)"


@pytest.mark.families("container_files")
@pytest_twisted.ensureDeferred
async def test_the_file_operations_path_parameter_stays_accepted(api: Api) -> None:
    path = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/filesystem"
    reply = await api.get(path, params={"path": "/etc/hostname"})
    assert reply.status in (200, 404), reply
    reply = await api.get(path, params={"path": "/etc/hostname", "limit": "1"})
    assert error_of(reply, 400) == "unknown query parameter(s) 'limit' (this operation takes: path)"


@pytest_twisted.ensureDeferred
async def test_containers_filtered_by_status_and_name_prefix(api: Api) -> None:
    prefix = unique("flt")
    async with container(api, SEED_NODE, name=f"{prefix}_up") as up, \
            container(api, SEED_NODE, name=f"{prefix}_down") as down:
        expect(await api.post(f"/nodes/{SEED_NODE}/containers/{down}/stop"), 204)
        path = f"/nodes/{SEED_NODE}/containers"
        named = body_of(expect(await api.get(path, params={"name": prefix}), 200), "ListContainers")
        assert sorted(c["name"] for c in named) == sorted([up, down])
        for status, name in (("running", up), ("halted", down)):
            both = body_of(expect(await api.get(path, params={"name": prefix, "status": status}), 200),
                           "ListContainers")
            assert [c["name"] for c in both] == [name]
            every = body_of(expect(await api.get(path, params={"status": status}), 200), "ListContainers")
            assert every and all(c["status"] == status for c in every)
        reply = await api.get(path, params={"status": "sleeping"})
        assert error_of(reply, 400) == "query parameter 'status' must be one of: running, halted"


@pytest.mark.families("nodes")
@pytest_twisted.ensureDeferred
async def test_nodes_filtered_by_status(api: Api) -> None:
    running = body_of(expect(await api.get("/nodes", params={"status": "running"}), 200), "ListNodes")
    assert SEED_NODE in {n["id"] for n in running}
    assert all(n["status"] == "running" for n in running)
    assert error_of(await api.get("/nodes", params={"status": "up"}), 400).startswith(
        "query parameter 'status' must be one of:")


@pytest.mark.families("vms")
@pytest_twisted.ensureDeferred
async def test_vms_filtered_by_status(api: Api) -> None:
    async with vm(api, SEED_NODE) as vmid:
        listed = body_of(expect(await api.get(f"/nodes/{SEED_NODE}/vms"), 200), "ListVMs")
        [status] = [v["status"] for v in listed if v["id"] == vmid]
        same = body_of(expect(await api.get(f"/nodes/{SEED_NODE}/vms", params={"status": status}), 200),
                       "ListVMs")
        assert vmid in {v["id"] for v in same} and all(v["status"] == status for v in same)
        other = "error" if status != "error" else "paused"
        none = body_of(expect(await api.get(f"/nodes/{SEED_NODE}/vms", params={"status": other}), 200),
                       "ListVMs")
        assert vmid not in {v["id"] for v in none}


# The pool-wide lists -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_pool_containers_name_their_node(api: Api) -> None:
    async with container(api, SECOND_NODE) as other:
        reply = expect(await api.get("/containers"), 200)
        assert reply.header("x-unreachable-nodes") is None
        items = body_of(reply, "ListPoolContainers")
        by_name = {c["name"]: c for c in items}
        assert by_name[SEED_CONTAINER]["node"] == SEED_NODE
        assert by_name[SEED_CONTAINER]["status"] == "running"
        assert by_name[other]["node"] == SECOND_NODE
        assert by_name[other]["id"] == other
        own = {c["name"] for c in body_of(
            expect(await api.get(f"/nodes/{SECOND_NODE}/containers"), 200), "ListContainers")}
        on_second = body_of(expect(await api.get("/containers", params={"node": SECOND_NODE}), 200),
                            "ListPoolContainers")
        assert {c["name"] for c in on_second} == own
        assert {c["node"] for c in on_second} == {SECOND_NODE}
        filtered = await api.get("/containers", params={"name": other, "status": "running"})
        assert [c["name"] for c in body_of(expect(filtered, 200), "ListPoolContainers")] == [other]


@pytest_twisted.ensureDeferred
async def test_pool_containers_page_by_node_then_name(api: Api) -> None:
    async with container(api, SEED_NODE) as one, container(api, SECOND_NODE) as two:
        items, _ = await pages(api, "ListPoolContainers", "/containers", 1)
        keys = [(c["node"], c["name"]) for c in items]
        assert keys == sorted(keys) and len(keys) == len(set(keys))
        assert {(SEED_NODE, one), (SECOND_NODE, two), (SEED_NODE, SEED_CONTAINER)} <= set(keys)


@pytest.mark.parametrize("path", ["/containers", "/vms"])
@pytest.mark.families("containers", "vms")
@pytest_twisted.ensureDeferred
async def test_pool_list_of_an_unknown_or_malformed_node(api: Api, path: str) -> None:
    assert error_of(await api.get(path, params={"node": "000000000000"}), 404) == (
        "node '000000000000' does not exist")
    assert error_of(await api.get(path, params={"node": "a/b"}), 400).startswith(
        "query parameter 'node' must be a node id")


@pytest.mark.families("vms")
@pytest_twisted.ensureDeferred
async def test_pool_vms_name_their_node(api: Api) -> None:
    async with vm(api, SEED_NODE) as one, vm(api, SECOND_NODE) as two:
        reply = expect(await api.get("/vms"), 200)
        assert reply.header("x-unreachable-nodes") is None
        by_id = {v["id"]: v for v in body_of(reply, "ListPoolVMs")}
        assert by_id[one]["node"] == SEED_NODE and by_id[two]["node"] == SECOND_NODE
        on_seed = body_of(expect(await api.get("/vms", params={"node": SEED_NODE}), 200), "ListPoolVMs")
        assert one in {v["id"] for v in on_seed} and two not in {v["id"] for v in on_seed}
        items, _ = await pages(api, "ListPoolVMs", "/vms", 1)
        keys = [(v["node"], v["id"]) for v in items]
        assert keys == sorted(keys) and {(SEED_NODE, one), (SECOND_NODE, two)} <= set(keys)
