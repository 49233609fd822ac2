"""
Configuration: what a good file builds, and how a bad one stops start-up
with one line per problem naming the file, the key path and what is wrong.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import succeed
from zope.interface import implementer
from zope.interface.verify import verifyObject

from rpoold import config
from rpoold.config import ConfigError, load
from rpoold.interfaces import FAMILIES, IContainers, INodes
from rpoold.plugin import BackendPlugin
from testbed.processes import Child, python_env, wait_until
from testbed.twistd import twistd

GOOD = """
[server]
port = "tcp:0:interface=127.0.0.1"
request_timeout = 5

[backends.pool]
plugin = "mock"
nodes = 3

[families]
default = "pool"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rpoold.toml"
    path.write_text(text)
    return str(path)


def problems(path: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return caught.value.problems


def one_problem(path: str, *words: str) -> str:
    """Assert exactly one problem line, naming the file and each of ``words``."""
    lines = problems(path)
    assert len(lines) == 1, lines
    [line] = lines
    assert "\n" not in line
    assert f"'{path}'" in line, line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


# What a good configuration builds ---------------------------------------------------


def test_embedded_default_serves_everything_from_the_mock() -> None:
    settings = load(None)
    assert settings.server["port"] == "tcp:8080:interface=127.0.0.1"
    assert set(settings.routing) == {f.name for f in FAMILIES}
    assert len({id(b) for b in settings.routing.values()}) == 1
    assert settings.plugin_of == {"mock": "mock"}


def test_a_file(tmp_path: Path) -> None:
    settings = load(write(tmp_path, GOOD))
    assert settings.server["request_timeout"] == 5
    assert settings.server["max_body_bytes"] == 1048576
    backend = settings.backends["pool"]
    nodes: list[Any] = []
    backend.list_nodes().addCallback(nodes.extend)  # the mock's pool answers at once
    assert len(nodes) == 3
    assert all(settings.routing[f.name] is backend for f in FAMILIES)


def test_port_option_overrides_the_file(tmp_path: Path) -> None:
    settings = load(write(tmp_path, GOOD), port="tcp:9999:interface=127.0.0.1")
    assert settings.server["port"] == "tcp:9999:interface=127.0.0.1"


def test_families_without_default_are_unserved(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.m]\nplugin = "mock"\n[families]\nnodes = "m"\nvdisks = "m"\n')
    assert set(load(path).routing) == {"nodes", "vdisks"}


# Problems -------------------------------------------------------------------------------


def test_unknown_plugin(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.main]\nplugin = "nosuch"\n[families]\ndefault = "main"\n')
    one_problem(path, "'backends.main.plugin'", "unknown plugin 'nosuch'", "mock")


@pytest.mark.parametrize(("text", "key"), [
    (GOOD + "\n[colours]\nsky = 1\n", "'colours'"),
    (GOOD.replace("request_timeout = 5", "request_timeout = 5\ncolour = 'red'"), "'server.colour'"),
    (GOOD.replace("nodes = 3", "nodes = 3\nnodez = 4"), "'backends.pool.nodez'"),
    (GOOD + 'containerz = "pool"\n', "'families.containerz'"),
], ids=["section", "server", "plugin-option", "family"])
def test_unknown_key(tmp_path: Path, text: str, key: str) -> None:
    one_problem(write(tmp_path, text), key, "unknown key")


@pytest.mark.parametrize(("text", "key", "what"), [
    (GOOD.replace("nodes = 3", 'nodes = "three"'), "'backends.pool.nodes'", "expected integer"),
    (GOOD.replace('port = "tcp:0:interface=127.0.0.1"', "port = 8080"), "'server.port'", "expected string"),
    (GOOD.replace('default = "pool"', "default = 1"), "'families.default'", "expected string"),
    (GOOD.replace("request_timeout = 5", "request_timeout = 0"), "'server.request_timeout'", "0"),
], ids=["plugin-option", "server", "family", "out-of-range"])
def test_wrong_type_or_value(tmp_path: Path, text: str, key: str, what: str) -> None:
    one_problem(write(tmp_path, text), key, what)


def test_missing_sections(tmp_path: Path) -> None:
    one_problem(write(tmp_path, '[backends.m]\nplugin = "mock"\n'), "'families'", "missing")


def test_family_mapped_to_unknown_instance(tmp_path: Path) -> None:
    one_problem(write(tmp_path, GOOD + 'vms = "other"\n'), "'families.vms'", "'other'")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("nodes = 3", 'nodes = "three"') + 'vms = "other"\n'
    lines = problems(write(tmp_path, text))
    assert len(lines) == 2, lines
    assert any("'backends.pool.nodes'" in line for line in lines)
    assert any("'families.vms'" in line for line in lines)


#: Five problems of different kinds in one file, and a word of each line.
FIVE_PROBLEMS = """
[server]
port = "tcp:0:interface=127.0.0.1"
colour = "red"

[backends.pool]
plugin = "mock"
nodes = "three"

[backends.spare]
plugin = "nosuch"

[families]
default = "pool"
containerz = "pool"
vms = "missing"
"""
FIVE_KEYS = ["'server.colour'", "'backends.pool.nodes'", "'backends.spare.plugin'",
             "'families.containerz'", "'families.vms'"]


def test_problems_of_every_kind_are_reported_at_once(tmp_path: Path) -> None:
    """
    An unknown [server] key, a bad backend option, an unknown plugin, an
    unknown [families] key and a family naming a missing instance: one
    line each, none hiding another.
    """
    path = write(tmp_path, FIVE_PROBLEMS)
    lines = problems(path)
    assert len(lines) == 5, lines
    assert all(f"'{path}'" in line and "\n" not in line for line in lines), lines
    [colour, nodes, spare, containerz, vms] = [
        next(line for line in lines if key in line) for key in FIVE_KEYS]
    assert "unknown key" in colour
    assert "expected integer" in nodes
    assert "unknown plugin 'nosuch'" in spare
    assert "unknown key" in containerz
    assert "no backend instance 'missing'" in vms


@pytest.mark.parametrize(("port", "words"), [
    ("tcp:abc:interface=127.0.0.1", ["invalid literal"]),
    ("bogus:1", ["Unknown endpoint type"]),
], ids=["bad-number", "unknown-type"])
def test_a_bad_port_is_one_line(tmp_path: Path, port: str, words: list[str]) -> None:
    """Not an endpoint description: one line naming 'server.port', and no other (not [auth])."""
    text = GOOD.replace('port = "tcp:0:interface=127.0.0.1"', f'port = "{port}"')
    one_problem(write(tmp_path, text), "'server.port'", repr(port), "not an endpoint description", *words)


def test_a_bad_port_option_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, GOOD), port="bogus:1")
    [line] = caught.value.problems
    assert "'server.port'" in line and "'bogus:1' (given by --port)" in line, line


