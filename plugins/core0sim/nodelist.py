"""
The node list core0sim writes once its nodes are ready (``--config-out``),
read by the core0 backend: a TOML file with one ``[[nodes]]`` table per
node::

    [[nodes]]
    id = "525400123456"
    host = "127.0.0.1"
    port = 40123
    db = 0            # omitted or 0 when the node has its redis alone
    hostname = "core0node"
    password = "..."  # only when set

It is written to a temporary file next to the target and renamed over it,
so a reader sees either no file or a whole one.  The AYS simulator reads
it (``read``) to register the nodes; the core0 backend reads it as a
``nodes_file`` with its configuration checks.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 6379


class NodeListError(Exception):
    """The node list cannot be read or has a bad entry."""


@dataclass(frozen=True)
class NodeEntry:
    """One simulated node and where its Redis is (no password: empty)."""

    id: str
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    hostname: str = ""
    password: str = ""


def _string(value: str) -> str:
    # A JSON string with only ASCII is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def render(entries: list[NodeEntry]) -> str:
    """The TOML text of a node list."""
    lines = ["# Simulated core0 nodes (written by core0sim).", ""]
    for entry in entries:
        lines += [
            "[[nodes]]",
            f"id = {_string(entry.id)}",
            f"host = {_string(entry.host)}",
            f"port = {int(entry.port)}",
            f"db = {int(entry.db)}",
            f"hostname = {_string(entry.hostname)}",
        ]
        if entry.password:
            lines.append(f"password = {_string(entry.password)}")
        lines.append("")
    return "\n".join(lines)


def write(path: str | Path, entries: list[NodeEntry]) -> None:
    """Write the node list atomically (temporary file, then rename)."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render(entries))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def read(path: str | Path) -> list[NodeEntry]:
    """
    Parse a node list file.

    :raises NodeListError: naming the file and the entry at fault.
    """
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise NodeListError(f"{path}: {e}") from None
    nodes = document.get("nodes", [])
    if not isinstance(nodes, list):
        raise NodeListError(f"{path}: 'nodes' must be an array of tables")
    entries = []
    for n, node in enumerate(nodes):
        where = f"{path}: nodes[{n}]"
        if not isinstance(node, dict):
            raise NodeListError(f"{where}: not a table")
        entries.append(NodeEntry(
            id=_typed(node, "id", str, where), host=_typed(node, "host", str, where),
            port=_typed(node, "port", int, where, DEFAULT_PORT), db=_typed(node, "db", int, where, 0),
            hostname=_typed(node, "hostname", str, where, ""),
            password=_typed(node, "password", str, where, "")))
    return entries


def _typed(table: dict[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    if key not in table:
        if default is None:
            raise NodeListError(f"{where}: {key} is required")
        return default
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise NodeListError(f"{where}: {key} must be {'an integer' if kind is int else 'a string'}")
    return value
