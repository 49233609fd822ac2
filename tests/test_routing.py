"""
The compiled routes (``rpoold.routing``) choose what werkzeug chooses, on
every rule of the app: the same endpoint, or Klein's own routing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from rpoold.app import RpoolApi
from rpoold.routing import CompiledRoutes

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


def _compiled() -> tuple[CompiledRoutes, dict[int, str]]:
    app = RpoolApi.app
    names: dict[int, str] = {}

    def handler_of(endpoint: str) -> Any:
        if getattr(app.endpoints.get(endpoint), "operation_route", None) is None:
            return None

        def handle(request: Any, params: dict[str, str]) -> None:
            return None

        names[id(handle)] = endpoint
        return handle

    return CompiledRoutes(app, handler_of), names


def _werkzeug(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    adapter = RpoolApi.app.url_map.bind("localhost", "", path_info=path, default_method=method)
    try:
        endpoint, params = adapter.match(method=method)
    except (NotFound, MethodNotAllowed):
        return None
    except Exception:  # a redirect (trailing slash)
        return None
    return endpoint, params


def _sample_paths() -> list[str]:
    paths = []
    for rule in RpoolApi.app.url_map.iter_rules():
        for value in ("a1", "mem", "containers", "0"):
            paths.append(re.sub(r"<\w+>", value, rule.rule))
    paths += ["/", "/nodes", "/nodes/", "/nodes/a/b/c/d/e/f", "/health", "/metrics", "/openapi.json"]
    return sorted(set(paths))


@pytest.mark.parametrize("method", METHODS)
def test_same_choice_as_werkzeug(method: str) -> None:
    routes, names = _compiled()
    for path in _sample_paths():
        segments = path[1:].split("/")  # as twisted.web's postpath
        found = routes.match(method, segments) if all(segments) else None
        expected = _werkzeug(method, path)
        if found is None:
            # Klein routes it: werkzeug must then not pick a contract route
            # the tree would have served.
            if expected is not None:
                endpoint = RpoolApi.app.endpoints[expected[0]]
                assert getattr(endpoint, "operation_route", None) is None, (method, path)
            continue
        assert expected is not None, (method, path)
        assert names[id(found[0])] == expected[0], (method, path)
        assert found[1] == expected[1], (method, path)


def test_every_contract_route_is_compiled() -> None:
    routes, names = _compiled()
    for rule in RpoolApi.app.url_map.iter_rules():
        if getattr(RpoolApi.app.endpoints[rule.endpoint], "operation_route", None) is None:
            continue
        path = re.sub(r"<\w+>", "x1", rule.rule)
        for method in rule.methods:
            found = routes.match(method, path[1:].split("/"))
            assert found is not None and names[id(found[0])] == rule.endpoint, (method, rule.rule)


class _Waiting:
    """A node_info backend whose ``get_mem_info`` never answers (and says when cancelled)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def get_mem_info(self, nodeid: str) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred(lambda _: self.cancelled.append(nodeid))


def _connection(api: RpoolApi) -> tuple[Any, Any]:
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from rpoold.site import ApiSite

    site = ApiSite(api.resource(), access_log=False)
    peer = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = site.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer, hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    channel.makeConnection(transport)
    return channel, transport


def test_a_client_that_goes_away_cancels_the_backend_call() -> None:
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    backend = _Waiting()
    api = RpoolApi({"node_info": backend})
    channel, transport = _connection(api)
    channel.dataReceived(b"GET /nodes/n1/mem HTTP/1.1\r\nHost: x\r\n\r\n")
    assert backend.cancelled == []
    channel.connectionLost(Failure(ConnectionDone()))
    assert backend.cancelled == ["n1"]
    assert transport.value() == b""
    assert len(api.deadlines) == 0


def test_compiled_and_klein_routes_answer_alike() -> None:
    """A contract route (compiled), a wrong method and an unknown path (Klein's)."""
    from twisted.internet.defer import succeed

    class Mem:
        def get_mem_info(self, nodeid: str) -> Any:
            return succeed({"total": 1})

    api = RpoolApi({"node_info": Mem()})
    channel, transport = _connection(api)
    channel.dataReceived(b"GET /nodes/n1/mem HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b'"total": 1' in body
    transport.clear()
    channel.dataReceived(b"DELETE /nodes/n1/mem HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"Allow: " in head
    assert body == b'{"error": "method DELETE is not allowed here"}'
    transport.clear()
    channel.dataReceived(b"GET /nodes/n1/mem/ HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ") and body == b'{"error": "no such resource"}'
