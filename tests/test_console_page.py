"""
``GET /ui`` (the console) in memory: the page and every module it imports
are served from the package under a policy that allows no inline script
or style; only the console's own files are served; ``/ui/session`` says
who the credentials are, or 401.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted

from rpoold.auth import Authenticator, Role, hash_token
from rpoold.console_page import DIRECTORY
from testbed.http_api import Api
from tests.support.answers import error_of, expect
from tests.support.backends import mock_backend, serve_all

TOKEN = "console-page-operate-token"


def _api(secured: bool = False) -> Api:
    options = {}
    if secured:
        options["auth"] = Authenticator(enabled=True, tokens={hash_token(TOKEN): ("ops", Role.operate)})
    return Api.in_memory(serve_all(mock_backend(), **options).resource())


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
@pytest_twisted.ensureDeferred
async def test_the_page_and_every_module_it_imports_are_served_without_credentials(secured: bool) -> None:
    api = _api(secured)
    page = expect(await api.get("/ui"), 200)
    assert page.header("content-type") == "text/html; charset=utf-8"
    policy = page.header("content-security-policy") or ""
    assert "default-src 'none'" in policy and "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe" not in policy
    html = page.body.decode()
    assert "<script>" not in html and "style=" not in html
    sources = re.findall(r'(?:src|href)="(/ui/[^"]+)"', html)
    assert "/ui/assets/main.js" in sources and "/ui/assets/console.css" in sources
    seen: set[str] = set()
    while sources:
        source = sources.pop()
        if source in seen:
            continue
        seen.add(source)
        asset = expect(await api.get(source), 200)
        assert asset.header("x-content-type-options") == "nosniff"
        if source.endswith(".js"):
            assert asset.header("content-type") == "text/javascript; charset=utf-8"
            imported = re.findall(r'^import [^;]+ from "\./([a-z-]+\.js)";', asset.body.decode(), re.M)
            sources += [f"/ui/assets/{name}" for name in imported]
    # Every module of the package is reached from the page.
    assert {f"/ui/assets/{p.name}" for p in DIRECTORY.glob("*.js")} <= seen


@pytest.mark.parametrize("path", ["/ui/assets/index.html", "/ui/assets/nothing.js", "/ui/assets/..%2Fapp.py",
                                  "/ui/assets/Main.js", "/ui/assets/"])
@pytest_twisted.ensureDeferred
async def test_only_the_console_files_are_served(path: str) -> None:
    assert error_of(await _api().get(path), 404)


@pytest_twisted.ensureDeferred
async def test_the_session_says_who_the_token_is() -> None:
    open_api = _api()
    assert expect(await open_api.get("/ui/session"), 200).json() == {
        "auth": False, "subject": "anonymous", "role": "admin"}
    api = _api(secured=True)
    assert "authentication required" in error_of(await api.get("/ui/session"), 401)
    assert error_of(await api.get("/ui/session", headers={"Authorization": "Bearer wrong"}), 401)
    session = expect(await api.get("/ui/session", headers={"Authorization": f"Bearer {TOKEN}"}), 200)
    assert session.json() == {"auth": True, "subject": "ops", "role": "operate"}
    assert session.header("cache-control") == "no-store"
