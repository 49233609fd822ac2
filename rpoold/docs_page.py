"""
``GET /docs``: Swagger UI on ``/openapi.json``, from the files the
``swagger-ui-bundle-v2`` distribution installs (``swagger_ui_bundle``);
nothing is fetched from elsewhere, by the daemon or by the browser.

The page is this module's own (not the bundle's ``index.html``): it loads
``/docs/assets/swagger-ui.css``, ``/docs/assets/swagger-ui-bundle.js`` and
``/docs/assets/rpoold-docs.js`` (which starts the viewer on
``/openapi.json``), under a Content-Security-Policy that allows only the
daemon's own scripts and styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where the viewer's files are served.
ASSETS = "/docs/assets/"

#: The bundle's files that the page uses, with their media types.
BUNDLE_FILES = {
    "swagger-ui.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "favicon-16x16.png": b"image/png",
    "favicon-32x32.png": b"image/png",
}

#: Starts the viewer (a file, not an inline script, so that the policy
#: can refuse inline scripts).
INIT_SCRIPT = b"""\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    displayRequestDuration: true,
    validatorUrl: null
  });
});
"""

PAGE = b"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>G8OS Resource Pool API (rpoold)</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="/docs/assets/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="/docs/assets/favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/rpoold-docs.js"></script>
</body>
</html>
"""

#: The page's policy: its own scripts only; Swagger UI sets inline styles
#: and shows SVG icons as ``data:`` URLs.
POLICY = (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          b"img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
          b"base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Asset:
    """One file served with a page (the viewer's, the console's): its bytes and media type."""

    body: bytes
    media_type: bytes


class DocsAssets:
    """
    The viewer's files, read from the installed bundle on first use and
    kept in memory.

    :param directory: the bundle's directory; ``None``: the installed
        ``swagger_ui_bundle``'s.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        script = Asset(INIT_SCRIPT, b"text/javascript; charset=utf-8")
        self._loaded: dict[str, Asset] = {"rpoold-docs.js": script}

    def directory(self) -> Any:
        if self._directory is None:
            from swagger_ui_bundle import swagger_ui_path

            return swagger_ui_path
        return self._directory

    def get(self, name: str) -> Asset | None:
        """:returns: the file called ``name``, ``None`` when the viewer has none."""
        found = self._loaded.get(name)
        if found is None and name in BUNDLE_FILES:
            found = Asset((self.directory() / name).read_bytes(), BUNDLE_FILES[name])
            self._loaded[name] = found
        return found
