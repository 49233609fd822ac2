"""
Headless Chromium for the browser tests and the console's benchmark:
Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them),
driven by selenium, which is kept offline (Selenium Manager never looks
for, or fetches, a browser or a driver).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

#: Why a browser cannot be started here.
MISSING = "Debian's chromium and chromium-driver are not installed (make test installs them)"


def installed() -> tuple[str, str] | None:
    """:returns: the paths of ``chromium`` and ``chromedriver``, ``None`` when either is missing."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


def start_chromium(paths: tuple[str, str], profile: Path) -> Any:
    """:returns: a selenium driver of a headless Chromium whose profile is ``profile`` (quit it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = paths
    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)