def test_unreadable_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.toml")
    one_problem(missing, "cannot read", "No such file")
    one_problem(str(tmp_path), "cannot read")


def test_invalid_toml(tmp_path: Path) -> None:
    one_problem(write(tmp_path, "[backends.m\nplugin = mock\n"), "not valid TOML")


def test_cors_origins(tmp_path: Path) -> None:
    """Off by default; origins as browsers send them, or ``*``."""
    assert load(write(tmp_path, GOOD)).server["cors_origins"] == []
    text = GOOD.replace("request_timeout = 5", 'request_timeout = 5\ncors_origins = ["https://ui.example.org",'
                        ' "http://127.0.0.1:3000", "http://[::1]:8000", "*"]')
    assert load(write(tmp_path, text)).server["cors_origins"] == [
        "https://ui.example.org", "http://127.0.0.1:3000", "http://[::1]:8000", "*"]


@pytest.mark.parametrize(("value", "key", "what"), [
    ('["https://ui.example.org/"]', "'server.cors_origins[0]'", "is not an origin"),
    ('["https://a.example", "ui.example.org"]', "'server.cors_origins[1]'",
     "'ui.example.org' is not an origin"),
    ('["ftp://ui.example.org"]', "'server.cors_origins[0]'", "is not an origin"),
    ('["https://a.example", "https://A.example"]', "'server.cors_origins[1]'", "listed twice"),
    ('"https://ui.example.org"', "'server.cors_origins'", "expected array"),
    ("[1]", "'server.cors_origins[0]'", "expected string"),
], ids=["path", "no-scheme", "scheme", "twice", "not-a-list", "not-a-string"])
def test_a_bad_cors_origin_is_one_line(tmp_path: Path, value: str, key: str, what: str) -> None:
    text = GOOD.replace("request_timeout = 5", f"request_timeout = 5\ncors_origins = {value}")
    one_problem(write(tmp_path, text), key, what)


