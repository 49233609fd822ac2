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
so a reader sees either no file or a whole one.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeEntry:
    """One simulated node and where its Redis is."""

    id: str
    host: str
    port: int
    db: int = 0
    hostname: str = ""
    password: str | None = None


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
    """Parse a node list file."""
    with open(path, "rb") as f:
        document = tomllib.load(f)
    return [
        NodeEntry(
            id=str(item["id"]),
            host=str(item["host"]),
            port=int(item["port"]),
            db=int(item.get("db", 0)),
            hostname=str(item.get("hostname", "")),
            password=item.get("password"),
        )
        for item in document.get("nodes", [])
    ]
