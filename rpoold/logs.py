"""
Request ids and the JSON log output.

Every request gets an id (the client's ``X-Request-Id`` when it is a
short token, else a fresh one).  It is sent back in ``X-Request-Id``, put
in error bodies, and held in :data:`REQUEST_ID` while the request's
coroutines run: Twisted runs each coroutine in its own copy of the
``contextvars`` context, so every log event emitted by code the request
awaits (the route, the backend's ``async`` methods) can be tagged with it.

Text logs that ``twistd --nodaemon`` would write to stdout go through
:class:`TextLineObserver`: the lines of twistd's own text observer, made
cheaper (the timestamp once per second, a message that is one field
without the format machinery), since every answered request logs one.
Both observers flush their stream once per reactor turn while the reactor
runs (the lines of all the requests answered in a turn in one write),
at once otherwise.

The JSON output writes one JSON object per log event and line:
``time`` (ISO 8601, UTC), ``level``, ``namespace``, ``message`` (the
formatted text), ``request_id`` when known, the event's other simple
fields, and ``failure`` (the traceback text) for ``log.failure``.  Use it
with ``[log] format = "json"`` in the configuration, or with
``twistd --logger rpoold.logs.json_stdout_observer``.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import ILogObserver, formatEvent, formatEventAsClassicLogText, formatTime
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
        or ``-``; else 16 fresh hex digits: 8 drawn at random once per
        process (each worker draws its own), then a counter (no system call
        per request).
    """
    if offered:
        text = offered.decode("latin-1")
        if CLIENT_REQUEST_ID.fullmatch(text):
            return text
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def current_request_id() -> str | None:
    """:returns: the id of the request being served here, if any."""
    return REQUEST_ID.get()


#: A format that is one field and nothing else: ``"{line}"``.
_ONE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def event_message(event: dict[str, Any]) -> str:
    """
    :returns: the event's message, as :func:`twisted.logger.formatEvent`
        makes it; a format that is one field (``"{line}"``) is the field's
        text, made without the format machinery.
    """
    form = event.get("log_format")
    if isinstance(form, str) and "log_flattened" not in event:
        name = _one_field(form)
        if name is not None and name in event:
            try:
                return str(event[name])
            except Exception:
                pass  # formatEvent says it is unformattable
    return formatEvent(event)


@functools.lru_cache(maxsize=256)
def _one_field(form: str) -> str | None:
    """:returns: the field a format is made of alone (``"{line}"``), else ``None``."""
    one = _ONE_FIELD.fullmatch(form)
    return one.group(1) if one is not None else None


class _SecondClock:
    """twistd's text timestamps, made once per second."""

    def __init__(self) -> None:
        self.second: int | None = None
        self.text = ""

    def __call__(self, when: float | None) -> str:
        if when is None:
            return formatTime(when)
        second = int(when)
        if second != self.second:
            self.text = formatTime(second)
            self.second = second
        return self.text


def classic_text(event: dict[str, Any], clock: _SecondClock) -> str | None:
    """
    :returns: the event as twistd's text observer writes it (time,
        ``[system]``, message, continuation lines indented), or ``None``
        for an event without text.
    """
    system = event.get("log_system")
    if ("log_failure" in event or not isinstance(event.get("log_time"), (int, float))
            or not isinstance(system, (str, type(None)))):
        return formatEventAsClassicLogText(event, formatTime=clock)
    text = event_message(event)
    if not text:
        return None
    if system is None:
        level = event.get("log_level")
        system = f"{event.get('log_namespace', '-')}#{getattr(level, 'name', '-')}"
    text = text.replace("\n", "\n\t")
    return f"{clock(event['log_time'])} [{system}] {text}\n"


class _TurnFlush:
    """Flushes a stream at the end of the reactor's turn (at once when it does not run)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.pending = False

    def __call__(self) -> None:
        if self.pending:
            return
        from twisted.internet import reactor

        if not getattr(reactor, "running", False):
            self.out.flush()
            return
        self.pending = True
        reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self.pending = False
        try:
            self.out.flush()
        except (OSError, ValueError):
            pass  # a closed stream: nothing to tell it with


@implementer(ILogObserver)
class TextLineObserver:
    """A log observer writing twistd's text lines to ``out``, cheaper."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.clock = _SecondClock()
        self.flush = _TurnFlush(out)

    def __call__(self, event: dict[str, Any]) -> None:
        text = classic_text(event, self.clock)
        if text:
            self.out.write(text)
            self.flush()


def text_observer_for(twistd_options: Any) -> TextLineObserver | None:
    """
    :param twistd_options: twistd's own options (the parent of rpoold's).
    :returns: a :class:`TextLineObserver` on stdout when twistd would log
        text to stdout (``--nodaemon``, no ``--logfile`` or ``--logfile=-``,
        no ``--syslog``, no ``--logger``); else ``None`` (twistd's own
        observer then writes where it was told to).
    """
    get = getattr(twistd_options, "get", None)
    if get is None:
        return None
    if get("logger") or get("syslog") or not get("nodaemon") or get("logfile") not in (None, "", "-"):
        return None
    return TextLineObserver(sys.stdout)


def event_as_json(event: dict[str, Any]) -> str:
    """:returns: one log event as one line of JSON (no newline)."""
    level = event.get("log_level")
    when = event.get("log_time")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
        if isinstance(when, (int, float)) else None,
        "level": getattr(level, "name", None) or ("error" if event.get("isError") else "info"),
        "namespace": event.get("log_namespace") or event.get("system"),
        "message": event_message(event),
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
        self.flush = _TurnFlush(out)

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = event_as_json(event)
        except Exception as e:  # a log line must never break the caller
            line = json.dumps({"level": "error", "message": f"unloggable event: {e!r}"})
        self.out.write(line + "\n")
        self.flush()


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
