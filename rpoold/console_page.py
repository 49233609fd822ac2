"""
``GET /ui``: the web console, from the files in ``rpoold/console/``
(installed with the package: plain ES modules and CSS, no build step;
``uplot.js`` and ``uplot.css`` are uPlot 1.6.32's ES module and style
sheet as its npm package ships them, MIT, licence in ``uplot-LICENSE``);
nothing is fetched from elsewhere, by the daemon or by the browser.

The page loads ``/ui/assets/console.css`` and ``/ui/assets/main.js``
(which imports the other modules) under a Content-Security-Policy that
allows only the daemon's own scripts, styles and connections, and no
inline script or style.  It calls the API with the token the user gives
(kept in the tab's ``sessionStorage``); ``GET /ui/session`` tells it who
that token is and what role it has, so that it hides what the role may
not do (the API still decides).
"""

from __future__ import annotations

import re
from pathlib import Path

from rpoold.docs_page import Asset

#: Where the console's files are served.
ASSETS = "/ui/assets/"

#: The directory of the console's files (package data).
DIRECTORY = Path(__file__).with_name("console")

#: Media types of the files the console may have.
MEDIA_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}

#: A file name the console serves: no directory, one of the suffixes above.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(js|css|svg)$")

#: The page's policy: its own files only, no inline script or style.
POLICY = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          b"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
          b"form-action 'none'")


class ConsoleAssets:
    """
    The console's page and files, read from ``directory`` on first use and
    kept in memory.

    :param directory: where the files are; ``None``: the installed ``rpoold/console/``.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory if directory is not None else DIRECTORY
        self._loaded: dict[str, Asset] = {}
        self._page: bytes | None = None

    def page(self) -> bytes:
        """:returns: the console's HTML page."""
        if self._page is None:
            self._page = (self._directory / "index.html").read_bytes()
        return self._page

    def get(self, name: str) -> Asset | None:
        """:returns: the file called ``name``, ``None`` when the console has none."""
        found = self._loaded.get(name)
        if found is None and _NAME.match(name):
            path = self._directory / name
            if not path.is_file():
                return None
            found = Asset(path.read_bytes(), MEDIA_TYPES[path.suffix])
            self._loaded[name] = found
        return found
