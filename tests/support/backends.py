"""
The backends family tests run against, and how to reach each.

A family test module says which family it tests::

    FAMILY = "containers"            # or a tuple of family names

and takes the ``api`` fixture.  ``tests/conftest.py`` then runs each of its
tests once per registered ``Harness`` that serves every family named (test
ids ``[mock]``, ``[core0]``, ...).  ``RPOOLD_TEST_BACKENDS=mock,core0``
restricts the run to those harnesses.  A single test may name other families
with ``@pytest.mark.families("node_info")``.

A harness is a name, the families its backend serves, and ``open()``: an
async context manager yielding an ``Api`` to an rpoold serving those
families.  ``open()`` is entered once per test; it may hand out a fresh
backend each time (the mock) or reuse one environment for the whole session
(simulators in child processes), in which case ``close`` stops it at the end
of the session.  A harness module registers its harness at import time and
is listed in ``HARNESS_MODULES`` of ``tests/conftest.py``.

Family tests therefore assume a backend that other tests also used: they
create things under unique names (``unique("ct")``), remove what they
created, never expect a list to hold only their own things, and only rely on
the shared seed: node ``525400123456`` (hostname ``core0node``) with its
running container ``vfw_21`` and that container's job
``f3976780-f369-45df-ab54-206149dc000e``, and node ``525400123457``.

Behaviour that legitimately differs between backends is declared once, in
``DIFFERENCES``, and tests ask ``harness.differs(key)``; nothing is skipped
silently.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from zope.interface import implementer

from rpoold.app import RpoolApi
from rpoold.interfaces import FAMILIES, FAMILIES_BY_NAME, IBackendContext
from rpoold.records import IRecords, MemoryRecords, ScopedRecords
from testbed.http_api import Api
from tests.support import store_forms

ALL_FAMILIES: frozenset[str] = frozenset(FAMILIES_BY_NAME)

SEED_NODE = "525400123456"
SEED_HOSTNAME = "core0node"
SECOND_NODE = "525400123457"
SEED_CONTAINER = "vfw_21"
SEED_JOB = "f3976780-f369-45df-ab54-206149dc000e"
SEED_JOB_START = 1491984742526
SEED_FLIST = (
    "http://192.168.20.132:8080/deboeckj/lede-17.01.0-r3205-59508e3-x86-64-generic-rootfs.flist"
)

#: Behaviour that differs between backends, by key: the harnesses that
#: differ and why.  Tests branch on ``harness.differs(key)``.
DIFFERENCES: dict[str, dict[str, str]] = {
    "vdisk_rollback_status": {
        "ays": "the AYS vdisk template's rollback action ends with status 'running', "
               "whatever the status was before",
    },
    "names_unique_across_nodes": {
        "ays": "AYS names services per repository: a bridge, storage pool, filesystem or "
               "snapshot name taken on one node (or pool) is taken everywhere (409)",
    },
    "container_nic_hwaddr": {
        "ays": "the AYS container template has no NIC hwaddr: it is not sent to AYS and "
               "GET does not show it (ays-api.md Q9)",
    },
}


@dataclass(frozen=True)
class Harness:
    """
    How to reach rpoold on one backend.

    :ivar name: short name, used in test ids and ``RPOOLD_TEST_BACKENDS``.
    :ivar families: the families its backend serves.
    :ivar open: returns an async context manager yielding an ``Api``.
    :ivar patience: seconds a test waits for something that takes time on
        this backend (a reboot, a VM state change) before it fails.
    :ivar fresh: whether every ``open()`` gives a backend of its own, so a
        test may do what would disturb other tests (delete a seed node).
    :ivar close: called once at the end of the session (stop what ``open``
        started and kept).
    """

    name: str
    families: frozenset[str]
    open: Callable[[], AbstractAsyncContextManager[Api]]
    patience: float = 10.0
    fresh: bool = False
    close: Callable[[], None] | None = field(default=None, compare=False)

    def serves(self, families: frozenset[str]) -> bool:
        return families <= self.families

    def differs(self, key: str) -> bool:
        """:returns: whether this backend behaves differently for ``key``."""
        if key not in DIFFERENCES:
            raise KeyError(f"no documented difference '{key}' in tests/support/backends.py")
        return self.name in DIFFERENCES[key]

    def __str__(self) -> str:
        return self.name


#: Every registered harness, by name, in registration order.
HARNESSES: dict[str, Harness] = {}


def register(harness: Harness) -> Harness:
    """Make ``harness`` available to family tests."""
    unknown = harness.families - ALL_FAMILIES
    if unknown:
        raise ValueError(f"harness '{harness.name}' names unknown families: {sorted(unknown)}")
    if harness.name in HARNESSES:
        raise ValueError(f"harness '{harness.name}' is registered twice")
    HARNESSES[harness.name] = harness
    return harness


class Environment(Protocol):
    """Processes serving rpoold at ``url`` until ``stop()``."""

    url: str

    def stop(self) -> None: ...


E = TypeVar("E", bound=Environment)


class Shared(Generic[E]):
    """
    One environment for the whole session, started by ``start`` on first
    use: ``open`` and ``close`` are a harness's.
    """

    def __init__(self, start: Callable[[], E]) -> None:
        self._start = start
        self._environment: E | None = None

    def get(self) -> E:
        if self._environment is None:
            self._environment = self._start()
        return self._environment

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Api]:
        yield Api.over_http(self.get().url)

    def close(self) -> None:
        if self._environment is not None:
            self._environment.stop()
            self._environment = None


def unique(prefix: str) -> str:
    """A name no other test uses (servicename characters only)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# The mock, in memory ------------------------------------------------------------

