"""
Processes of a container: list, start (a job runs the process), inspect,
signal and kill (``.../processes[/{processid}]``).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api
from tests.support.answers import body_of, error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SEED_CONTAINER, SEED_NODE
from tests.support.resources import container

FAMILY = ("container_processes", "containers")
SEED_PROCESSES = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/processes"


def processes_of(name: str) -> str:
    return f"/nodes/{SEED_NODE}/containers/{name}/processes"


async def listed(api: Api, name: str) -> dict[int, dict[str, Any]]:
    items = body_of(await api.get(processes_of(name)), "ListContainerProcesses")
    return {p["pid"]: p for p in items}


async def start_daemon(api: Api, name: str, *args: str) -> int:
    """Start ``/bin/dnsmasq ARGS`` in ``name``; :returns: its pid."""
    before = await listed(api, name)
    expect(await api.post(processes_of(name), json={"name": "/bin/dnsmasq", "args": list(args)}), 202)
    [pid] = [pid for pid in await listed(api, name) if pid not in before]
    return pid


@pytest_twisted.ensureDeferred
async def test_a_new_container_runs_corex_as_pid_1(api: Api) -> None:
    """The container's own agent is pid 1, its command line naming the container's hostname."""
    async with container(api, SEED_NODE) as name:
        first = (await listed(api, name))[1]
        assert first["cmdline"].startswith("/coreX -core-id ")
        assert first["cmdline"].endswith(f"-hostname {name}")
        assert set(first["cpu"]) >= {"user", "system", "guestnice", "iowait", "softirq"}


@pytest_twisted.ensureDeferred
async def test_start_a_process(api: Api) -> None:
    """
    ``POST .../processes`` answers 202 with the Location of the job running
    the process; the docs' ``env`` spelling is accepted; the process is
    listed with its command line.
    """
    async with container(api, SEED_NODE) as name:
        body = {"name": "/bin/dnsmasq", "pwd": "", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"],
                "env": ["A=b=c", "EMPTY="]}
        reply = expect(await api.post(processes_of(name), json=body), 202)
        location = reply.header("location")
        assert location is not None
        assert body_of(reply, "StartContainerProcess", 202) == {"id": location.rsplit("/", 1)[1]}
        assert location.startswith(f"/nodes/{SEED_NODE}/containers/{name}/jobs/")
        assert location.rsplit("/", 1)[1] in [j["id"] for j in (await api.get(
            f"/nodes/{SEED_NODE}/containers/{name}/jobs")).json()]
        cmdlines = [p["cmdline"] for p in (await listed(api, name)).values()]
        assert "/bin/dnsmasq --conf-file=/etc/dnsmasq.conf -d" in cmdlines


@pytest_twisted.ensureDeferred
async def test_get_a_process(api: Api) -> None:
    async with container(api, SEED_NODE) as name:
        pid = await start_daemon(api, name, "-d")
        process = body_of(await api.get(f"{processes_of(name)}/{pid}"), "GetContainerProcess")
        assert process["pid"] == pid and process["cmdline"] == "/bin/dnsmasq -d"


@pytest_twisted.ensureDeferred
async def test_kill_a_process(api: Api) -> None:
    """``DELETE .../processes/{pid}`` answers 204 once the process is gone."""
    async with container(api, SEED_NODE) as name:
        pid = await start_daemon(api, name, "-d")
        no_content(await api.delete(f"{processes_of(name)}/{pid}"))
        assert pid not in await listed(api, name)
        error_of(await api.get(f"{processes_of(name)}/{pid}"), 404, str(pid))
        error_of(await api.delete(f"{processes_of(name)}/{pid}"), 404, str(pid))


@pytest_twisted.ensureDeferred
async def test_the_containers_agent_may_not_be_killed(api: Api) -> None:
    error_of(await api.delete(f"{SEED_PROCESSES}/1"), 400, "1")
    assert 1 in await listed(api, SEED_CONTAINER)


@pytest_twisted.ensureDeferred
async def test_signal_a_process(api: Api) -> None:
    """``POST .../processes/{pid}`` sends ``signal`` (204): SIGUSR1 leaves it running, SIGTERM ends it."""
    async with container(api, SEED_NODE) as name:
        pid = await start_daemon(api, name, "-d")
        no_content(await api.post(f"{processes_of(name)}/{pid}", json={"signal": 10}))
        assert pid in await listed(api, name)
        no_content(await api.post(f"{processes_of(name)}/{pid}", json={}))
        assert pid not in await listed(api, name)


@pytest_twisted.ensureDeferred
async def test_unknown_process_is_404(api: Api) -> None:
    for reply in (await api.get(f"{SEED_PROCESSES}/99999"),
                  await api.delete(f"{SEED_PROCESSES}/99999"),
                  await api.post(f"{SEED_PROCESSES}/99999", json={"signal": 10})):
        error_of(reply, 404, "99999")


@pytest_twisted.ensureDeferred
async def test_processes_of_unknown_container_are_404(api: Api) -> None:
    error_of(await api.get(processes_of("nosuchcontainer")), 404, "nosuchcontainer")
    reply = await api.post(processes_of("nosuchcontainer"), json={"name": "/bin/true"})
    error_of(reply, 404, "nosuchcontainer")
    assert reply.header("location") is None


# Validation ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_malformed_json_is_400(api: Api) -> None:
    await malformed_json_is_400(api, "POST", SEED_PROCESSES)
    await malformed_json_is_400(api, "POST", f"{SEED_PROCESSES}/1")


@pytest.mark.parametrize(("body", "words"), [
    ({"args": ["-d"]}, ["missing", "name"]),
    ({"name": ""}, ["name"]),
    ({"name": "/bin/x", "environment": ["NOEQUALS"]}, ["environment[0]", "KEY=VALUE"]),
    ({"name": "/bin/x", "env": ["=x"]}, ["environment[0]"]),
    ({"name": "/bin/x", "args": "-d"}, ["args", "array"]),
], ids=["missing-name", "empty-name", "env-without-equals", "env-empty-key", "args-not-a-list"])
@pytest_twisted.ensureDeferred
async def test_invalid_start_is_400(api: Api, body: dict[str, Any], words: list[str]) -> None:
    before = set(await listed(api, SEED_CONTAINER))
    error_of(await api.post(SEED_PROCESSES, json=body), 400, *words)
    assert set(await listed(api, SEED_CONTAINER)) == before


@pytest.mark.parametrize("signal", [0, 128, "KILL"])
@pytest_twisted.ensureDeferred
async def test_invalid_signal_is_400(api: Api, signal: Any) -> None:
    error_of(await api.post(f"{SEED_PROCESSES}/1", json={"signal": signal}), 400, "signal")


@pytest.mark.parametrize("pid", ["abc", "-1", "1.5"])
@pytest_twisted.ensureDeferred
async def test_process_id_must_be_a_number(api: Api, pid: str) -> None:
    error_of(await api.get(f"{SEED_PROCESSES}/{pid}"), 400, "processid", "integer")
    error_of(await api.delete(f"{SEED_PROCESSES}/{pid}"), 400, "processid")


@pytest_twisted.ensureDeferred
async def test_bad_container_name_is_400(api: Api) -> None:
    error_of(await api.get(f"/nodes/{SEED_NODE}/containers/a%20b/processes"), 400, "containername")


@pytest_twisted.ensureDeferred
async def test_the_later_apis_jobs_spelling_starts_a_process(api: Api) -> None:
    """``POST .../containers/{name}/jobs`` (0-orchestrator 1.1) starts a process as ``.../processes`` does."""
    async with container(api, SEED_NODE) as name:
        jobs = f"/nodes/{SEED_NODE}/containers/{name}/jobs"
        reply = expect(await api.post(jobs, json={"name": "sleep", "args": ["30"]}), 202)
        location = reply.header("location") or ""
        assert location.startswith(jobs + "/"), reply.headers
        job_id = location.rsplit("/", 1)[1]
        assert body_of(reply, "StartContainerProcess", 202) == {"id": job_id}
        assert job_id in [j["id"] for j in (await api.get(jobs)).json()]
