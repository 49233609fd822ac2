"""
The errors rpoold raises, each carrying the HTTP status it answers with.

Backends raise these; the web app turns any of them into
``{"error": message}`` with ``status``.  Anything else that escapes a
backend is a bug: it is logged with a request id and answered 500.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet import error as tx_error

#: What ``Deferred.addTimeout`` fails with: ``twisted.internet.defer.TimeoutError``
#: in current Twisted, ``twisted.internet.error.TimeoutError`` in older ones.
TIMEOUTS: tuple[type[Exception], ...] = (defer.TimeoutError, tx_error.TimeoutError)


class RpoolError(Exception):
    """
    Base of every error that maps to an HTTP answer.

    :ivar status: the HTTP status code of the answer.
    :ivar message: the text sent to the client as ``{"error": message}``.
    """

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(RpoolError):
    """The request is malformed or fails validation (400)."""

    status = 400


class Unauthorized(RpoolError):
    """Credentials are missing or invalid (401)."""

    status = 401


class Forbidden(RpoolError):
    """The credentials are valid but their role may not do this (403)."""

    status = 403


class NotFound(RpoolError):
    """The node, container, job, ... named by the request does not exist (404)."""

    status = 404


class MethodNotAllowed(RpoolError):
    """The path exists but does not take this method (405)."""

    status = 405


class Conflict(RpoolError):
    """A create names something that already exists (409)."""

    status = 409


class PayloadTooLarge(RpoolError):
    """The request body is larger than the configured limit (413)."""

    status = 413


class UnsupportedMediaType(RpoolError):
    """The request body has a content type this operation does not take (415)."""

    status = 415


class NotServed(RpoolError):
    """No backend serves this resource family in the configuration (501)."""

    status = 501


class BackendError(RpoolError):
    """
    The backend answered, but the operation failed there (500): a core0
    command ended in error, an AYS run failed.
    """

    status = 500


class BackendUnavailable(RpoolError):
    """The backend (node, orchestrator) cannot be reached (502)."""

    status = 502


class ServiceUnavailable(RpoolError):
    """The backend is not ready yet, e.g. still starting up (503)."""

    status = 503


class BackendTimeout(RpoolError):
    """The backend did not answer within the configured timeout (504)."""

    status = 504
