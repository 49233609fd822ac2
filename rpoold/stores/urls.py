"""
Which store holds the records: ``store.url`` read into a store object.

- ``memory:``: ``MemoryRecords`` (gone when the daemon stops);
- ``sqlite:///PATH``: ``SQLiteRecords`` on a file, ``PATH`` relative to
  the configuration file's directory; ``sqlite:////abs/path`` absolute;
- ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout=S]``:
  ``RedisRecords`` (port 6379, database 0, prefix ``rpoold:``, timeout 3 s
  when not given; the password percent-encoded).

The Redis store's module (which imports txredisapi) is imported only when
the URL names Redis.
"""

from __future__ import annotations

import math
import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from rpoold.records import IRecords, MemoryRecords

#: What each form looks like, for messages.
FORMS = "memory:, sqlite:///PATH, redis://[:PASSWORD@]HOST:PORT/DB"

#: The query parameters of a Redis URL.
REDIS_PARAMETERS = ("prefix", "timeout")

DEFAULT_REDIS_PORT = 6379
DEFAULT_REDIS_TIMEOUT = 3.0


def open_store(url: str, config_dir: str, reactor: Any) -> IRecords:
    """
    The store ``url`` names, not opened yet (call its ``open``).

    :param config_dir: what a relative SQLite path is relative to.
    :param reactor: the store's reactor.
    :raises ValueError: the URL is not one of the forms; the message says
        what is wrong with it (and never holds a password).
    """
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "memory":
        if url.lower() != "memory:":
            raise ValueError(f"'memory:' takes nothing after the colon, got {url!r}")
        return MemoryRecords()
    if scheme == "sqlite":
        from rpoold.stores.sqlite import SQLiteRecords

        return SQLiteRecords(sqlite_path(url, config_dir), reactor)
    if scheme == "redis":
        from rpoold.stores.redis import RedisRecords

        return RedisRecords(reactor=reactor, **redis_options(url))
    shown = _without_password(url)
    if not scheme:
        raise ValueError(f"{shown!r} names no kind of store (one of {FORMS})")
    raise ValueError(f"unknown kind of store {scheme!r} in {shown!r} (one of {FORMS})")


def sqlite_path(url: str, config_dir: str) -> str:
    """
    :returns: the file a ``sqlite:///PATH`` URL names.
    :raises ValueError: it names a host, a query, or no path.
    """
    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(f"{url!r}: an SQLite URL names no host ({parts.netloc!r}): sqlite:///PATH")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: an SQLite URL takes no query or fragment")
    if not parts.path.startswith("/") or parts.path == "/":
        raise ValueError(f"{url!r}: no file named: sqlite:///PATH (relative) or sqlite:////PATH (absolute)")
    path = unquote(parts.path[1:])
    if path.endswith("/"):
        raise ValueError(f"{url!r}: names a directory, not a file")
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(config_dir, path))


def redis_options(url: str) -> dict[str, Any]:
    """
    :returns: ``RedisRecords``' arguments from a ``redis://`` URL.
    :raises ValueError: a part of it is wrong (the message names it).
    """
    shown = _without_password(url)
    parts = urlsplit(url)
    if parts.fragment:
        raise ValueError(f"{shown!r}: a Redis URL takes no fragment")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ValueError(f"{shown!r}: bad port ({e})") from None
    if not host:
        raise ValueError(f"{shown!r}: no host: redis://HOST:PORT/DB")
    db_text = parts.path.lstrip("/")
    if not db_text:
        db = 0
    elif db_text.isdigit():
        db = int(db_text)
    else:
        raise ValueError(f"{shown!r}: the database is a number, not {db_text!r}")
    options: dict[str, Any] = {
        "host": host,
        "port": port if port is not None else DEFAULT_REDIS_PORT,
        "db": db,
        "password": unquote(parts.password) if parts.password else None,
        "username": unquote(parts.username) if parts.username else None,
    }
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(REDIS_PARAMETERS))
    if unknown:
        raise ValueError(f"{shown!r}: unknown parameter(s) {', '.join(unknown)} "
                         f"(known: {', '.join(REDIS_PARAMETERS)})")
    for name, values in query.items():
        if len(values) > 1:
            raise ValueError(f"{shown!r}: parameter {name} given {len(values)} times")
    options["prefix"] = query["prefix"][0] if "prefix" in query else "rpoold:"
    if "timeout" in query:
        text = query["timeout"][0]
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"{shown!r}: timeout is a number of seconds, not {text!r}") from None
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"{shown!r}: timeout must be more than 0 seconds, not {text!r}")
        options["timeout"] = timeout
    else:
        options["timeout"] = DEFAULT_REDIS_TIMEOUT
    return options


def _without_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
