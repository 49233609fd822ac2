"""
Cross-origin requests (``[server] cors_origins``, ``rpoold.cors``): off by
default; when on, allowed origins get the CORS headers on every answer
(errors and ``/openapi.json`` included) and their preflights a 204, other
origins nothing.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from rpoold.auth import Authenticator, Role, hash_token
from testbed.http_api import Api, call
from testbed.mock_pool import MOCK_CONFIG
from testbed.twistd import start_rpoold
from tests.support.answers import error_of, expect
from tests.support.backends import mock_backend, serve_all

ALLOWED = "https://ui.example.org"
OTHER = "https://elsewhere.example.org"
NODE = "525400123456"
TOKEN = "cors-read-token"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age")


def _api(origins: tuple[str, ...] = (), **options: Any) -> Api:
    return Api.in_memory(serve_all(mock_backend(), cors_origins=origins, **options).resource())


def _preflight(api: Api, origin: str, path: str = "/nodes", method: str = "DELETE") -> Any:
    return api.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})


def _no_cors(reply: Any) -> None:
    for name in CORS_HEADERS:
        assert reply.header(name) is None, (name, reply)


@pytest_twisted.ensureDeferred
async def test_off_by_default() -> None:
    """No origin is allowed: no CORS header, and a preflight is the 405 of any OPTIONS."""
    api = _api()
    for path in ("/nodes", "/openapi.json", "/nodes/nope"):
        reply = await api.request("GET", path, headers={"Origin": ALLOWED})
        _no_cors(reply)
        assert reply.header("vary") is None
    preflight = await _preflight(api, ALLOWED)
    assert error_of(preflight, 405)
    _no_cors(preflight)


@pytest.mark.parametrize("path", ["/nodes", f"/nodes/{NODE}/mem", "/openapi.json", "/docs", "/health"])
@pytest_twisted.ensureDeferred
async def test_an_allowed_origin_may_read_answers(path: str) -> None:
    reply = expect(await _api((ALLOWED,)).request("GET", path, headers={"Origin": ALLOWED}), 200)
    assert reply.header("access-control-allow-origin") == ALLOWED
    assert "Location" in (reply.header("access-control-expose-headers") or "")
    assert "Origin" in (reply.header("vary") or "")
    assert reply.header("access-control-allow-credentials") is None


@pytest_twisted.ensureDeferred
async def test_error_answers_carry_the_headers_too() -> None:
    """404 (unknown node, unknown path), 405, 400 and 401 are readable by the allowed page."""
    secured = _api((ALLOWED,), auth=Authenticator(enabled=True, tokens={hash_token(TOKEN): ("r", Role.read)}))
    headers = {"Origin": ALLOWED, "Authorization": f"Bearer {TOKEN}"}
    answers = [
        (await secured.request("GET", "/nodes/nobody", headers=headers), 404),
        (await secured.request("GET", "/no/such/path", headers=headers), 404),
        (await secured.request("PUT", "/nodes", headers=headers), 405),
        (await secured.request("POST", f"/nodes/{NODE}/bridges", body=b"{", headers=headers), 403),
        (await secured.request("GET", "/nodes", headers={"Origin": ALLOWED}), 401),
    ]
    plain = _api((ALLOWED,))
    bad_json = {"Origin": ALLOWED, "Content-Type": "application/json"}
    answers.append((await plain.request("POST", f"/nodes/{NODE}/bridges", body=b"{", headers=bad_json), 400))
    for reply, status in answers:
        assert error_of(reply, status)
        assert reply.header("access-control-allow-origin") == ALLOWED, reply
    assert "WWW-Authenticate" in (answers[4][0].header("access-control-expose-headers") or "")


@pytest_twisted.ensureDeferred
async def test_an_allowed_preflight_is_answered_before_any_route() -> None:
    api = _api((OTHER, ALLOWED))
    for path, method in (("/nodes", "GET"), (f"/nodes/{NODE}/containers/vfw_21", "DELETE"),
                         ("/no/such/path", "POST")):
        reply = await _preflight(api, ALLOWED, path, method)
        assert reply.status == 204, reply
        assert reply.body == b""
        assert reply.header("content-type") is None
        assert reply.header("access-control-allow-origin") == ALLOWED
        assert set((reply.header("access-control-allow-methods") or "").split(", ")) == {
            "GET", "POST", "PUT", "DELETE"}
        allowed_headers = (reply.header("access-control-allow-headers") or "").lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert reply.header("access-control-max-age") == "600"
    # The preflight did nothing: the container is still there.
    expect(await api.get(f"/nodes/{NODE}/containers/vfw_21"), 200)


@pytest_twisted.ensureDeferred
async def test_other_origins_get_nothing() -> None:
    api = _api((ALLOWED,))
    for origin in (OTHER, "https://ui.example.org.evil.example", "null", ALLOWED + ":8443"):
        reply = expect(await api.request("GET", "/nodes", headers={"Origin": origin}), 200)
        _no_cors(reply)
        preflight = await _preflight(api, origin)
        assert error_of(preflight, 405)
        _no_cors(preflight)
    # A request without Origin (not from a browser page) is answered as ever.
    _no_cors(expect(await api.get("/nodes"), 200))


@pytest_twisted.ensureDeferred
async def test_origins_compare_without_case_and_star_allows_any() -> None:
    reply = await _api((ALLOWED,)).request("GET", "/nodes", headers={"Origin": ALLOWED.upper()})
    assert reply.header("access-control-allow-origin") == ALLOWED.upper()
    anyone = _api(("*",))
    reply = await anyone.request("GET", "/nodes", headers={"Origin": OTHER})
    assert reply.header("access-control-allow-origin") == OTHER
    assert (await _preflight(anyone, OTHER)).status == 204


def test_a_live_daemon_configured_with_cors_origins(tmp_path: Path) -> None:
    """``[server] cors_origins`` in ``twistd rpoold``: a preflight, an answer, the 413 the site writes."""
    config = tmp_path / "rpoold.toml"
    config.write_text(MOCK_CONFIG + f'\n[server]\ncors_origins = ["{ALLOWED}"]\nmax_body_bytes = 1024\n')
    child, base = start_rpoold(str(config))
    try:
        preflight = call(base, "OPTIONS", "/nodes", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
        assert preflight.status == 204
        assert preflight.header("access-control-allow-origin") == ALLOWED
        answer = call(base, "GET", "/openapi.json", headers={"Origin": ALLOWED})
        assert answer.status == 200 and answer.header("access-control-allow-origin") == ALLOWED
        _no_cors(call(base, "GET", "/openapi.json", headers={"Origin": OTHER}))
        for origin, expected in ((ALLOWED, ALLOWED), (OTHER, None)):
            port = int(base.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(f"POST /nodes/{NODE}/bridges HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n"
                             f"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n".encode())
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(65536)
                    assert chunk, head
                    head += chunk
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            assert lines[0].split()[1] == "413"
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            assert headers.get("access-control-allow-origin") == expected, headers
    finally:
        child.stop()
