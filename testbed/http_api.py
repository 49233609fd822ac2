"""
An HTTP client of the API, for tests and benchmarks: one ``Reply``
whichever way it was asked.

Family tests talk to rpoold through an ``Api``: in memory (the real
``RpoolApi`` resource behind ``treq.testing``'s in-memory transport, no
socket) or over real HTTP to a base URL (a ``twistd rpoold`` child).
Either way a request goes through the whole twisted.web stack and answers a
``Reply``.

    api = Api.in_memory(RpoolApi(routing).resource())
    reply = await api.get("/nodes")
    assert reply.status == 200 and "525400123456" in [n["id"] for n in reply.json()]

Tests that drive a daemon from the test's own thread (no reactor: set-up
code, or many client threads at once) use the blocking ``call``:

    reply = call("http://127.0.0.1:8080", "GET", "/nodes")
"""

from __future__ import annotations

import http.client
import json as jsonlib
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import treq
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from rpoold.site import ApiRequest

#: How often an in-memory request is pumped while the server still works
#: on it (a backend waiting on a timer answers later).
PUMP_INTERVAL = 0.002


@dataclass(frozen=True)
class Reply:
    """
    One HTTP answer.

    :ivar status: the status code.
    :ivar headers: every header, names in lower case, values as sent.
    :ivar body: the whole body.
    """

    status: int
    headers: Mapping[str, tuple[str, ...]]
    body: bytes

    def header(self, name: str) -> str | None:
        """:returns: the (first) value of header ``name``, or ``None``."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        """:returns: the body decoded as JSON (fails the test if it is not)."""
        try:
            return jsonlib.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError(f"body is not JSON ({e}): {self.body[:300]!r}") from None

    def error(self) -> str:
        """
        :returns: the message of an ``{"error": ...}`` body, after checking
            that the answer is exactly that, as JSON.
        """
        assert self.header("content-type") == "application/json", self
        value = self.json()
        assert isinstance(value, dict) and list(value) == ["error"], value
        assert isinstance(value["error"], str) and value["error"], value
        return value["error"]

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.body[:500]!r}"


def call(
    base: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """
    One blocking request on a fresh connection, the whole answer read.

    :param base: e.g. ``http://127.0.0.1:8080``.
    :param path: absolute path below it; the other parameters as for
        ``Api.request`` (``query`` is its ``params``).
    :raises OSError: no connection, or no answer within ``timeout`` seconds.
    """
    parsed = urllib.parse.urlsplit(base)
    assert parsed.hostname, f"no host in {base!r}"
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    sent = dict(headers or {})
    if json is not None:
        assert body is None, "json= and body= are exclusive"
        body = jsonlib.dumps(json).encode()
        sent.setdefault("Content-Type", "application/json")
    if query:
        path += "?" + urllib.parse.urlencode(query)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    received: dict[str, tuple[str, ...]] = {}
    for name, value in response.getheaders():
        received[name.lower()] = (*received.get(name.lower(), ()), value)
    return Reply(status=response.status, headers=received, body=content)


def multipart_body(fields: Iterable[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """
    Encode ``multipart/form-data``.

    :param fields: ``(name, filename, content)`` per part.
    :returns: the body and its ``Content-Type`` header value.
    """
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, filename, content in fields:
        chunks.append(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        chunks.append(content)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class Api:
    """
    A client of one running API; build it with ``in_memory`` or ``over_http``.

    Every method is a coroutine; status codes are never raised, the test
    reads them from the ``Reply``.
    """

    def __init__(self, client: HTTPClient, base: str, pump: RequestTraversalAgent | None = None) -> None:
        self._client = client
        self._base = base.rstrip("/")
        self._pump = pump

    @classmethod
    def in_memory(cls, resource: Any) -> Api:
        """
        :param resource: the root resource, e.g. ``RpoolApi(...).resource()``.
        """
        agent = RequestTraversalAgent(resource)
        # Serve with the daemon's request class (uploads are parsed by the
        # route, not by twisted.web) and without tracebacks, as the daemon does.
        site = agent._serverFactory
        site.requestFactory = ApiRequest  # type: ignore[assignment]
        site.displayTracebacks = False
        client = HTTPClient(agent, data_to_body_producer=_BytesProducer)
        return cls(client, "http://rpoold.test", pump=agent)

    @classmethod
    def over_http(cls, base_url: str, reactor: Any = None) -> Api:
        """
        :param base_url: e.g. ``http://127.0.0.1:8080``.
        """
        reactor = reactor or global_reactor
        pool = HTTPConnectionPool(reactor, persistent=False)
        return cls(HTTPClient(Agent(reactor, pool=pool)), base_url)

    async def _settle(self, d: Deferred[Any]) -> Any:
        """Wait for ``d``; in memory, pump the connection until it fires."""
        if self._pump is None:
            return await d
        done: list[bool] = []

        def fired(result: Any) -> Any:
            done.append(True)
            return result

        # ``d.called`` is not enough: a Deferred may have fired with another
        # Deferred it now waits for.
        d.addBoth(fired)
        self._pump.flush()
        while not done:
            await deferLater(global_reactor, PUMP_INTERVAL, lambda: None)
            self._pump.flush()
        return await d

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """
        Send one request.

        :param path: absolute path below the API root, e.g. ``/nodes``.
        :param json: a value sent as a JSON body (``Content-Type:
            application/json``); mutually exclusive with ``body``.
        :param body: raw bytes sent as the body.
        :param headers: extra request headers.
        :param params: query parameters.
        """
        assert path.startswith("/"), path
        sent = Headers()
        if json is not None:
            assert body is None, "json= and body= are exclusive"
            body = jsonlib.dumps(json).encode()
            sent.setRawHeaders("Content-Type", ["application/json"])
        for name, value in (headers or {}).items():
            sent.setRawHeaders(name, [value])
        d = self._client.request(
            method, self._base + path, headers=sent, data=body, params=params or None,
        )
        response = await self._settle(d)
        content = await self._settle(treq.content(response))
        received = {
            name.decode("latin-1").lower(): tuple(v.decode("latin-1") for v in values)
            for name, values in response.headers.getAllRawHeaders()
        }
        return Reply(status=response.code, headers=received, body=content)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, json=json, **kwargs)

    async def put(self, path: str, json: Any = None, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, json=json, **kwargs)

    async def delete(self, path: str, json: Any = None, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, json=json, **kwargs)


@implementer(IBodyProducer)
class _BytesProducer:
    """Writes the whole body at once (in memory there is nothing to pace)."""

    def __init__(self, data: bytes) -> None:
        self.body = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def stopProducing(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass
