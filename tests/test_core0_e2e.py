"""
End to end: ``twistd rpoold`` with ``etc/core0.toml`` (core0 for every
family it serves) against ``twistd core0sim``, over real HTTP and real
Redis: the nine examples of the seed document, and a container's
lifecycle, seen by rpoold and by the published g8core 1.0.0 client.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import g8core
import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from testbed.core0sim import Core0Sim
from testbed.http_api import Api
from testbed.processes import ROOT, Child
from testbed.twistd import start_rpoold
from tests.support.answers import body_of, no_content
from tests.support.backends import SEED_CONTAINER, SEED_FLIST, SEED_JOB, SEED_NODE, unique

CREATE = {
    "nics": [{"config": {"dhcp": False, "cidr": "192.168.57.217/24", "gateway": "192.168.57.254",
                         "dns": ["8.8.8.8"]}, "id": "0", "type": "vlan"}],
    "id": "vfw_22", "filesystems": [], "flist": SEED_FLIST, "hostNetworking": False,
    "hostname": "vfw_22", "initprocesses": [], "ports": [],
}
DNSMASQ = {"name": "/bin/dnsmasq", "pwd": "", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"], "env": []}


class Deployment:
    def __init__(self, sim: Core0Sim, rpoold: Child, url: str) -> None:
        self.sim = sim
        self.rpoold = rpoold
        self.url = url

    def node(self, nodeid: str) -> dict[str, Any]:
        nodes = tomllib.loads(self.sim.node_file.read_text())["nodes"]
        entry: dict[str, Any] = next(n for n in nodes if n["id"] == nodeid)
        return entry

    def g8core(self, nodeid: str) -> Any:
        """The published client, on the node's Redis."""
        entry = self.node(nodeid)
        return g8core.Client(entry["host"], port=entry["port"], db=entry.get("db", 0),
                             password=entry.get("password", ""))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    sim = Core0Sim(2).start()
    try:
        config = tomllib.loads((ROOT / "etc" / "core0.toml").read_text())
        config["backends"]["core0"]["nodes_file"] = str(sim.node_file)
        # As in the checkout: the file in etc/, its records in ../run/.
        root = tmp_path_factory.mktemp("e2e")
        (root / "etc").mkdir()
        (root / "run").mkdir()
        path: Path = root / "etc" / "core0.toml"
        path.write_text(_toml(config))
        rpoold, url = start_rpoold(str(path))
    except Exception:
        sim.stop()
        raise
    yield Deployment(sim, rpoold, url)
    rpoold.stop()
    sim.stop()


@pytest_twisted.async_yield_fixture
async def api(deployment: Deployment) -> AsyncIterator[Api]:
    yield Api.over_http(deployment.url)


def _toml(config: dict[str, Any]) -> str:
    """Enough TOML for a configuration: tables of scalars."""
    lines = []
    for table, values in config.items():
        for name, options in values.items() if table == "backends" else [(None, values)]:
            lines.append(f"[{table}.{name}]" if name else f"[{table}]")
            for key, value in options.items():
                text = f'"{value}"' if isinstance(value, str) else str(value).lower() \
                    if isinstance(value, bool) else str(value)
                lines.append(f"{key} = {text}")
            lines.append("")
    return "\n".join(lines)


