"""
``GET /docs`` (Swagger UI from the installed bundle), its assets under
``/docs/assets/``, and ``GET /``: public, whether authentication is on or
not, and nothing in them fetched from elsewhere.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted

from rpoold.auth import Authenticator, Role, hash_token
from rpoold.docs_page import BUNDLE_FILES
from testbed.http_api import Api
from tests.support.answers import error_of, expect
from tests.support.backends import mock_backend, serve_all

TOKEN = "docs-page-read-token"


def _api(secured: bool = False) -> Api:
    options = {}
    if secured:
        options["auth"] = Authenticator(enabled=True, tokens={hash_token(TOKEN): ("reader", Role.read)})
    return Api.in_memory(serve_all(mock_backend(), **options).resource())


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
@pytest_twisted.ensureDeferred
async def test_the_docs_page_and_its_assets_need_no_credentials(secured: bool) -> None:
    api = _api(secured)
    page = expect(await api.get("/docs"), 200)
    assert page.header("content-type") == "text/html; charset=utf-8"
    policy = page.header("content-security-policy") or ""
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    html = page.body.decode()
    assert 'id="swagger-ui"' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    for source in sources:
        asset = expect(await api.get(source), 200)
        assert asset.body, source
        assert asset.header("cache-control") == "public, max-age=3600"
    script = expect(await api.get("/docs/assets/swagger-ui-bundle.js"), 200)
    assert script.header("content-type") == "text/javascript; charset=utf-8"
    assert b"SwaggerUIBundle" in script.body
    init = expect(await api.get("/docs/assets/rpoold-docs.js"), 200)
    assert b'url: "/openapi.json"' in init.body
    expect(await api.get("/openapi.json"), 200)
    if secured:
        assert error_of(await api.get("/nodes"), 401)


@pytest_twisted.ensureDeferred
async def test_no_asset_is_fetched_from_elsewhere() -> None:
    """The page and its own script name no other host (the bundle's files are served as installed)."""
    api = _api()
    for path in ("/docs", "/docs/assets/rpoold-docs.js"):
        assert not re.search(rb"https?://", expect(await api.get(path), 200).body), path


@pytest.mark.parametrize("path", ["/docs/assets/index.html", "/docs/assets/..%2Fsetup.cfg",
                                  "/docs/assets/", "/docs/assets/swagger-ui.js.map", "/docs/"])
@pytest_twisted.ensureDeferred
async def test_only_the_viewers_files_are_served(path: str) -> None:
    reply = await _api().get(path)
    assert error_of(reply, 404) == "no such resource"
    assert reply.header("content-type") == "application/json"


def test_the_bundle_has_the_files_the_page_uses() -> None:
    from swagger_ui_bundle import swagger_ui_path

    for name in BUNDLE_FILES:
        assert (swagger_ui_path / name).is_file(), name


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
@pytest_twisted.ensureDeferred
async def test_the_root_is_a_json_index(secured: bool) -> None:
    reply = expect(await _api(secured).get("/"), 200)
    assert reply.header("content-type") == "application/json"
    assert reply.json() == {"name": "G8OS Resource Pool API (rpoold)", "openapi": "/openapi.json",
                            "docs": "/docs", "console": "/ui", "health": "/health", "metrics": "/metrics"}


@pytest_twisted.ensureDeferred
async def test_the_docs_page_answers_only_get() -> None:
    reply = await _api().request("POST", "/docs")
    assert error_of(reply, 405)
    assert reply.header("content-type") == "application/json"
