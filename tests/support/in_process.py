"""
The real ``RpoolApi`` served over real HTTP on a loopback port of the test's
own process: what a test then reaches through the socket is the daemon's
whole HTTP stack (the ``ApiSite``, its requests, streaming, back-pressure),
and what it reaches in memory is the same app (its hub, its operations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet import reactor

from rpoold.app import RpoolApi
from rpoold.events import EventSettings
from rpoold.interfaces import FAMILIES
from rpoold.operations import Settings
from rpoold.records import MemoryRecords
from rpoold.site import ApiSite
from tests.support.backends import mock_backend


def mock_app(store: Any = None, *, operations: Settings | None = None,
             events: EventSettings | None = None, backend: Any = None, **options: Any) -> RpoolApi:
    """An app with every family on a fresh mock, its operations and events in ``store`` (memory)."""
    store = store if store is not None else MemoryRecords()
    backend = backend if backend is not None else mock_backend()
    return RpoolApi({f.name: backend for f in FAMILIES}, store=store, operation_settings=operations,
                    event_settings=events, instances={"mock": ("mock", backend)}, **options)


@asynccontextmanager
async def serving(api: RpoolApi) -> AsyncIterator[str]:
    """
    Serve ``api`` on a free loopback port, its events and operations
    started as the daemon starts them; stop it all at the end.

    :returns: the base URL.
    """
    site = ApiSite(api.resource(), access_log=False)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    for part in api.long.services:
        part.startService()
    try:
        yield f"http://127.0.0.1:{port.getHost().port}"
    finally:
        api.long.close_streams("the test is over")
        for part in reversed(api.long.services):
            await part.stopService()
        await port.stopListening()
        for channel in list(site.tracker.channels):
            transport = getattr(channel, "transport", None)
            if transport is not None:
                transport.abortConnection()
