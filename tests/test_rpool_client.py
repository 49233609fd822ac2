"""
``rpool`` apart from what a backend answers: ``--help`` at every level
(each readable command, ``api``, each tag and each of the generated
operation commands), the exit codes of an unreachable server and of one
that does not answer, where settings come from (options, ``RPOOL_*``, the
configuration file), the document's cache per server URL, and against a
stub server what rpoold's API may grow: asynchronous operations followed
with ``?wait=``, a job's output as Server-Sent Events, an operation the
contract does not have, a 503.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rpool import cli
from rpool.container_commands import parse_nic
from rpool.jobs import sse_events
from rpool.settings import Settings
from rpool.spec_cache import cache_file
from rpool.waiting import operation_state
from testbed.ports import free_port
from testbed.processes import Child
from testbed.twistd import start_rpoold
from tests.support.rpool_cli import Rpool
from tests.support.rpool_stub import StubServer


@pytest.fixture(scope="module")
def daemon() -> Iterator[str]:
    """``twistd rpoold`` on the mock pool (embedded configuration)."""
    child: Child
    child, url = start_rpoold()
    try:
        yield url
    finally:
        child.stop()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture
def rpool(tmp_path: Path, stub: StubServer) -> Rpool:
    return Rpool(stub.url, tmp_path / "home")


# --help -----------------------------------------------------------------------------------------

HELP_LEVELS = [
    (), ("node",), ("node", "mem"), ("node", "reboot"), ("reboot",), ("nodes",), ("containers",),
    ("container",), ("container", "create"), ("container", "delete"), ("exec",), ("vms",), ("vm",),
    ("vm", "create"), ("vm", "migrate"), ("call",), ("operations",), ("config",),
    ("api",), ("api", "node-info"), ("api", "node-info", "get-mem-info"),
    ("api", "containers", "create-container"),
]


@pytest.mark.parametrize("level", HELP_LEVELS, ids=lambda level: " ".join(level) or "rpool")
def test_help_at_each_level(daemon: str, tmp_path: Path, level: tuple[str, ...]) -> None:
    run = Rpool(daemon, tmp_path).ok(*level, "--help")
    assert run.stdout.startswith(f"Usage: rpool {' '.join(level)}".rstrip() + " ")
    assert run.stderr == ""


def _walk(group: click.Group, ctx: click.Context, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, (prefix, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _walk(command, click.Context(command, parent=ctx, info_name=name), (*prefix, name))


def test_help_of_every_command_and_generated_operation(daemon: str, tmp_path: Path) -> None:
    """Every command of the tree, the 91 operations' own among them, has a help (in process)."""
    runner = CliRunner()
    env = {"RPOOL_URL": daemon, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    session = cli.Session(Settings(url=daemon), cache=False)
    with click.Context(cli.main, info_name="rpool", obj=session) as ctx:
        paths = list(_walk(cli.main, ctx, ()))
    session.close()
    generated = [p for p in paths if p[0] == "api" and len(p) == 3]
    assert len(generated) >= 91
    for path in paths:
        result = runner.invoke(cli.main, [*path, "--help"], env=env, prog_name="rpool")
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert result.output.startswith(f"Usage: rpool {' '.join(path)} "), (path, result.output)


# Exit codes -------------------------------------------------------------------------------------


def test_unreachable_server_exits_6(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = Rpool(url, tmp_path)("nodes")
    assert run.code == 6, run
    assert run.stderr == f"rpool: cannot reach {url}: Connection refused\n"
    assert Rpool("http://no-such-host.invalid", tmp_path)("nodes").code == 6


def test_silent_server_exits_7(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete; nothing ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        run = Rpool(url, tmp_path)("--timeout", "0.5", "nodes")
    assert run.code == 7, run
    assert "no answer within 0.5 s" in run.stderr
    assert time.monotonic() - started < 20


def test_server_error_exits_5(rpool: Rpool) -> None:
    run = rpool("call", "GetBroken")
    assert run.code == 5, run
    assert run.stderr == "rpool: GET /broken: 503: backend not ready\n"


def test_usage_errors_exit_2(rpool: Rpool) -> None:
    assert rpool("node").code in (0, 2)
    assert rpool("node", "mem").code == 2
    assert rpool("nodes", "--no-such-option").code == 2
    assert rpool("--url", "ftp://example.org", "nodes").code == 2
    assert rpool("container", "create", "n1", "web", "--nic", "vlan:1,colour=red", "--flist", "x").code == 2
    assert rpool("exec", "n1", "c1").code == 2


def test_missing_library_names_the_extra(tmp_path: Path) -> None:
    import subprocess
    import sys

    from testbed.processes import ROOT, python_env

    code = "import sys; sys.modules['rich'] = None; from rpool.entry import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "nodes"], env={**python_env(), "PATH": "/usr/bin"},
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert "pip install 'rpoold[cli]'" in done.stderr


# Settings and the document's cache ------------------------------------------------------------------


def test_url_option_beats_the_environment(tmp_path: Path, stub: StubServer) -> None:
    unreachable = Rpool(f"http://127.0.0.1:{free_port()}", tmp_path)
    assert unreachable("nodes").code == 6
    listed = unreachable.ok("--url", stub.url, "nodes", "--json").json()
    assert [n["id"] for n in listed] == ["n1", "n2"]
    settings = unreachable.ok("--url", stub.url, "config", "--json").json()
    assert settings["url"] == stub.url


def test_config_file_and_token(tmp_path: Path, stub: StubServer) -> None:
    rpool = Rpool(None, tmp_path)
    rpool.config_file.parent.mkdir(parents=True)
    rpool.config_file.write_text(f'url = "{stub.url}"\ntoken = "from-file"\ntimeout = 20\n')
    rpool.ok("nodes")
    assert stub.state.requests("GET", "/nodes")[-1].headers["authorization"] == "Bearer from-file"
    rpool.ok("nodes", env={"RPOOL_TOKEN": "from-env"})
    assert stub.state.requests("GET", "/nodes")[-1].headers["authorization"] == "Bearer from-env"
    rpool.ok("--token", "from-option", "nodes")
    assert stub.state.requests("GET", "/nodes")[-1].headers["authorization"] == "Bearer from-option"
    shown = rpool.ok("config").stdout
    assert "(set)" in shown and "from-file" not in shown
    assert str(rpool.config_file) in shown

    other = tmp_path / "other.toml"
    other.write_text(f'url = "{stub.url}"\ncolour = "red"\n')
    bad = rpool("nodes", env={"RPOOL_CONFIG": str(other)})
    assert bad.code == 2, bad
    assert bad.stderr == f"rpool: configuration file '{other}' at 'colour': unknown key " \
                         "(known: url, token, timeout, spec_ttl)\n"


def test_document_cached_per_server_url(rpool: Rpool, stub: StubServer) -> None:
    rpool.ok("nodes")
    rpool.ok("node", "show", "n1")
    assert len(stub.state.requests("GET", "/openapi.json")) == 1
    cached = cache_file(rpool.cache_home / "rpool", stub.url)
    entry = json.loads(cached.read_text())
    assert entry["url"] == stub.url and "/widgets/{widgetid}" in entry["document"]["paths"]
    rpool.ok("--no-cache", "nodes")
    rpool.ok("--refresh", "nodes")
    assert len(stub.state.requests("GET", "/openapi.json")) == 3
    # A cached copy without the operation asked for is fetched again once.
    del entry["document"]["paths"]["/widgets/{widgetid}"]
    cached.write_text(json.dumps(entry))
    widget = rpool.ok("call", "GetWidget", "-p", "widgetid=w1", "--json").json()
    assert widget == {"id": "w1", "color": "blue"}
    assert len(stub.state.requests("GET", "/openapi.json")) == 4
    # Older than spec_ttl: fetched again.
    rpool.ok("nodes", env={"RPOOL_SPEC_TTL": "0.001"})
    assert len(stub.state.requests("GET", "/openapi.json")) == 5


# What rpoold's API may grow (the stub) -------------------------------------------------------------


def test_reboot_wait_follows_the_servers_operation(rpool: Rpool, stub: StubServer) -> None:
    result = rpool.ok("reboot", "n1", "--wait", "--json").json()
    assert result["bootTime"] == 2000
    (post,) = stub.state.requests("POST", "/nodes/n1/reboot")
    assert post.headers["prefer"] == "respond-async"
    reads = stub.state.requests("GET", "/operations/op-n1")
    assert len(reads) == 2
    assert all(int(r.query["wait"][0]) >= 1 for r in reads)


def test_failed_operation_exits_with_its_status(rpool: Rpool, stub: StubServer) -> None:
    run = rpool("reboot", "n2", "--wait")
    assert run.code == 5, run
    assert run.stderr == "rpool: POST /nodes/n2/reboot: 502: node n2 unreachable\n"


def test_async_call_prints_the_operation(rpool: Rpool, stub: StubServer) -> None:
    answer = rpool.ok("call", "RebootNode", "-p", "nodeid=n1", "--async", "--json").json()
    assert answer == {"status": 202, "operation": "/operations/op-n1",
                      "body": {"id": "op-n1", "status": "running"}}
    assert not stub.state.requests("GET", "/operations/")
    # Without --wait or --async no operation is asked for.
    rpool.ok("reboot", "n1")
    assert "prefer" not in stub.state.requests("POST", "/nodes/n1/reboot")[-1].headers


def test_exec_reads_the_output_stream(rpool: Rpool, stub: StubServer) -> None:
    run = rpool.ok("exec", "n1", "c1", "--", "echo", "hello")
    assert (run.stdout, run.stderr) == ("hello\n", "warn\n")
    (stream,) = stub.state.requests("GET", "/nodes/n1/containers/c1/jobs/j1/output")
    assert stream.headers["accept"] == "text/event-stream"
    # The stream's last event held the result: the job was not read again.
    reads = stub.state.requests("GET", "/nodes/n1/containers/c1/jobs/j1")
    assert [r.path for r in reads] == ["/nodes/n1/containers/c1/jobs/j1/output"]


def test_an_operation_the_contract_does_not_have(rpool: Rpool) -> None:
    widget = rpool.ok("call", "GetWidget", "-p", "widgetid=w7", "--json").json()
    assert widget == {"id": "w7", "color": "blue"}
    assert rpool.ok("api", "widgets", "get-widget", "w8", "--json").json() == {"id": "w8", "color": "blue"}
    listed = {row["operation"]: row for row in rpool.ok("operations", "--json").json()}
    assert listed["GetWidget"]["command"] == "rpool api widgets get-widget"
    assert "get-widget" in rpool.ok("api", "widgets", "--help").stdout


# Pieces ---------------------------------------------------------------------------------------------


def test_nic_syntax() -> None:
    assert parse_nic("default") == {"type": "default"}
    assert parse_nic("bridge:br0,dhcp") == {"type": "bridge", "id": "br0", "config": {"dhcp": True}}
    nic = "vlan:100,cidr=10.0.0.5/24,gateway=10.0.0.1,dns=8.8.8.8,dns=1.1.1.1,hwaddr=02:00:00:00:00:01"
    assert parse_nic(nic) == {
        "type": "vlan", "id": "100", "hwaddr": "02:00:00:00:00:01",
        "config": {"cidr": "10.0.0.5/24", "gateway": "10.0.0.1", "dns": ["8.8.8.8", "1.1.1.1"]}}


def test_server_sent_events() -> None:
    lines = ["event: stdout", 'data: "a"', "", ": comment", "", "data: one", "data: two", "",
             "event: end", "data: {}"]
    assert list(sse_events(iter(lines))) == [("stdout", '"a"'), ("message", "one\ntwo"), ("end", "{}")]


def test_operation_states() -> None:
    assert operation_state({"status": "running"}) == "running"
    assert operation_state({"status": "Succeeded"}) == "succeeded"
    assert operation_state({"state": "failed"}) == "failed"
    assert operation_state({"done": True}) == "succeeded"
    assert operation_state({"done": True, "error": "x"}) == "failed"
    assert operation_state(None) == "running"
