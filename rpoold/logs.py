"""
Request ids and the JSON log output.

Every request gets an id (the client's ``X-Request-Id`` when it is a
short token, else a fresh one).  It is sent back in ``X-Request-Id``, put
in error bodies, and held in :data:`REQUEST_ID` while the request's
coroutines run: Twisted runs each coroutine in its own copy of the
``contextvars`` context, so every log event emitted by code the request
awaits (the route, the backend's ``async`` methods) can be tagged with it.

The JSON output writes one JSON object per log event and line:
``time`` (ISO 8601, UTC), ``level``, ``namespace``, ``message`` (the
formatted text), ``request_id`` when known, the event's other simple
fields, and ``failure`` (the traceback text) for ``log.failure``.  Use it
with ``[log] format = "json"`` in the configuration, or with
``twistd --logger rpoold.logs.json_stdout_observer``.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

#: The id of the request whose code is running, if any.
REQUEST_ID: ContextVar[str | None] = ContextVar("rpoold_request_id", default=None)

#: What a client-chosen request id may look like (else a fresh one is made).
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_SIMPLE = (str, int, float, bool, type(None))
#: Keys of twisted.logger events that are not worth a JSON field.
_SKIP = frozenset({
    "log_format", "log_logger", "log_source", "log_io", "log_text", "log_time",
    "log_level", "log_namespace", "log_failure", "log_trace", "log_system",
    "log_flattened", "format", "message", "time", "system", "isError", "why",
    "failure", "printed",
})


def new_request_id(offered: bytes | None = None) -> str:
    """
    :param offered: the ``X-Request-Id`` the client sent, if any.
    :returns: ``offered`` when it is 1 to 64 letters, digits, ``.``, ``_``
        or ``-``; else 16 fresh hex digits.
    """
    if offered:
        text = offered.decode("latin-1")
        if CLIENT_REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex[:16]


def current_request_id() -> str | None:
    """:returns: the id of the request being served here, if any."""
    return REQUEST_ID.get()


def event_as_json(event: dict[str, Any]) -> str:
    """:returns: one log event as one line of JSON (no newline)."""
    level = event.get("log_level")
    when = event.get("log_time")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
        if isinstance(when, (int, float)) else None,
        "level": getattr(level, "name", None) or ("error" if event.get("isError") else "info"),
        "namespace": event.get("log_namespace") or event.get("system"),
        "message": formatEvent(event),
    }
    request_id = event.get("request_id") or REQUEST_ID.get()
    if request_id:
        record["request_id"] = request_id
    for key, value in event.items():
        if key in _SKIP or key in record or key.startswith("_"):
            continue
        if isinstance(value, _SIMPLE):
            record[key] = value
    failure = event.get("log_failure") or event.get("failure")
    if failure is not None:
        try:
            record["failure"] = failure.getTraceback()
        except Exception:
            record["failure"] = repr(failure)
    return json.dumps(record, default=str)


@implementer(ILogObserver)
class JsonLineObserver:
    """A log observer writing each event as one line of JSON to ``out``."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = event_as_json(event)
        except Exception as e:  # a log line must never break the caller
            line = json.dumps({"level": "error", "message": f"unloggable event: {e!r}"})
        self.out.write(line + "\n")
        self.out.flush()


def json_stdout_observer() -> JsonLineObserver:
    """Log observer factory for ``twistd --logger``: JSON lines on stdout."""
    return JsonLineObserver(sys.stdout)


def json_observer_for(path: str) -> JsonLineObserver:
    """
    :param path: ``"-"`` for stdout, else a file appended to.
    :returns: a JSON line observer writing there.
    """
    if path == "-":
        return JsonLineObserver(sys.stdout)
    return JsonLineObserver(open(path, "a", encoding="utf-8"))
