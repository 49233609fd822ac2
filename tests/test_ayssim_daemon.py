"""
``twistd ayssim`` as a real process over real HTTP: start-up, the node
list appearing later, the write sequence of a blueprint and its run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.ays_split import http_json
from testbed.core0sim import Core0Sim
from testbed.ports import free_port
from testbed.processes import ROOT, Child, python_env, wait_until
from testbed.twistd import start_twistd, twistd

REPO = "objstor"
R = f"/ays/repository/{REPO}"


class Ays:
    """ayssim's API at ``url``: ``ays(method, path, body)`` answers the status and the decoded body."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(self.url + path, method, body)

    def until(self, method: str, path: str, check: Any, what: str, timeout: float = 10.0) -> Any:
        """Ask again until ``check(status, body)`` holds; returns that body."""
        last: list[tuple[int, Any]] = []

        def done() -> bool:
            last[:] = [self(method, path)]
            return bool(check(*last[0]))

        try:
            wait_until(done, timeout, what)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last answer: {last}") from None
        return last[0][1]


def start_ayssim(*args: str) -> tuple[Child, Ays]:
    port = free_port()
    child = start_twistd("ayssim", port, "--port", f"tcp:{port}:interface=127.0.0.1", *args)
    return child, Ays(f"http://127.0.0.1:{port}")


@pytest.fixture
def nodes_file(tmp_path: Path) -> Path:
    return tmp_path / "nodes.toml"


@pytest.fixture
def ayssim(nodes_file: Path) -> Iterator[Ays]:
    child, http = start_ayssim("--nodes-file", str(nodes_file), "--command-timeout", "2")
    yield http
    assert child.alive(), child.output()
    child.stop()


def test_node_list_appearing_later_is_seeded(ayssim: Ays, nodes_file: Path) -> None:
    assert ayssim("GET", "/")[0] == 200
    assert ayssim("GET", R)[0] == 200
    assert ayssim("GET", f"{R}/service/node") == (200, [])
    silent = free_port()
    nodes_file.write_text(
        f'[[nodes]]\nid = "525400123456"\nhost = "127.0.0.1"\nport = {silent}\nhostname = "core0node"\n\n'
        f'[[nodes]]\nid = "525400123457"\nhost = "127.0.0.1"\nport = {silent}\ndb = 3\n')
    items = ayssim.until("GET", f"{R}/service/node.g8os?fields=hostname,redisAddr,redisPort,status",
                         lambda code, body: code == 200 and len(body) == 2, "nodes seeded")
    data = {i["name"]: i["data"] for i in items}
    assert data["525400123456"] == {"hostname": "core0node", "redisAddr": "127.0.0.1",
                                    "redisPort": silent, "status": "running"}
    assert data["525400123457"]["hostname"] == ""


def test_write_sequence_against_an_unreachable_node(ayssim: Ays, nodes_file: Path) -> None:
    nodes_file.write_text(f'[[nodes]]\nid = "525400123456"\nhost = "127.0.0.1"\nport = {free_port()}\n')
    ayssim.until("GET", f"{R}/service/node/525400123456", lambda code, _: code == 200, "node seeded")
    content = ('container__web1:\n  node: "525400123456"\n  flist: https://hub.example.org/u.flist\n'
               "actions:\n  - {action: install, actor: container, service: web1, force: false}\n")
    name = "container_web1_install_1"
    assert ayssim("POST", f"{R}/blueprint", {"name": name, "content": content})[0] == 201
    assert ayssim("POST", f"{R}/blueprint/container_web1_install_1") == (
        200, {"msg": "Blueprint container_web1_install_1 executed"})
    assert ayssim("PUT", f"{R}/blueprint/container_web1_install_1/archive")[0] == 200
    code, run = ayssim("POST", f"{R}/aysrun")
    assert code == 200 and run["state"] == "new"
    final = ayssim.until("GET", f"{R}/aysrun/{run['key']}",
                         lambda code, body: body["state"] in ("ok", "error"), "run end")
    assert final["state"] == "error"
    [job] = final["steps"][0]["jobs"]
    assert job["logs"][-2]["category"] == "errormsg" and "UNREACHABLE" in job["logs"][-2]["log"]
    code, web1 = ayssim("GET", f"{R}/service/container/web1")
    assert code == 200 and web1["state"] == "error"
    code, blueprints = ayssim("GET", "/_sim/blueprints")
    assert blueprints[0]["content"] == content and blueprints[0]["archived"] is True
    assert ayssim("DELETE", f"{R}/service/container/web1")[0] == 204


@pytest.mark.parametrize("args", [("--job-timeout", "-1"), ("--wait-timeout", "soon"), ("--repo", "")])
def test_bad_options_stop_start_up(args: tuple[str, ...]) -> None:
    child = Child(twistd("ayssim", "--port", f"tcp:{free_port()}:interface=127.0.0.1", *args),
                  env=python_env(), cwd=ROOT)
    try:
        assert child.process.wait(30) != 0
        assert args[0] in child.output()
    finally:
        child.stop()


def test_with_core0sim_processes(core0sim: Core0Sim) -> None:
    """core0sim and ayssim as processes: a container made through AYS is on the node."""
    from g8core import Client

    child, ayssim = start_ayssim("--nodes-file", str(core0sim.node_file))
    try:
        ayssim.until("GET", f"{R}/service/container/vfw_21", lambda code, _: code == 200,
                     "seed container registered", timeout=30)
        content = ('container__web1:\n  node: "525400123456"\n  flist: https://hub.example.org/u.flist\n'
                   '  hostname: web1\n'
                   "actions:\n  - {action: install, actor: container, service: web1, force: false}\n")
        assert ayssim("POST", f"{R}/blueprint", {"name": "bp1", "content": content})[0] == 201
        assert ayssim("POST", f"{R}/blueprint/bp1")[0] == 200
        code, run = ayssim("POST", f"{R}/aysrun")
        assert code == 200
        final = ayssim.until("GET", f"{R}/aysrun/{run['key']}",
                             lambda code, body: body["state"] in ("ok", "error"), "run end")
        assert final["state"] == "ok", final

        _, node = ayssim("GET", f"{R}/service/node/525400123456")
        client = Client(node["data"]["redisAddr"], port=node["data"]["redisPort"])
        containers = client.container.list()
        tags = [c["container"]["arguments"]["tags"] for c in containers.values()]
        assert ["web1"] in tags and ["vfw_21"] in tags
    finally:
        child.stop()
