"""
The console with a large pool: ``twistd rpoold`` on a mock pool of 500
simulated nodes, the pool page in headless Chromium (Debian's chromium and
chromedriver, as the browser tests).  Prints the time from navigation to
every tile drawn, to every node's memory bar and CPU figure filled, and, for containers
created through the API, the time from each ``container.created`` event
(its ``time``) to its tile showing it.

    python bench/console.py                 # 500 nodes, 20 events
    python bench/console.py --nodes 1000 --events 50

Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed import http_api  # noqa: E402
from testbed.browser import MISSING, installed, start_chromium  # noqa: E402
from testbed.mock_pool import MOCK_CONFIG  # noqa: E402
from testbed.twistd import start_rpoold  # noqa: E402


def browser(profile: Path) -> Any:
    paths = installed()
    if paths is None:
        raise SystemExit(f"{MISSING} (make chromium)")
    return start_chromium(paths, profile)


def wait(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError("the page did not get there in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--events", type=int, default=20)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    config = work / "rpoold.toml"
    config.write_text(MOCK_CONFIG.replace("nodes = 2", f"nodes = {options.nodes}"))
    child, url = start_rpoold(str(config))
    driver = None
    try:
        nodes = http_api.call(url, "GET", f"/nodes?limit={options.nodes}", timeout=60).json()
        driver = browser(work / "profile")
        view = "document.getElementById('view').dataset"
        driver.get(f"{url}/ui")
        rendered = wait(lambda: driver.execute_script(f"return {view}.rendered"))
        tiles = driver.execute_script("return document.querySelectorAll('li.tile').length")
        filled = wait(lambda: driver.execute_script(f"return {view}.figuresLoaded"), 120)
        wait(lambda: driver.execute_script(
            "return document.getElementById('stream-state').dataset.state === 'open'"))
        print(f"{tiles} tiles of {len(nodes)} nodes drawn {int(rendered)} ms after navigation; "
              f"every memory bar and CPU figure filled after {int(filled)} ms")
        lags = []
        for n in range(options.events):
            node = nodes[(n * 37) % len(nodes)]["id"]
            selector = f'li.tile[data-node="{node}"]'
            before = driver.execute_script(f"return document.querySelector('{selector}').dataset.event || ''")
            reply = http_api.call(url, "POST", f"/nodes/{node}/containers", json={
                "name": f"bench_{n}", "hostname": f"bench{n}", "flist": "https://hub.example.org/b.flist"},
                timeout=30)
            if reply.status != 201:
                raise RuntimeError(f"create on {node}: {reply}")
            changed = (f"const t = document.querySelector('{selector}').dataset;"
                       f"return t.event && t.event !== '{before}' ? t.lag : null")
            lag = wait(lambda script=changed: driver.execute_script(script))
            lags.append(int(lag))
        lags.sort()
        print(f"event to tile ({len(lags)} container.created events): "
              f"median {statistics.median(lags):.0f} ms, max {lags[-1]} ms")
    finally:
        if driver is not None:
            driver.quit()
        child.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