# Plugins that do not serve what they are given -----------------------------------------


@implementer(INodes)
class NodesOnly:
    """A backend serving the node records and nothing else."""

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        pass

    def list_nodes(self) -> Any:
        return succeed([])

    def get_node(self, nodeid: str) -> Any:
        return succeed({})

    def delete_node(self, nodeid: str) -> Any:
        return succeed(None)

    def reboot_node(self, nodeid: str) -> Any:
        return succeed(None)


@implementer(INodes)
class Pretender:  # type: ignore[misc]  # deliberately incomplete
    """Claims ``INodes`` but implements none of it."""

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        pass


class Renamer(NodesOnly):
    """Serves the node records, but spells the node id of ``get_node`` otherwise."""

    def get_node(self, node_id: str) -> Any:  # type: ignore[override]
        return succeed({})


class Refuser:
    """A backend whose options are never consistent."""

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        raise ConfigError(["these options never go together"])


class Dependent(NodesOnly):
    """Serves the node records, and needs the backend instance named ``base`` to be built."""

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        self.base = context.backend("base")


TEST_PLUGINS = [
    BackendPlugin(name="nodesonly", description="test", factory=f"{__name__}:NodesOnly"),
    BackendPlugin(name="pretender", description="test", factory=f"{__name__}:Pretender"),
    BackendPlugin(name="refuser", description="test", factory=f"{__name__}:Refuser"),
    BackendPlugin(name="renamer", description="test", factory=f"{__name__}:Renamer"),
    BackendPlugin(name="dependent", description="test", factory=f"{__name__}:Dependent"),
]


@pytest.fixture
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin discovery finds the test plugins too."""
    real = config.discover_plugins

    def discover() -> dict[str, Any]:
        return {**real(), **{p.name: p for p in TEST_PLUGINS}}

    monkeypatch.setattr(config, "discover_plugins", discover)


def test_the_test_plugins_are_what_they_say() -> None:
    verifyObject(INodes, NodesOnly({}, None))
    assert not IContainers.implementedBy(NodesOnly)


@pytest.mark.usefixtures("test_plugins")
def test_a_family_needs_a_backend_providing_its_interface(tmp_path: Path) -> None:
    text = '[backends.m]\nplugin = "mock"\n[backends.n]\nplugin = "nodesonly"\n' \
           '[families]\ndefault = "m"\nnodes = "n"\ncontainers = "n"\n'
    one_problem(write(tmp_path, text), "'families.containers'", "backend 'n'", "nodesonly",
                "does not provide IContainers")


@pytest.mark.usefixtures("test_plugins")
def test_a_partial_backend_serves_its_families(tmp_path: Path) -> None:
    text = '[backends.m]\nplugin = "mock"\n[backends.n]\nplugin = "nodesonly"\n' \
           '[families]\ndefault = "m"\nnodes = "n"\n'
    settings = load(write(tmp_path, text))
    assert isinstance(settings.routing["nodes"], NodesOnly)
    assert settings.routing["containers"] is settings.backends["m"]


@pytest.mark.usefixtures("test_plugins")
def test_a_default_backend_only_serves_what_it_provides(tmp_path: Path) -> None:
    text = '[backends.n]\nplugin = "nodesonly"\n[families]\ndefault = "n"\n'
    assert set(load(write(tmp_path, text)).routing) == {"nodes"}


@pytest.mark.usefixtures("test_plugins")
def test_a_backend_that_claims_an_interface_must_implement_it(tmp_path: Path) -> None:
    text = '[backends.p]\nplugin = "pretender"\n[families]\nnodes = "p"\n'
    one_problem(write(tmp_path, text), "'families.nodes'", "backend 'p'", "claims INodes",
                "does not implement it", "list_nodes")


def test_the_renamer_passes_verify_object() -> None:
    """What it gets wrong is not what ``verifyObject`` checks."""
    verifyObject(INodes, Renamer({}, None))


@pytest.mark.usefixtures("test_plugins")
def test_a_backend_method_must_take_the_routes_parameters(tmp_path: Path) -> None:
    """A method that spells a path parameter otherwise stops start-up (not a 500 per request)."""
    text = '[backends.r]\nplugin = "renamer"\n[families]\nnodes = "r"\n'
    one_problem(write(tmp_path, text), "'families.nodes'", "backend 'r'", "(plugin 'renamer')",
                "method get_node(node_id)", "GetNode", "get_node(nodeid)",
                "no parameter 'nodeid'", "parameter 'node_id' is not passed")


@pytest.mark.usefixtures("test_plugins")
def test_build_problems_come_with_the_others(tmp_path: Path) -> None:
    """What a plugin finds while building its backend is reported with the file's other problems."""
    text = GOOD.replace("request_timeout = 5", "request_timeout = 5\ncolour = 'red'") \
        + '[backends.r]\nplugin = "refuser"\n'
    lines = problems(write(tmp_path, text))
    assert len(lines) == 2, lines
    assert "'server.colour'" in lines[0]
    assert "'backends.r'" in lines[1] and "these options never go together" in lines[1]


