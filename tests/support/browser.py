"""The browser of a test: headless Chromium (``testbed.browser``), or a skip (a failure under CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from testbed.browser import MISSING, installed, start_chromium


@contextmanager
def headless_browser(profile: Path) -> Iterator[Any]:
    """A headless Chromium while the block runs; skipped when none is installed, except under CI."""
    paths = installed()
    if paths is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    driver = start_chromium(paths, profile)
    try:
        yield driver
    finally:
        driver.quit()