@pytest_twisted.ensureDeferred
async def test_the_nine_seed_examples(api: Api) -> None:
    # 1. List nodes.
    nodes = body_of(await api.get("/nodes"), "ListNodes")
    seed = next(n for n in nodes if n["id"] == SEED_NODE)
    assert seed["hostname"] == "core0node" and seed["status"] == "running"
    # 2. Memory of a node: one MemInfo object.
    mem = body_of(await api.get(f"/nodes/{SEED_NODE}/mem"), "GetMemInfo")
    assert mem["total"] > mem["available"] > 0
    # 3. Reboot (204); the node answers again afterwards.
    no_content(await api.post(f"/nodes/{SEED_NODE}/reboot"))
    # 4. List the containers: the seed container runs.
    containers = body_of(await api.get(f"/nodes/{SEED_NODE}/containers"), "ListContainers")
    assert {"name": SEED_CONTAINER, "id": SEED_CONTAINER, "hostname": SEED_CONTAINER, "flist": SEED_FLIST,
            "status": "running"} in containers
    # 5. Create a container: 201 with its Location.
    created = await api.post(f"/nodes/{SEED_NODE}/containers", json=CREATE)
    assert created.status == 201, created
    assert created.header("Location") == f"/nodes/{SEED_NODE}/containers/vfw_22"
    # 6. The jobs of the seed container.
    jobs = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs"), "ListContainerJobs")
    assert {"id": SEED_JOB, "startTime": 1491984742526} in jobs
    # 7. Kill that job (204); it is gone.
    no_content(await api.delete(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs/{SEED_JOB}"))
    jobs = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/jobs"), "ListContainerJobs")
    assert SEED_JOB not in [j["id"] for j in jobs]
    # 8. The processes of the new container.
    processes = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/vfw_22/processes"),
                        "ListContainerProcesses")
    assert [p["cmdline"].split()[0] for p in processes] == ["/coreX"]
    # 9. Start a process: 202 with the Location of its job, which runs.
    started = await api.post(f"/nodes/{SEED_NODE}/containers/vfw_22/processes", json=DNSMASQ)
    assert started.status == 202, started
    location = started.header("Location") or ""
    assert location.startswith(f"/nodes/{SEED_NODE}/containers/vfw_22/jobs/")
    job = body_of(await api.get(location), "GetContainerJob")
    assert job["state"] == "running" and job["name"] == "core.system"
    processes = body_of(await api.get(f"/nodes/{SEED_NODE}/containers/vfw_22/processes"),
                        "ListContainerProcesses")
    assert "/bin/dnsmasq --conf-file=/etc/dnsmasq.conf -d" in [p["cmdline"] for p in processes]
    no_content(await api.delete(f"/nodes/{SEED_NODE}/containers/vfw_22"))


@pytest_twisted.ensureDeferred
async def test_container_lifecycle(api: Api, deployment: Deployment) -> None:
    name = unique("lc")
    client = deployment.g8core(SEED_NODE)

    def tagged() -> list[str]:
        listing = client.container.list()
        return [str(cid) for cid, c in listing.items() if name in (c["container"]["arguments"]["tags"] or [])]

    assert (await api.post(f"/nodes/{SEED_NODE}/containers",
                           json={**CREATE, "id": name, "hostname": name})).status == 201
    listed = body_of(await api.get(f"/nodes/{SEED_NODE}/containers"), "ListContainers")
    assert {"name": name, "id": name, "hostname": name, "flist": SEED_FLIST, "status": "running"} in listed
    assert len(await deferToThread(tagged)) == 1

    base = f"/nodes/{SEED_NODE}/containers/{name}"
    started = await api.post(f"{base}/processes", json={"name": "sleep", "args": ["600"]})
    assert started.status == 202
    jobid = (started.header("Location") or "").rsplit("/", 1)[1]
    jobs = body_of(await api.get(f"{base}/jobs"), "ListContainerJobs")
    assert jobid in [j["id"] for j in jobs]

    no_content(await api.delete(f"{base}/jobs/{jobid}"))
    jobs = body_of(await api.get(f"{base}/jobs"), "ListContainerJobs")
    assert jobid not in [j["id"] for j in jobs]
    finished = body_of(await api.get(f"{base}/jobs/{jobid}"), "GetContainerJob")
    assert finished["state"] == "killed"

    no_content(await api.delete(base))
    assert (await api.get(base)).status == 404
    listed = body_of(await api.get(f"/nodes/{SEED_NODE}/containers"), "ListContainers")
    assert name not in [c["name"] for c in listed]
    assert await deferToThread(tagged) == []
