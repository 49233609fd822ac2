"""
The HTTP site serving the API.

Request bodies are spooled by twisted.web (to a temporary file when
large); this request class keeps twisted.web from parsing uploads into
memory, because the upload route parses them itself, block by block.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request, Site


class ApiRequest(Request):
    """A request whose multipart bodies are left for the route to parse."""

    def __init__(self, channel: Any, queued: Any = None) -> None:
        super().__init__(channel, parsePOSTFormSubmission=False)


def make_site(resource: Any) -> Site:
    """:returns: a ``Site`` serving ``resource`` with ``ApiRequest``."""
    site = Site(resource)
    site.requestFactory = ApiRequest  # type: ignore[assignment]
    site.displayTracebacks = False
    return site
