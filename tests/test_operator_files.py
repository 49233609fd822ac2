"""
The operator files in ``etc/``: the production configuration's sections
pass the daemon's own checks, and the systemd unit runs the daemon in the
foreground as an unprivileged user.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

from rpoold.config import SECTIONS, check
from rpoold.interfaces import FAMILIES_BY_NAME

ETC = Path(__file__).resolve().parents[1] / "etc"


def test_production_config_sections_are_valid() -> None:
    raw = tomllib.loads((ETC / "production.toml").read_text())
    problems: list[str] = []
    for name, schema in SECTIONS.items():
        problems += check(schema, raw.get(name, {}), [name], "production.toml")
    assert problems == []
    assert raw["auth"]["enabled"] is True
    assert raw["auth"]["tokens"] and raw["auth"]["jwt"]["scopes"]
    assert raw["metrics"]["public"] is False
    assert raw["log"]["format"] == "json"
    assert set(raw["families"]) - {"default"} <= set(FAMILIES_BY_NAME)
    assert set(raw["families"].values()) <= set(raw["backends"])


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ETC / "rpoold.service")
    service = unit["Service"]
    command = service["ExecStart"].split()
    assert command[0].endswith("/twistd")
    assert "--nodaemon" in command and "rpoold" in command
    assert command[command.index("rpoold") + 1:] == ["--config", "/etc/rpoold/rpoold.toml"]
    assert service["User"] != "root" and service["DynamicUser"] == "yes"
    assert service["KillSignal"] == "SIGTERM"
    assert service["NoNewPrivileges"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
