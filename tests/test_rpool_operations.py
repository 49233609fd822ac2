"""
``rpool`` against rpoold's operations, as a subprocess against a live
``twistd rpoold`` on the mock pool: ``--wait`` sends ``Prefer:
respond-async`` and follows the operation with ``?wait=`` to the result
the synchronous call would have given (its ``Location``); an operation
that fails exits as the error it carries (4 for a 409, with its message);
``--async`` prints the operation, which the generated ``GetOperation``
command then reads; ``reboot --wait`` ends with the reboot's operation,
its boot time the one the operation saw; ``exec`` prints the job's output
from the daemon's SSE stream (``{"text": ...}`` events), not its JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed.http_api import call
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child
from testbed.twistd import start_rpoold
from tests.support.backends import SEED_CONTAINER, SEED_NODE, unique
from tests.support.resources import container_body
from tests.support.rpool_cli import Rpool


@dataclass
class Live:
    url: str
    rpool: Rpool


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("rpool-operations")
    config = directory / "rpoold.toml"
    config.write_text(MOCK_CONFIG)
    daemon: Child | None = None
    try:
        daemon, url = start_rpoold(str(config))
        yield Live(url, Rpool(url, directory / "home"))
    finally:
        if daemon is not None:
            daemon.stop()


def get(live: Live, path: str, **params: str) -> Any:
    reply = call(live.url, "GET", path + ("?" + "&".join(f"{k}={v}" for k, v in params.items())
                                          if params else ""))
    assert reply.status == 200, reply
    return reply.json()


def operations_of(live: Live, operation: str) -> list[dict[str, Any]]:
    found = get(live, "/operations", operation=operation)
    assert isinstance(found, list)
    return found


def test_wait_follows_the_operation_to_its_location(live: Live, tmp_path: Path) -> None:
    name = unique("br")
    body = tmp_path / "bridge.json"
    body.write_text(json.dumps({"name": name, "networkMode": "none"}))
    created = live.rpool.ok("call", "CreateBridge", "-p", f"nodeid={SEED_NODE}", "--body", f"@{body}",
                            "--wait", "--json")
    location = f"/nodes/{SEED_NODE}/bridges/{name}"
    assert created.json() == {"status": 201, "location": location}
    # It ran as an operation (a synchronous write that ends in its answer keeps none).
    [operation] = [o for o in operations_of(live, "CreateBridge") if o["resource"] == location]
    assert operation["result"] == {"status": 201, "location": location}, operation
    assert operation["status"] == "succeeded"
    assert get(live, location)["name"] == name
    human = live.rpool.ok("call", "DeleteBridge", "-p", f"nodeid={SEED_NODE}", "-p", f"bridgeid={name}",
                          "--wait")
    assert human.stdout.strip() == "204 No Content"


def test_a_failed_operation_exits_as_its_error(live: Live, tmp_path: Path) -> None:
    body = tmp_path / "container.json"
    body.write_text(json.dumps(container_body(SEED_CONTAINER)))
    failed = live.rpool("call", "CreateContainer", "-p", f"nodeid={SEED_NODE}", "--body", f"@{body}",
                        "--wait")
    assert failed.code == 4, failed
    assert SEED_CONTAINER in failed.stderr and "409" in failed.stderr, failed
    assert any(o["status"] == "failed" and o["error"]["status"] == 409
               for o in operations_of(live, "CreateContainer")), operations_of(live, "CreateContainer")


def test_async_prints_the_operation_then_get_operation_waits(live: Live) -> None:
    accepted = live.rpool.ok("call", "JoinZerotier", "-p", f"nodeid={SEED_NODE}", "--body", "-", "--async",
                             "--json", stdin='{"nwid": "a09acf02336ce8b3"}').json()
    assert accepted["status"] == 202 and accepted["operation"] == f"/operations/{accepted['body']['id']}"
    assert accepted["body"]["operation"] == "JoinZerotier"
    ended = live.rpool.ok("call", "GetOperation", "-p", f"operationid={accepted['body']['id']}",
                          "-p", "wait=10", "--json").json()
    assert ended["status"] == "succeeded" and ended["result"]["status"] == 201, ended
    live.rpool.ok("call", "ExitZerotier", "-p", f"nodeid={SEED_NODE}", "-p", "zerotierid=a09acf02336ce8b3")


def test_reboot_wait_ends_with_its_operation(live: Live) -> None:
    before = get(live, f"/nodes/{SEED_NODE}/info")
    result = live.rpool.ok("reboot", SEED_NODE, "--wait", "--wait-timeout", "30", "--json").json()
    [operation] = [o for o in operations_of(live, "RebootNode") if o["status"] == "succeeded"]
    back = operation["steps"][-1]
    assert back["message"] == "node back"
    assert result["bootTime"] == back["data"]["bootTime"] == get(live, f"/nodes/{SEED_NODE}/info")["bootTime"]
    assert result["bootTime"] != before["bootTime"] and result["status"] == "running"


def test_exec_prints_the_streamed_output(live: Live) -> None:
    run = live.rpool.ok("exec", SEED_NODE, SEED_CONTAINER, "--", "echo", "one", "two")
    assert run.stdout == "one two\n", run
