"""
``/docs`` in a real browser: Debian's headless Chromium, driven by
selenium through Debian's chromedriver (both installed by ``make test``;
selenium is told where they are and downloads nothing), against a live
``twistd rpoold`` on the mock pool.  The page lists the operations and
"Try it out" -> "Execute" on one of them answers 200 with the node's
memory, every file the page loaded coming from the daemon itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpoold.contract import ALL_OPERATIONS
from testbed.twistd import running_rpoold
from tests.support.browser import headless_browser

#: Seconds the page has to show what each step waits for (a deadline, not a pause).
WAIT = 60

NODE = "525400123456"
#: The operation tried: Swagger UI's element of GetMemInfo (tag ``node_info``).
MEM = "#operations-node_info-GetMemInfo"


@pytest.fixture(scope="module")
def daemon() -> Iterator[str]:
    with running_rpoold() as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_browser(tmp_path / "profile") as driver:
        yield driver


def test_the_docs_page_lists_the_operations_and_runs_one(daemon: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    browser.get(f"{daemon}/docs")
    assert "rpoold" in browser.title

    # The operation list: every operation, rpoold's own too (and the mems and jobs aliases), with its summary.
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) > len(ALL_OPERATIONS) + 1)
    blocks = browser.find_elements(By.CSS_SELECTOR, ".opblock")
    ids = {b.get_attribute("id") for b in blocks}
    assert "operations-nodes-ListNodes" in ids and "operations-vdisks-RollbackVdisk" in ids
    assert len(blocks) == len(ALL_OPERATIONS) + 2
    operation = browser.find_element(By.CSS_SELECTOR, MEM)
    assert "Get a node's memory figures" in operation.text

    # Try it out -> Execute on GET /nodes/{nodeid}/mem (the seed's node is the example).
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(shown.element_to_be_clickable((By.CSS_SELECTOR, f"{MEM} .try-out__btn")))
    operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    field = wait.until(shown.visibility_of_element_located(
        (By.CSS_SELECTOR, f"{MEM} input[placeholder='nodeid']")))
    if field.get_attribute("value") != NODE:
        field.clear()
        field.send_keys(NODE)
    operation.find_element(By.CSS_SELECTOR, ".execute").click()
    answered = f"{MEM} .live-responses-table tr.response"
    status = wait.until(shown.visibility_of_element_located(
        (By.CSS_SELECTOR, f"{answered} .response-col_status")))
    assert status.text.strip() == "200"
    body = browser.find_element(By.CSS_SELECTOR, f"{answered} .response-col_description")
    assert "usedPercent" in body.text and "2102710272" in body.text

    # Everything the page loaded came from the daemon.
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert f"{daemon}/openapi.json" in loaded
    assert f"{daemon}/nodes/{NODE}/mem" in loaded
    assert all(name.startswith(f"{daemon}/") for name in loaded), loaded
    # Nothing refused by the page's Content-Security-Policy, no script error.
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
