"""
Processes of a node (``/nodes/{nodeid}/processes[/{processid}]``).

Each container's agent is a process of its node; the kill test uses the one
of a container it creates.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, no_content
from tests.support.backends import SEED_NODE, Harness
from tests.support.resources import container, container_halts

FAMILY = "node_processes"
PROCESSES = f"/nodes/{SEED_NODE}/processes"


async def listed(api: Api) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in body_of(await api.get(PROCESSES), "ListNodeProcesses")}


@pytest_twisted.ensureDeferred
async def test_list_and_get(api: Api) -> None:
    processes = await listed(api)
    assert processes
    pid, first = next(iter(processes.items()))
    assert body_of(await api.get(f"{PROCESSES}/{pid}"), "GetNodeProcess") == first
    assert all(set(p["cpu"]) >= {"user", "system", "iowait"} for p in processes.values())


@pytest.mark.families("node_processes", "containers")
@pytest_twisted.ensureDeferred
async def test_kill_a_process(api: Api, harness: Harness) -> None:
    """``DELETE .../processes/{pid}`` answers 204 once it is gone; here it was a container's agent."""
    before = await listed(api)
    async with container(api, SEED_NODE) as name:
        [pid] = [pid for pid in await listed(api) if pid not in before]
        assert "coreX" in (await listed(api))[pid]["cmdline"]
        no_content(await api.delete(f"{PROCESSES}/{pid}"))
        assert pid not in await listed(api)
        error_of(await api.get(f"{PROCESSES}/{pid}"), 404, str(pid))
        error_of(await api.delete(f"{PROCESSES}/{pid}"), 404, str(pid))
        await container_halts(api, harness, SEED_NODE, name)


@pytest_twisted.ensureDeferred
async def test_unknown_process_is_404(api: Api) -> None:
    error_of(await api.get(f"{PROCESSES}/999999"), 404, "999999")
    error_of(await api.delete(f"{PROCESSES}/999999"), 404, "999999")


@pytest_twisted.ensureDeferred
async def test_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get("/nodes/000000000000/processes"), 404, "000000000000")
    error_of(await api.get("/nodes/000000000000/processes/1"), 404, "000000000000")


@pytest.mark.parametrize("pid", ["abc", "-5", "1e3", "99999999999999999999"])
@pytest_twisted.ensureDeferred
async def test_process_id_must_be_a_number(api: Api, pid: str) -> None:
    error_of(await api.get(f"{PROCESSES}/{pid}"), 400, "processid", "integer")
    error_of(await api.delete(f"{PROCESSES}/{pid}"), 400, "processid")


@pytest_twisted.ensureDeferred
async def test_bad_node_name_is_400(api: Api) -> None:
    error_of(await api.get("/nodes/a%20b/processes"), 400, "nodeid")
