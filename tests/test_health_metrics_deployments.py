"""
``/health`` and ``/metrics`` on every shipped backend configuration, real
processes and real HTTP: ``etc/mock.toml``; ``etc/core0.toml`` against
core0sim, with a node that hangs and one that goes down; ``etc/ays-split.toml``
against ayssim and core0sim, with an AYS run under way and AYS going down.

Each configuration gets its own processes for one test class; the tests of
a class run in order and the destructive ones come last.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from testbed.ays_split import REPO, http_json
from testbed.http_api import call
from testbed.processes import Child, wait_until
from testbed.twistd import start_rpoold
from tests.support.deployments import ETC, Core0Deployment, SplitDeployment, samples, scrape, value
from tests.support.scenario import N2, N

CALLS = "rpoold_backend_calls_total"


def health(base: str) -> dict[str, Any]:
    reply = call(base, "GET", "/health", timeout=30)
    assert reply.status == 200
    report: dict[str, Any] = reply.json()
    return report


# etc/mock.toml ------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def daemon() -> Iterator[tuple[Child, str]]:
    child, base = start_rpoold(str(ETC / "mock.toml"))
    yield child, base
    child.stop()


class TestMock:
    def test_health_and_metrics(self, daemon: tuple[Child, str]) -> None:
        _, base = daemon
        report = health(base)
        assert report["status"] == "ok"
        assert report["backends"]["mock"]["ok"] is True and report["backends"]["mock"]["nodes"] == 2
        assert call(base, "GET", f"/nodes/{N}/mem").status == 200
        assert call(base, "GET", "/nodes/nope/mem").status == 404
        text = scrape(base)
        assert value(text, CALLS, backend="mock", command="get_mem_info", outcome="ok") >= 1
        assert value(text, CALLS, backend="mock", command="get_mem_info", outcome="not_found") >= 1
        assert value(text, "rpoold_http_requests_total", route="/nodes/{nodeid}/mem", method="GET",
                     status="200") >= 1


# etc/core0.toml -----------------------------------------------------------------------------


@pytest.fixture(scope="class")
def core0() -> Iterator[Core0Deployment]:
    deployment = Core0Deployment(nodes=2).start()
    yield deployment
    deployment.stop()


class TestCore0:
    def test_health_pings_every_node(self, core0: Core0Deployment) -> None:
        report = health(core0.url)
        assert report["status"] == "ok"
        backend = report["backends"]["core0"]
        assert backend["ok"] is True
        assert (backend["nodes"], backend["answering"], backend["down"]) == (2, 2, [])
        assert "nodes" in backend["families"] and "vdisks" not in backend["families"]
        assert report["backends"]["mock"]["families"] == ["storageclusters", "vdisks"]
        assert call(core0.url, "GET", "/health", query={"ready": "1"}).status == 200

    def test_metrics_count_commands_and_connections(self, core0: Core0Deployment) -> None:
        assert health(core0.url)["backends"]["core0"]["answering"] == 2  # opens a connection per node
        before = scrape(core0.url)
        assert call(core0.url, "GET", f"/nodes/{N}/mem").status == 200
        assert call(core0.url, "GET", f"/nodes/{N}/containers/vfw_21/jobs").status == 200
        assert call(core0.url, "GET", f"/nodes/{N}/containers/nope/jobs").status == 404
        text = scrape(core0.url)

        def grew(**labels: str) -> float:
            return value(text, CALLS, **labels) - value(before, CALLS, **labels)

        assert grew(backend="core0", command="info.mem", outcome="ok") == 1
        assert grew(backend="core0", command="corex.dispatch/job.list", outcome="ok") == 1
        assert value(text, "rpoold_backend_call_duration_seconds_count", backend="core0",
                     command="info.mem") >= 1
        # Commands, never ids, as labels.
        commands = {labels["command"] for name, labels, _ in _core0_calls(text)}
        assert commands and all(" " not in c and "'" not in c for c in commands), commands
        for node in (N, N2):
            assert value(text, "rpoold_redis_connections", node=node) >= 1

    def test_a_hung_node_is_down_within_the_ping_timeout(self, core0: Core0Deployment) -> None:
        before = scrape(core0.url)
        pid = core0.kill_node(N2, signal.SIGSTOP)
        try:
            report = health(core0.url)
            backend = report["backends"]["core0"]
            assert report["status"] == "degraded" and backend["ok"] is False
            assert (backend["answering"], backend["down"]) == (1, [N2])
            text = scrape(core0.url)
            failed = sum(value(text, CALLS, backend="core0", command="core.ping", outcome=o)
                         - value(before, CALLS, backend="core0", command="core.ping", outcome=o)
                         for o in ("timeout", "unavailable"))
            assert failed >= 1
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: health(core0.url)["backends"]["core0"]["ok"] is True, 20, "node back")

    def test_a_node_down(self) -> None:
        """On a deployment of its own: the node stays down."""
        with Core0Deployment(nodes=2).start() as core0:
            self._a_node_down(core0)

    def _a_node_down(self, core0: Core0Deployment) -> None:
        before = scrape(core0.url)
        core0.kill_node(N2)
        reply = call(core0.url, "GET", f"/nodes/{N2}/mem")
        # A pooled connection may be lost under the call, or a new one refused:
        # either way a 502 that names the node.
        assert reply.status == 502 and f"node '{N2}'" in reply.json()["error"]
        assert call(core0.url, "GET", f"/nodes/{N}/mem").status == 200
        report = health(core0.url)
        backend = report["backends"]["core0"]
        assert report["status"] == "degraded"
        assert (backend["ok"], backend["nodes"], backend["answering"], backend["down"]) == (False, 2, 1, [N2])
        assert call(core0.url, "GET", "/health", query={"ready": "1"}).status == 503
        text = scrape(core0.url)
        for command in ("info.mem", "core.ping"):
            assert (value(text, CALLS, backend="core0", command=command, outcome="unavailable")
                    > value(before, CALLS, backend="core0", command=command, outcome="unavailable"))
        # Its connections were lost; the other node's stay open.
        wait_until(lambda: value(scrape(core0.url), "rpoold_redis_connections", node=N2) == 0, 10,
                   "the down node's connections counted closed")
        assert value(scrape(core0.url), "rpoold_redis_connections", node=N) >= 1


def _core0_calls(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [s for s in samples(text) if s[0] == CALLS and s[1].get("backend") == "core0"]


# etc/ays-split.toml -------------------------------------------------------------------------


@pytest.fixture(scope="class")
def split() -> Iterator[SplitDeployment]:
    deployment = SplitDeployment(nodes=2).start()
    yield deployment
    deployment.stop()


class TestAysSplit:
    def test_health_asks_ays_and_pings_the_nodes_it_lists(self, split: SplitDeployment) -> None:
        report = health(split.url)
        assert report["status"] == "ok"
        ays, core0 = report["backends"]["ays"], report["backends"]["core0"]
        assert ays["ok"] is True and ays["repository"] == REPO and ays["ays"] == split.env.ays_url
        assert "nodes" in ays["families"] and "node_info" in core0["families"]
        assert (core0["ok"], core0["nodes"], core0["answering"]) == (True, 2, 2)

    def test_metrics_count_ays_calls_and_runs(self, split: SplitDeployment) -> None:
        before = scrape(split.url)
        assert call(split.url, "GET", "/nodes").status == 200
        assert call(split.url, "GET", f"/nodes/{N}/mem").status == 200
        # A bridge whose install takes a while: its run is counted while it runs.
        code, body = http_json(f"{split.env.ays_url}/_sim/faults/actions", "POST",
                               {"actor": "bridge", "action": "install", "instance": "obsbr", "delay": 2})
        assert code in (200, 201), body

        def runs_under_way() -> float:
            text = scrape(split.url)
            return sum(value(text, "rpoold_ays_runs", backend="ays", state=s) for s in ("new", "running"))

        with ThreadPoolExecutor(1) as pool:
            created = pool.submit(call, split.url, "POST", f"/nodes/{N}/bridges",
                                  json={"name": "obsbr", "networkMode": "none"})
            wait_until(lambda: runs_under_way() >= 1, 20, "the bridge's run counted")
            assert health(split.url)["backends"]["ays"]["runs"] in ({"running": 1}, {"new": 1})
            reply = created.result(timeout=60)
        assert reply.status == 201, reply.body
        text = scrape(split.url)
        assert runs_under_way() == 0
        assert (value(text, "rpoold_ays_runs_finished_total", backend="ays", state="ok")
                > value(before, "rpoold_ays_runs_finished_total", backend="ays", state="ok"))
        for kind in ("GET service/{role}", "POST blueprint", "POST blueprint/{name}", "POST aysrun",
                     "GET aysrun/{key}"):
            assert (value(text, CALLS, backend="ays", command=kind, outcome="ok")
                    > value(before, CALLS, backend="ays", command=kind, outcome="ok")), kind
        assert value(text, CALLS, backend="core0", command="info.mem", outcome="ok") >= 1
        assert value(text, "rpoold_redis_connections", node=N) >= 1

    def test_ays_down(self, split: SplitDeployment) -> None:
        # The nodes are known (from AYS) before AYS goes.
        assert health(split.url)["backends"]["core0"]["ok"] is True
        before = scrape(split.url)
        split.env.stop_ayssim()
        try:
            self._ays_down(split, before)
        finally:
            # AYS is back (a fresh one, seeded with the nodes) for the class's other tests.
            split.env.start_ayssim()
            wait_until(lambda: health(split.url)["status"] == "ok", 30, "rpoold seeing AYS again")

    def _ays_down(self, split: SplitDeployment, before: str) -> None:
        report = health(split.url)
        ays = report["backends"]["ays"]
        assert report["status"] == "degraded"
        assert ays["ok"] is False and "unreachable" in ays["problem"], ays
        # The nodes stay reachable at the addresses AYS gave last.
        assert report["backends"]["core0"]["ok"] is True
        assert call(split.url, "GET", "/nodes").status == 502
        assert call(split.url, "GET", f"/nodes/{N}/mem").status == 200
        text = scrape(split.url)
        assert (value(text, CALLS, backend="ays", command="GET /", outcome="unavailable")
                > value(before, CALLS, backend="ays", command="GET /", outcome="unavailable"))
        assert (value(text, CALLS, backend="ays", command="GET service/{role}", outcome="unavailable")
                > value(before, CALLS, backend="ays", command="GET service/{role}", outcome="unavailable"))
