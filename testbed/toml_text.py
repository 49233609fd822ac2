"""A configuration written as TOML text, for the daemons' ``--config`` files."""

from __future__ import annotations

import json
from typing import Any


def toml_value(value: Any) -> str:
    """:returns: one scalar, list or inline table as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (in a list: an array of tables)
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml(config: dict[str, Any]) -> str:
    """A configuration (tables of scalars, nested one level for backends) as TOML text."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")

    for section, values in config.items():
        if section == "backends":
            for instance, options in values.items():
                table(f"backends.{instance}", options)
        else:
            table(section, values)
    return "\n".join(lines)