@pytest.mark.usefixtures("test_plugins")
def test_an_instance_needing_a_broken_one_adds_no_line(tmp_path: Path) -> None:
    """The broken instance's problem is reported once; the one needing it is not built."""
    text = '[backends.base]\nplugin = "mock"\nnodes = "three"\n' \
           '[backends.d]\nplugin = "dependent"\n[families]\ndefault = "base"\nnodes = "d"\n'
    one_problem(write(tmp_path, text), "'backends.base.nodes'", "expected integer")


@pytest.mark.usefixtures("test_plugins")
def test_an_instance_needing_another_gets_it(tmp_path: Path) -> None:
    text = '[backends.base]\nplugin = "mock"\n[backends.d]\nplugin = "dependent"\n' \
           '[families]\ndefault = "base"\nnodes = "d"\n'
    settings = load(write(tmp_path, text))
    assert settings.routing["nodes"].base is settings.backends["base"]


# Through twistd -------------------------------------------------------------------------


def twistd_stops(*args: str) -> list[str]:
    """
    Run ``twistd rpoold ARGS``, which must stop at once, non-zero, without
    a traceback.

    :returns: the lines it wrote, each starting ``rpoold: ``.
    """
    child = Child(twistd("rpoold", *args), env=python_env())
    try:
        wait_until(lambda: not child.alive(), 30.0, "twistd exits")
    finally:
        status = child.stop()
    output = child.output()
    assert status != 0, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert all(line.startswith("rpoold: ") for line in lines), output
    return lines


@pytest.mark.parametrize(("text", "words"), [
    ('[backends.main]\nplugin = "nosuch"\n[families]\ndefault = "main"\n',
     ["'backends.main.plugin'", "unknown plugin 'nosuch'"]),
    ("[server\n", ["not valid TOML"]),
    (GOOD.replace('port = "tcp:0:interface=127.0.0.1"', 'port = "tcp:abc:interface=127.0.0.1"'),
     ["'server.port'", "not an endpoint description"]),
], ids=["unknown-plugin", "invalid-toml", "bad-port"])
def test_twistd_stops_with_one_line(tmp_path: Path, text: str, words: list[str]) -> None:
    """``twistd rpoold --config bad.toml`` exits non-zero with the problem on one line, no traceback."""
    path = write(tmp_path, text)
    lines = twistd_stops("--config", path)
    assert len(lines) == 1, lines
    assert f"'{path}'" in lines[0]
    for word in words:
        assert word in lines[0]


def test_twistd_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, FIVE_PROBLEMS)
    lines = twistd_stops("--config", path)
    assert len(lines) == 5, lines
    assert all(f"'{path}'" in line for line in lines)
    for key in FIVE_KEYS:
        assert sum(key in line for line in lines) == 1, (key, lines)


def test_twistd_stops_with_one_line_on_a_bad_port_option(tmp_path: Path) -> None:
    lines = twistd_stops("--config", write(tmp_path, GOOD), "--port", "tcp:abc:interface=127.0.0.1")
    assert len(lines) == 1, lines
    assert "'server.port'" in lines[0] and "(given by --port)" in lines[0], lines


def test_twistd_stops_with_one_line_on_a_busy_port(tmp_path: Path) -> None:
    """A port in use stops start-up with one line naming the file, the key and the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        path = write(tmp_path, GOOD)
        lines = twistd_stops("--config", path, "--port", port)
    assert len(lines) == 1, lines
    assert f"'{path}' at 'server.port'" in lines[0], lines
    assert f"cannot listen on '{port}'" in lines[0] and "in use" in lines[0], lines