#: Short timings so that reboots and VM transitions pass quickly.
MOCK_OPTIONS: dict[str, Any] = {"nodes": 2, "reboot_seconds": 0.2, "transition_seconds": 0.05}


@implementer(IBackendContext)
class _Context:
    def __init__(self, reactor: Any, records: IRecords | None = None) -> None:
        self.reactor = reactor
        self.config_dir = "."
        self.records = records if records is not None else MemoryRecords()

    def backend(self, name: str) -> Any:
        raise LookupError(f"no backend instance '{name}' in tests")


def mock_backend(options: dict[str, Any] | None = None, reactor: Any = None,
                 records: IRecords | None = None) -> Any:
    """A fresh ``MockBackend`` (seeded pool) on ``reactor``, its records in ``records`` (memory)."""
    from plugins.poolsim.mock import mock_backend as make

    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return make({**MOCK_OPTIONS, **(options or {})}, _Context(reactor, records))


def serve_all(backend: Any, **api_options: Any) -> RpoolApi:
    """An ``RpoolApi`` whose every family is served by ``backend``."""
    return RpoolApi({f.name: backend for f in FAMILIES}, **api_options)


def _mock_on(form: str) -> Callable[[], AbstractAsyncContextManager[Api]]:
    @asynccontextmanager
    async def open_mock() -> AsyncIterator[Api]:
        from twisted.internet import reactor

        from rpoold.stores import open_store

        with tempfile.TemporaryDirectory(prefix="rpoold-records-") as directory:
            store = open_store(store_forms.store_url(form, Path(directory)), ".", reactor)
            await store.open()
            try:
                backend = mock_backend(records=ScopedRecords(store, "mock"))
                yield Api.in_memory(serve_all(backend).resource())
            finally:
                await store.close()

    return open_mock


#: The mock on each store form (``mock`` keeps its records in memory); a
#: fresh pool and store for every test.
MOCK, MOCK_SQLITE, MOCK_REDIS = (
    register(Harness(name=store_forms.harness_name("mock", form), families=ALL_FAMILIES,
                     open=_mock_on(form), patience=5.0, fresh=True,
                     close=store_forms.stop if form == "redis" else None))
    for form in store_forms.FORMS)
