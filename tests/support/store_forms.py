"""
The record store's three forms, for the family tests: each backend that
keeps records runs its family tests once per form (``memory:``, an SQLite
file, a Redis server), the harnesses named ``<backend>`` (memory),
``<backend>-sqlite`` and ``<backend>-redis``.

A Redis form shares one ``redis-server`` child for the session; each
environment or test uses a key prefix of its own.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from testbed.redis_server import RedisServer

#: The store forms, in the order their harnesses are registered.
FORMS = ("memory", "sqlite", "redis")

_prefixes = itertools.count(1)
_redis: RedisServer | None = None


def harness_name(backend: str, form: str) -> str:
    return backend if form == "memory" else f"{backend}-{form}"


def _redis_server() -> RedisServer:
    global _redis
    if _redis is None:
        _redis = RedisServer().start()
    return _redis


def store_url(form: str, directory: Path) -> str:
    """
    A ``[store] url`` of ``form``: a new SQLite file in ``directory``, or a
    fresh key prefix on the session's Redis.
    """
    if form == "memory":
        return "memory:"
    if form == "sqlite":
        return f"sqlite:///{directory / f'records-{next(_prefixes)}.db'}"
    return f"redis://127.0.0.1:{_redis_server().port}/0?prefix=family{next(_prefixes)}:"


def stop() -> None:
    """Stop the session's Redis, if one was started."""
    global _redis
    if _redis is not None:
        _redis.stop()
        _redis = None
