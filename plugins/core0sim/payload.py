"""
Command payloads as core0 decodes them from ``core:default`` (protocol
reference, section 1.3): unknown fields are ignored, ``null`` leaves a
field at its zero value, and a field of the wrong JSON type, text that is
not JSON, or a missing or empty ``id`` makes the whole payload dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class PayloadError(ValueError):
    """The payload is dropped (no flag, no result); the message says why."""


@dataclass
class Command:
    """
    One decoded command.

    :ivar arguments: the arguments object, or ``None`` when it is missing,
        ``null`` or not an object (commands that read it then fail).
    """

    id: str
    command: str = ""
    arguments: dict[str, Any] | None = None
    queue: str = ""
    tags: str = ""
    max_time: int = 0
    max_restart: int = 0
    recurring_period: int = 0
    stats_interval: int = 0
    log_levels: list[int] = field(default_factory=list)
    #: The later protocol's flag: push the output to ``stream:<id>`` as it is written.
    stream: bool = False


def _string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"field {name!r} is not a string")
    return value


def _integer(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"field {name!r} is not an integer")
    return value


#: What the clients of the reference era send; anything else takes the long way.
_COMMON = frozenset({"id", "command", "arguments"})


def decode(raw: bytes) -> Command:
    """
    Decode one element of ``core:default``.

    :raises PayloadError: the payload must be dropped.
    """
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"not JSON: {e}") from None
    if payload is None:
        payload = {}
    if type(payload) is not dict:
        raise PayloadError("not a JSON object")
    if payload.keys() <= _COMMON:
        # g8core 1.0.0: id, command and arguments only.
        command = Command(id=_string(payload, "id"), command=_string(payload, "command"))
    else:
        command = _decode_all(payload)
    arguments = payload.get("arguments")
    command.arguments = arguments if type(arguments) is dict else None
    if not command.id:
        raise PayloadError("no job id")
    return command


def _decode_all(payload: dict[str, Any]) -> Command:
    command = Command(
        id=_string(payload, "id"),
        command=_string(payload, "command"),
        queue=_string(payload, "queue"),
        tags=_string(payload, "tags"),
        max_time=_integer(payload, "max_time"),
        max_restart=_integer(payload, "max_restart"),
        recurring_period=_integer(payload, "recurring_period"),
        stats_interval=_integer(payload, "stats_interval"),
    )
    stream = payload.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise PayloadError("field 'stream' is not a boolean")
        command.stream = stream
    levels = payload.get("log_levels")
    if levels is not None:
        if not isinstance(levels, list) or any(
                isinstance(n, bool) or not isinstance(n, int) for n in levels):
            raise PayloadError("field 'log_levels' is not an array of integers")
        command.log_levels = levels
    return command
