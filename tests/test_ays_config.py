"""
The AYS backend's configuration: ``etc/ays-split.toml`` builds the
original's split deployment, and mistakes stop start-up naming the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.ays.backend import AysBackend
from plugins.ays.registry import AysNodeRegistry
from rpoold.config import ConfigError, build, load
from testbed.ays_split import AYS_FAMILIES, DIRECT_FAMILIES

ROOT = Path(__file__).resolve().parents[1]


def test_the_split_deployment_file() -> None:
    settings = load(str(ROOT / "etc" / "ays-split.toml"), "tcp:0:interface=127.0.0.1")
    ays = settings.backends["ays"]
    core0 = settings.backends["core0"]
    assert isinstance(ays, AysBackend)
    assert ays.client.url == "http://127.0.0.1:5000" and ays.client.repository == "objstor"
    assert {f for f, b in settings.routing.items() if b is ays} == AYS_FAMILIES
    assert {f for f, b in settings.routing.items() if b is core0} == DIRECT_FAMILIES
    assert isinstance(core0.registry, AysNodeRegistry) and core0.registry is ays.node_registry()


def test_defaults() -> None:
    settings = build({"backends": {"ays": {"plugin": "ays", "url": "http://ays:5000/"}},
                      "families": {"default": "ays"}}, "test", ".")
    ays = settings.backends["ays"]
    assert ays.client.url == "http://ays:5000" and ays.client.repository == "objstor"
    assert ays.client.request_timeout == 10 and ays.timing.run_timeout == 20
    assert set(settings.routing) == AYS_FAMILIES


@pytest.mark.parametrize(("table", "key", "what"), [
    ({}, "backends.ays.url", "missing required key"),
    ({"url": "ays:5000"}, "backends.ays.url", "does not match"),
    ({"url": "http://ays", "repository": "a b"}, "backends.ays.repository", "does not match"),
    ({"url": "http://ays", "run_timeout": 0}, "backends.ays.run_timeout", "0"),
    ({"url": "http://ays", "runtimeout": 3}, "backends.ays.runtimeout", "unknown key"),
])
def test_mistakes_name_the_key(table: dict[str, object], key: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build({"backends": {"ays": {"plugin": "ays", **table}}, "families": {"default": "ays"}},
              "configuration file 'x.toml'", ".")
    [line] = caught.value.problems
    assert line.startswith(f"configuration file 'x.toml' at '{key}'"), line
    assert what in line, line
