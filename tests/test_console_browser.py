"""
``/ui`` in a real browser: Debian's headless Chromium driven by selenium
(as ``tests/test_docs_browser.py``), against live daemons.

On the mock: the pool page shows every node; a container created from the
node page appears there and on the pool page without a reload; a
process's output follows live on the container page, and a job is killed
from it; a VM is paused, resumed, stopped and started from its node's
page; a tile shows its node's CPUs and agent CPU; a ``read`` token sees no
action button (for containers nor VMs) and a forged write with it is
refused (403).  On
core0 with core0sim: stopping a node's redis-server (SIGSTOP) turns its
tile unreachable without a reload.  Screenshots of the pages go to
``screenshots/`` under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpoold.auth import Role, hash_token
from testbed.core0sim import Core0Sim
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child
from testbed.twistd import start_rpoold
from tests.support.backends import unique
from tests.support.browser import headless_browser

WAIT = 60
NODE = "525400123456"
READ_TOKEN = "console-read-token"
ADMIN_TOKEN = "console-admin-token"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("mock") / "rpoold.toml"
    config.write_text(MOCK_CONFIG)
    child, url = start_rpoold(str(config))
    try:
        yield url
    finally:
        child.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("secured") / "rpoold.toml"
    tokens = "".join(
        f'[[auth.tokens]]\nname = "{role.name}"\nsha256 = "{hash_token(token)}"\nrole = "{role.name}"\n\n'
        for role, token in ((Role.read, READ_TOKEN), (Role.admin, ADMIN_TOKEN)))
    config.write_text(MOCK_CONFIG + "\n[auth]\nenabled = true\n\n" + tokens)
    child, url = start_rpoold(str(config))
    try:
        yield url
    finally:
        child.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_browser(tmp_path / "profile") as driver:
        yield driver


def _wait(browser: Any, what: Any, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(what)


def _css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def _tile_text(browser: Any, node: str) -> str:
    found = _css(browser, f'li.tile[data-node="{node}"]')
    # As shown (innerText), in lower case (the status is shown in capitals).
    return str(found[0].get_attribute("innerText") or "").lower() if found else ""


def _click(browser: Any, selector: str) -> None:
    """Wait for the element and click it, found and clicked in one step (the tables are redrawn on events)."""
    _wait(browser, lambda b: b.execute_script(
        "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;", selector))


def _rows(browser: Any) -> list[str]:
    """The text of every table row, read at once (the tables are redrawn on events)."""
    return list(browser.execute_script(
        "return [...document.querySelectorAll('table tbody tr')].map((r) => r.innerText);"))


def _no_errors(browser: Any) -> None:
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def _api(url: str, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_the_page_is_public_with_a_strict_policy(mock: str) -> None:
    with urllib.request.urlopen(f"{mock}/ui", timeout=10) as answer:
        policy = answer.headers["Content-Security-Policy"]
        assert answer.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    status, body = _api(mock, "GET", "/ui/assets/nothing.js")
    assert status == 404 and body == {"error": "no such resource"}
    status, body = _api(mock, "GET", "/ui/session")
    assert status == 200 and body["role"] == "admin" and body["auth"] is False


def test_the_pool_page_shows_every_node_and_a_created_container_appears(
        mock: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _, nodes = _api(mock, "GET", "/nodes")
    assert len(nodes) == 2
    browser.get(f"{mock}/ui")
    _wait(browser, lambda b: len(_css(b, "li.tile")) == len(nodes) and
          _css(b, "#stream-state")[0].get_attribute("data-state") == "open")
    assert {t.get_attribute("data-node") for t in _css(browser, "li.tile")} == {n["id"] for n in nodes}
    _wait(browser, lambda b: "memory " in _tile_text(b, NODE) and "%" in _tile_text(b, NODE))
    # Its CPUs (as many as the API lists) and the core0 agent's CPU figure.
    _, cpus = _api(mock, "GET", f"/nodes/{NODE}/cpus")
    _wait(browser, lambda b: re.search(rf"cpu: {len(cpus)} cpus · agent [0-9.]+%", _tile_text(b, NODE)))
    before = _tile_text(browser, NODE)
    count = int(before.split(" containers")[0].rsplit("\n", 1)[-1])
    assert "unreachable" not in before
    browser.save_screenshot(str(shots / "pool.png"))

    # The node page: create a container from it (an operation), see it listed.
    browser.find_element(By.CSS_SELECTOR, f'li.tile[data-node="{NODE}"] a').click()
    _wait(browser, lambda b: _css(b, "#create-container"))
    browser.find_element(By.ID, "new-name").send_keys("from_console")
    browser.find_element(By.CSS_SELECTOR, "#create-container button[type=submit]").click()
    _wait(browser, lambda b: _css(b, "#op-status")[0].get_attribute("data-status") in ("succeeded", "failed",
                                                                                          "refused"))
    assert browser.find_element(By.ID, "op-status").get_attribute("data-status") == "succeeded", \
        browser.find_element(By.ID, "op-status").text
    _wait(browser, lambda b: any("from_console" in r.text for r in _css(b, "table tbody tr")))
    status, container = _api(mock, "GET", f"/nodes/{NODE}/containers/from_console")
    assert status == 200, container
    # Its memory and agent CPU plotted (uPlot's canvases), sampled again while the page is open.
    _wait(browser, lambda b: len(_css(b, ".plot .uplot canvas")) == 2)
    _wait(browser, lambda b: int(b.find_element(By.ID, "samples").get_attribute("data-samples") or 0) >= 2)
    browser.save_screenshot(str(shots / "node.png"))

    # Back on the pool page (no reload: the hash changes) the count went up by one.
    browser.find_element(By.CSS_SELECTOR, ".crumbs a").click()
    _wait(browser, lambda b: f"{count + 1} containers" in _tile_text(b, NODE))
    # A container made by someone else shows too, from its event.
    assert _api(mock, "POST", f"/nodes/{NODE}/containers", {
        "name": "from_elsewhere", "hostname": "x", "flist": "https://hub.example.org/a.flist"})[0] == 201
    _wait(browser, lambda b: f"{count + 2} containers" in _tile_text(b, NODE))
    # Filtering keeps only the matching node.
    browser.find_element(By.ID, "filter").send_keys(NODE)
    _wait(browser, lambda b: [t.get_attribute("data-node") for t in _css(b, "li.tile")] == [NODE])
    _no_errors(browser)


def test_a_process_output_follows_live(mock: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{mock}/ui#/nodes/{NODE}/containers/vfw_21")
    _wait(browser, lambda b: _css(b, "#start-process"))
    browser.find_element(By.ID, "command").send_keys("sh -c 'echo first; sleep 2; echo second'")
    browser.find_element(By.CSS_SELECTOR, "#start-process button[type=submit]").click()
    # The first line is there while the job still runs (before "second" was written) ...
    _wait(browser, lambda b: "first" in b.find_element(By.ID, "output").text)
    assert "second" not in browser.find_element(By.ID, "output").text
    assert browser.find_element(By.ID, "output-state").get_attribute("data-state") == "following"
    browser.save_screenshot(str(shots / "container.png"))
    # ... then the rest, and its end.
    _wait(browser, lambda b: b.find_element(By.ID, "output-state").get_attribute("data-state") == "ended")
    assert browser.find_element(By.ID, "output").text.split() == ["first", "second"]
    assert "success" in browser.find_element(By.ID, "output-state").text
    _no_errors(browser)


def _confirm(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _wait(browser, lambda b: [d for d in _css(b, "dialog.confirm") if d.is_displayed()])
    browser.find_element(By.CSS_SELECTOR, "dialog.confirm button[data-confirm=yes]").click()


def test_a_job_is_killed_from_its_container_page(mock: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base = f"/nodes/{NODE}/containers/vfw_21"
    status, reference = _api(mock, "POST", f"{base}/processes", {"name": "sleep", "args": ["600"]})
    assert status == 202, reference
    job = reference["id"]
    browser.get(f"{mock}/ui#{base}")
    assert _api(mock, "GET", f"{base}/jobs/{job}")[0] == 200
    _click(browser, f'button[data-action=kill][aria-label="Kill job {job}"]')
    _confirm(browser)
    _wait(browser, lambda b: _css(b, "#op-status")[0].get_attribute("data-status") in ("succeeded", "failed"))
    assert browser.find_element(By.ID, "op-status").get_attribute("data-status") == "succeeded"
    # Killed: no longer listed, and its result says so.
    assert job not in [j["id"] for j in _api(mock, "GET", f"{base}/jobs")[1]]
    _wait(browser, lambda b: (_api(mock, "GET", f"{base}/jobs/{job}")[1] or {}).get("state") == "killed")
    _wait(browser, lambda b: not _css(b, f'button[data-action=kill][aria-label="Kill job {job}"]'))
    _no_errors(browser)


def test_a_vm_is_paused_resumed_stopped_and_started_from_its_node_page(
        mock: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    vmid = unique("vm")
    path = f"/nodes/{NODE}/vms/{vmid}"
    assert _api(mock, "POST", f"/nodes/{NODE}/vms", {"id": vmid, "memory": 256, "cpu": 1})[0] == 201
    try:
        browser.get(f"{mock}/ui#/nodes/{NODE}")

        def press(action: str, label: str) -> None:
            _click(browser, f'button[data-action=vm-{action}][aria-label="{label} VM {vmid}"]')

        def status_becomes(expected: str) -> None:
            _wait(browser, lambda b: _api(mock, "GET", path)[1].get("status") == expected)
            # The row shows it too, from the VM's event (no reload).
            _wait(browser, lambda b: any(vmid in row and expected in row for row in _rows(b)))

        assert _api(mock, "GET", path)[1]["status"] == "running"
        press("pause", "Pause")
        status_becomes("paused")
        press("resume", "Resume")
        status_becomes("running")
        browser.save_screenshot(str(shots / "node-vms.png"))
        press("stop", "Stop")
        _confirm(browser)
        status_becomes("halted")
        assert not _css(browser, f'button[data-action=vm-pause][aria-label="Pause VM {vmid}"]')
        press("start", "Start")
        status_becomes("running")
        assert browser.find_element(By.ID, "op-status").get_attribute("data-status") == "succeeded"
        _no_errors(browser)
    finally:
        _api(mock, "DELETE", path)


def test_a_read_token_sees_no_action_and_a_forged_call_is_refused(
        secured: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{secured}/ui")
    field = _wait(browser, lambda b: [f for f in _css(b, "#token") if f.is_displayed()])[0]
    assert not _css(browser, "li.tile")
    field.send_keys(READ_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    _wait(browser, lambda b: len(_css(b, "li.tile")) == 2)
    assert "read" in browser.find_element(By.ID, "session").text
    # The token is in the tab's session storage, not in the URL.
    assert browser.execute_script("return sessionStorage.getItem('rpoold.token')") == READ_TOKEN
    assert READ_TOKEN not in browser.current_url
    vmid = unique("vm")
    assert _api(secured, "POST", f"/nodes/{NODE}/vms", {"id": vmid, "memory": 256, "cpu": 1},
                token=ADMIN_TOKEN)[0] == 201
    browser.get(f"{secured}/ui#/nodes/{NODE}")
    _wait(browser, lambda b: any("vfw_21" in r.text for r in _css(b, "table tbody tr")))
    assert any(vmid in row and "running" in row for row in _rows(browser))
    assert not _css(browser, "button[data-action]") and not _css(browser, "#create-container")
    browser.save_screenshot(str(shots / "node-read.png"))
    browser.get(f"{secured}/ui#/nodes/{NODE}/containers/vfw_21")
    _wait(browser, lambda b: b.find_element(By.ID, "view").get_attribute("data-loaded") == "true")
    assert not _css(browser, "#start-process") and not _css(browser, "button[data-action=kill]")
    # A call forged from the page with the same token: the API refuses it.
    status = browser.execute_async_script("""
        const [node, done] = arguments;
        fetch('/nodes/' + node + '/reboot', {method: 'POST', headers: {
            Authorization: 'Bearer ' + sessionStorage.getItem('rpoold.token'), Prefer: 'respond-async'}})
          .then(async (r) => done([r.status, await r.json()]));
    """, NODE)
    assert status[0] == 403 and "error" in status[1]
    # An admin sees the buttons.
    browser.execute_script(f"sessionStorage.setItem('rpoold.token', '{ADMIN_TOKEN}')")
    browser.get(f"{secured}/ui#/nodes/{NODE}")
    browser.refresh()  # the same page with another hash: read the session again
    _wait(browser, lambda b: _css(b, "button[data-action=reboot]") and _css(b, "button[data-action=delete]")
          and _css(b, f'button[data-action=vm-pause][aria-label="Pause VM {vmid}"]'))


@pytest.fixture(scope="module")
def core0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Core0Sim, str]]:
    sim = Core0Sim(2).start()
    try:
        root = tmp_path_factory.mktemp("core0")
        path = root / "core0.toml"
        path.write_text(f"""
