"""
Jobs of a container: what runs there (``.../jobs``), one job's state or
result, signals, and killing one job or all of them.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SEED_CONTAINER, SEED_JOB, SEED_JOB_START, SEED_NODE, Harness
from tests.support.polling import eventually
from tests.support.resources import container

FAMILY = ("container_jobs", "container_processes", "containers")
SEED_JOBS = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs"


def jobs_of(name: str) -> str:
    return f"/nodes/{SEED_NODE}/containers/{name}/jobs"


async def start(api: Api, name: str, program: str, *args: str) -> str:
    """Start a process in container ``name``; :returns: the path of its job."""
    reply = expect(await api.post(f"/nodes/{SEED_NODE}/containers/{name}/processes",
                                  json={"name": program, "args": list(args)}), 202)
    location = reply.header("location")
    assert location is not None and location.startswith(jobs_of(name) + "/"), reply.headers
    return location


async def job_ids(api: Api, name: str) -> list[str]:
    return [j["id"] for j in body_of(await api.get(jobs_of(name)), "ListContainerJobs")]


async def finished(api: Api, job: str, harness: Harness) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return dict(body_of(await api.get(job), "GetContainerJob"))

    return await eventually(probe, lambda j: j["state"] != "running", harness.patience, f"{job} ends")


@pytest_twisted.ensureDeferred
async def test_list_shows_the_seed_job(api: Api) -> None:
    jobs = body_of(await api.get(SEED_JOBS), "ListContainerJobs")
    assert {"id": SEED_JOB, "startTime": SEED_JOB_START} in jobs


@pytest_twisted.ensureDeferred
async def test_a_running_job(api: Api) -> None:
    """A running job shows ``state: running`` with its id, name and start time; the rest is zero."""
    job = body_of(await api.get(f"{SEED_JOBS}/{SEED_JOB}"), "GetContainerJob")
    assert job["id"] == SEED_JOB
    assert job["startTime"] == SEED_JOB_START
    assert job["state"] == "running"
    assert job["name"] == "core.system"
    assert (job.get("stdout", ""), job.get("stderr", ""), job.get("data", "")) == ("", "", "")


@pytest_twisted.ensureDeferred
async def test_a_finished_job_has_its_result(api: Api, harness: Harness) -> None:
    async with container(api, SEED_NODE) as name:
        job = await start(api, name, "echo", "hello", "world")
        result = await finished(api, job, harness)
        assert result["state"] == "success"
        assert result["stdout"] == "hello world\n"
        assert result["id"] == job.rsplit("/", 1)[1]
        assert result["id"] not in await job_ids(api, name)


@pytest_twisted.ensureDeferred
async def test_kill_a_job(api: Api, harness: Harness) -> None:
    """``DELETE .../jobs/{jobid}`` answers 204; the job is then no longer listed and ended killed."""
    async with container(api, SEED_NODE) as name:
        job = await start(api, name, "/bin/dnsmasq", "-d")
        jobid = job.rsplit("/", 1)[1]
        assert jobid in await job_ids(api, name)
        no_content(await api.delete(job))
        assert jobid not in await job_ids(api, name)
        assert (await finished(api, job, harness))["state"] == "killed"
        error_of(await api.delete(job), 404, jobid)


@pytest_twisted.ensureDeferred
async def test_signals(api: Api, harness: Harness) -> None:
    """
    ``POST .../jobs/{jobid}`` sends ``signal`` (204); a signal such as
    SIGUSR1 leaves the job running; without a body field the signal is 15,
    which ends it.
    """
    async with container(api, SEED_NODE) as name:
        job = await start(api, name, "/bin/dnsmasq", "-d")
        jobid = job.rsplit("/", 1)[1]
        no_content(await api.post(job, json={"signal": 10}))
        assert jobid in await job_ids(api, name)
        no_content(await api.post(job, json={}))
        assert (await finished(api, job, harness))["state"] == "killed"
        assert jobid not in await job_ids(api, name)


@pytest_twisted.ensureDeferred
async def test_kill_all_jobs(api: Api) -> None:
    """``DELETE .../jobs`` ends every job of the container; the list is then ``[]``."""
    async with container(api, SEED_NODE) as name:
        await start(api, name, "/bin/dnsmasq", "-d")
        await start(api, name, "sleep", "60")
        assert len(await job_ids(api, name)) >= 2
        no_content(await api.delete(jobs_of(name)))
        reply = await api.get(jobs_of(name))
        assert body_of(reply, "ListContainerJobs") == [] and reply.body == b"[]"


@pytest_twisted.ensureDeferred
async def test_unknown_job_is_404(api: Api) -> None:
    for reply in (await api.get(f"{SEED_JOBS}/nosuchjob"),
                  await api.delete(f"{SEED_JOBS}/nosuchjob"),
                  await api.post(f"{SEED_JOBS}/nosuchjob", json={"signal": 10})):
        error_of(reply, 404, "nosuchjob")


@pytest_twisted.ensureDeferred
async def test_jobs_of_unknown_container_are_404(api: Api) -> None:
    error_of(await api.get(jobs_of("nosuchcontainer")), 404, "nosuchcontainer")
    error_of(await api.delete(jobs_of("nosuchcontainer")), 404, "nosuchcontainer")


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_signal_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", f"{SEED_JOBS}/{SEED_JOB}")


@pytest.mark.parametrize(("body", "words"), [
    ({"signal": 0}, ["signal", "at least 1"]),
    ({"signal": 65}, ["signal", "at most 64"]),
    ({"signal": "TERM"}, ["signal", "integer"]),
    ([9], ["object"]),
])
@pytest_twisted.ensureDeferred
async def test_invalid_signal_is_400(api: Api, body: Any, words: list[str]) -> None:
    error_of(await api.post(f"{SEED_JOBS}/{SEED_JOB}", json=body), 400, *words)
    assert SEED_JOB in await job_ids(api, SEED_CONTAINER)


@pytest.mark.parametrize("path", [
    f"{SEED_JOBS}/a%20b",
    f"/nodes/{SEED_NODE}/containers/a%20b/jobs",
])
@pytest_twisted.ensureDeferred
async def test_bad_names_in_path_are_400(api: Api, path: str) -> None:
    error_of(await api.get(path), 400, "must be")
