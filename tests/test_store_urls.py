"""
``store.url``: what ``open_store`` builds from each form of URL, and the
one-line ``ValueError`` for each kind of mistake (never showing a password).
"""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from rpoold.records import MemoryRecords
from rpoold.stores import open_store
from rpoold.stores.redis import RedisRecords
from rpoold.stores.sqlite import SQLiteRecords


def test_memory() -> None:
    assert isinstance(open_store("memory:", "/etc/rpoold", reactor), MemoryRecords)


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///records.db", "/etc/rpoold/records.db"),
    ("sqlite:///state/records.db", "/etc/rpoold/state/records.db"),
    ("sqlite:///../state/records.db", "/etc/state/records.db"),
    ("sqlite:////var/lib/rpoold/records.db", "/var/lib/rpoold/records.db"),
    ("sqlite:///my%20records.db", "/etc/rpoold/my records.db"),
])
def test_sqlite_paths(url: str, path: str) -> None:
    store = open_store(url, "/etc/rpoold", reactor)
    assert isinstance(store, SQLiteRecords)
    assert store.path == path


def test_redis_defaults() -> None:
    store = open_store("redis://redis.example", "/etc/rpoold", reactor)
    assert isinstance(store, RedisRecords)
    assert (store.host, store.port, store.db, store.prefix, store.timeout) == (
        "redis.example", 6379, 0, "rpoold:", 3.0)
    assert store.where == "redis://redis.example:6379/0"


def test_redis_everything() -> None:
    store = open_store("redis://:p%40ss@10.0.0.5:6380/4?prefix=pool-a:&timeout=1.5", "/", reactor)
    assert isinstance(store, RedisRecords)
    assert (store.host, store.port, store.db, store.prefix, store.timeout) == (
        "10.0.0.5", 6380, 4, "pool-a:", 1.5)
    assert store._password == "p@ss" and store._username is None
    assert "p@ss" not in store.where and "p%40ss" not in store.where
    with_user = open_store("redis://rpoold:secret@[::1]:6379/0", "/", reactor)
    assert isinstance(with_user, RedisRecords)
    assert (with_user.host, with_user._username, with_user._password) == ("::1", "rpoold", "secret")
    assert with_user.where == "redis://[::1]:6379/0"


@pytest.mark.parametrize(("url", "complaint"), [
    ("", "names no kind of store"),
    ("records.db", "names no kind of store"),
    ("postgres://db/records", "unknown kind of store 'postgres'"),
    ("memory:yes", "takes nothing after the colon"),
    ("sqlite://host/records.db", "names no host"),
    ("sqlite:///", "no file named"),
    ("sqlite:", "no file named"),
    ("sqlite:records.db", "no file named"),
    ("sqlite:///state/", "names a directory"),
    ("sqlite:///records.db?mode=ro", "no query"),
    ("redis://", "no host"),
    ("redis://:6379/0", "no host"),
    ("redis://h:port/0", "bad port"),
    ("redis://h:99999/0", "bad port"),
    ("redis://h:6379/zero", "database is a number, not 'zero'"),
    ("redis://h:6379/-1", "database is a number"),
    ("redis://h:6379/0?prefix=a&colour=red", "unknown parameter(s) colour (known: prefix, timeout)"),
    ("redis://h:6379/0?timeout=soon", "timeout is a number of seconds, not 'soon'"),
    ("redis://h:6379/0?timeout=0", "timeout must be more than 0"),
    ("redis://h:6379/0?timeout=inf", "timeout must be more than 0"),
    ("redis://h:6379/0?prefix=a&prefix=b", "parameter prefix given 2 times"),
])
def test_bad_urls(url: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url, "/etc/rpoold", reactor)
    assert complaint in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_url_does_not_show_its_password() -> None:
    with pytest.raises(ValueError) as caught:
        open_store("redis://:hunter2@h:6379/x", "/", reactor)
    assert "hunter2" not in str(caught.value) and ":***@h:6379" in str(caught.value)
    with pytest.raises(ValueError) as caught:
        open_store("rediss://:hunter2@h:6379/0", "/", reactor)
    assert "hunter2" not in str(caught.value)
