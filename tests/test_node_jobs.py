"""
Jobs of a node's own agent (``/nodes/{nodeid}/jobs[/{jobid}]``).

Every container runs as a job of its node (``core-<container id>``); the
tests use the job of a container they create.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, no_content
from tests.support.backends import SEED_CONTAINER, SEED_NODE, Harness
from tests.support.resources import container, container_halts

FAMILY = "node_jobs"
JOBS = f"/nodes/{SEED_NODE}/jobs"


async def listed(api: Api) -> dict[str, int]:
    return {j["id"]: j["startTime"] for j in body_of(await api.get(JOBS), "ListNodeJobs")}


async def new_jobs(api: Api, before: dict[str, int]) -> list[str]:
    return [j for j in await listed(api) if j not in before]


@pytest_twisted.ensureDeferred
async def test_list(api: Api) -> None:
    jobs = await listed(api)
    assert jobs and all(isinstance(t, int) for t in jobs.values())


@pytest.mark.families("node_jobs", "containers")
@pytest_twisted.ensureDeferred
async def test_a_container_runs_as_a_node_job(api: Api) -> None:
    before = await listed(api)
    async with container(api, SEED_NODE):
        [jobid] = await new_jobs(api, before)
        job = body_of(await api.get(f"{JOBS}/{jobid}"), "GetNodeJob")
        assert job["id"] == jobid and job["state"] == "running"
        assert job["startTime"] == (await listed(api))[jobid]
    assert jobid not in await listed(api)


@pytest.mark.families("node_jobs", "containers")
@pytest_twisted.ensureDeferred
async def test_kill_a_job(api: Api, harness: Harness) -> None:
    """Killing a container's job (204) ends the container; the job's result says ``killed``."""
    before = await listed(api)
    async with container(api, SEED_NODE) as name:
        [jobid] = await new_jobs(api, before)
        no_content(await api.delete(f"{JOBS}/{jobid}"))
        assert jobid not in await listed(api)
        await container_halts(api, harness, SEED_NODE, name)
        result = body_of(await api.get(f"{JOBS}/{jobid}"), "GetNodeJob")
        assert result["state"] == "killed"
        error_of(await api.delete(f"{JOBS}/{jobid}"), 404, jobid)


@pytest.mark.families("node_jobs", "containers")
@pytest_twisted.ensureDeferred
async def test_kill_all_jobs(api: Api, harness: Harness) -> None:
    """``DELETE /nodes/{nodeid}/jobs`` (204) ends every job that may be ended, containers included."""
    if not harness.fresh:
        pytest.skip("killing every job of a node would stop the seed container other tests use")
    no_content(await api.delete(JOBS))
    for jobid in await listed(api):
        assert not jobid.startswith("core-"), jobid
    containers = (await api.get(f"/nodes/{SEED_NODE}/containers")).json()
    assert {c["name"]: c["status"] for c in containers}[SEED_CONTAINER] == "halted"


@pytest_twisted.ensureDeferred
async def test_unknown_job_is_404(api: Api) -> None:
    error_of(await api.get(f"{JOBS}/nosuchjob"), 404, "nosuchjob")
    error_of(await api.delete(f"{JOBS}/nosuchjob"), 404, "nosuchjob")


@pytest_twisted.ensureDeferred
async def test_unknown_node_is_404(api: Api) -> None:
    error_of(await api.get("/nodes/000000000000/jobs"), 404, "000000000000")
    error_of(await api.delete("/nodes/000000000000/jobs"), 404, "000000000000")
    error_of(await api.get("/nodes/000000000000/jobs/anyjob"), 404, "000000000000")


@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api) -> None:
    error_of(await api.get(f"{JOBS}/a%20b"), 400, "jobid")
    error_of(await api.delete(f"{JOBS}/a%20b"), 400, "jobid")
    error_of(await api.get("/nodes/a%20b/jobs"), 400, "nodeid")