[store]
url = "memory:"

[events]
node_interval = 1

[backends.core0]
plugin = "core0"
nodes_file = "{sim.node_file}"
timeout = 3
ping_timeout = 0.5

[backends.mock]
plugin = "mock"

[families]
default = "core0"
storageclusters = "mock"
vdisks = "mock"
""")
        rpoold: Child
        rpoold, url = start_rpoold(str(path))
    except Exception:
        sim.stop()
        raise
    try:
        yield sim, url
    finally:
        rpoold.stop()
        sim.stop()


def _redis_of(sim: Core0Sim, node: str) -> int:
    port = str(next(e for e in tomllib.loads(sim.node_file.read_text())["nodes"] if e["id"] == node)["port"])
    for pid in sim.redis_pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
        if port.encode() in words or any(w.endswith(b":" + port.encode()) for w in words):
            return pid
    raise AssertionError(f"no redis-server of core0sim serves node {node}")


def test_a_stopped_redis_turns_its_tile_unreachable(core0: tuple[Core0Sim, str], browser: Any,
                                                     shots: Path) -> None:
    sim, url = core0
    _, nodes = _api(url, "GET", "/nodes")
    browser.get(f"{url}/ui")
    _wait(browser, lambda b: len(_css(b, "li.tile")) == len(nodes) and
          _css(b, "#stream-state")[0].get_attribute("data-state") == "open")
    node = nodes[-1]["id"]
    assert "unreachable" not in _tile_text(browser, node)
    pid = _redis_of(sim, node)
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait(browser, lambda b: "unreachable" in _tile_text(b, node), timeout=30)
        tile = _css(browser, f'li.tile[data-node="{node}"]')[0]
        assert "down" in (tile.get_attribute("class") or "")
        assert browser.find_element("id", "pool-summary").get_attribute("data-unreachable") == "1"
        assert "memory unknown" in _tile_text(browser, node)
        browser.save_screenshot(str(shots / "pool-unreachable.png"))
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait(browser, lambda b: "unreachable" not in _tile_text(b, node), timeout=30)
    # Back: its memory is asked for again (that node only).
    _wait(browser, lambda b: "% of" in _tile_text(b, node))
