"""
Cross-origin requests (``[server] cors_origins``): which web pages on
other origins may call the API from a browser.

For a request whose ``Origin`` is allowed, every answer (errors and
``/openapi.json`` included) carries ``Access-Control-Allow-Origin`` with
that origin and the headers a script may read; a preflight (``OPTIONS``
with ``Access-Control-Request-Method``) is answered ``204`` here, before
any route.  Other origins get no CORS header, so browsers keep their
scripts from reading the answers; a preflight from them goes on to the
routes (``405``).  Bearer tokens are sent as a header, never as cookies:
no ``Access-Control-Allow-Credentials``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from twisted.web.iweb import IRequest

#: An origin as browsers send it: scheme, host, optional port; no path.
ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")

#: Any origin.
ANY = "*"

METHODS = b"GET, POST, PUT, DELETE"
#: Request headers a page may send.
REQUEST_HEADERS = b"Authorization, Content-Type, X-Request-Id"
#: Answer headers a page's script may read (besides the simple ones).
EXPOSED = b"Location, X-Request-Id, WWW-Authenticate, Allow, Link"
#: Seconds a browser may keep a preflight's answer.
MAX_AGE = b"600"


def origin_problem(value: str) -> str | None:
    """:returns: what is wrong with ``value`` as an entry of ``cors_origins``, ``None`` if nothing."""
    if value == ANY or ORIGIN.match(value):
        return None
    return f"{value!r} is not an origin (scheme://host or scheme://host:port, no path; or \"*\")"


class CorsPolicy:
    """
    :param origins: the allowed origins (``scheme://host[:port]``), or
        ``"*"`` for any.
    """

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(o.lower() for o in origins)
        self.any = ANY in self.origins

    def allows(self, origin: str) -> bool:
        return self.any or origin.lower() in self.origins

    def apply(self, request: IRequest) -> bool:
        """
        Add the CORS headers ``request``'s answer needs.

        :returns: ``True`` when the request was a preflight, answered
            (status and headers set, no body).
        """
        request.responseHeaders.addRawHeader(b"Vary", b"Origin")
        raw = request.getHeader(b"Origin")
        if raw is None:
            return False
        origin = raw.decode("latin-1")
        if not self.allows(origin):
            return False
        request.setHeader(b"Access-Control-Allow-Origin", raw)
        asked = request.getHeader(b"Access-Control-Request-Method")
        if request.method != b"OPTIONS" or asked is None:
            request.setHeader(b"Access-Control-Expose-Headers", EXPOSED)
            return False
        request.setResponseCode(204)
        request.setHeader(b"Access-Control-Allow-Methods", METHODS)
        request.setHeader(b"Access-Control-Allow-Headers", REQUEST_HEADERS)
        request.setHeader(b"Access-Control-Max-Age", MAX_AGE)
        return True
