"""
What ``rpool``'s exit status says, and the errors that carry it.  Every
failure the client foresees is an ``RpoolError`` with its code; click
prints it as one ``rpool: ...`` line on stderr.
"""

from __future__ import annotations

import enum
from typing import IO, Any

import click


class ExitCode(enum.IntEnum):
    """The exit statuses of ``rpool`` (docs/rpool.md lists them too)."""

    #: The request (and whatever it waited for) succeeded.
    OK = 0
    #: Something the client did not foresee (a traceback is printed).
    UNEXPECTED = 1
    #: A wrong command line, option, body file, configuration file, or an
    #: operation the server's document does not list.
    USAGE = 2
    #: The server accepted the request but what it started failed: a job
    #: of ``rpool exec`` ended in error, killed or timed out; an operation
    #: followed to its end failed.
    FAILED = 3
    #: The server answered 4xx: not found, invalid, conflict, unauthorized...
    CLIENT_ERROR = 4
    #: The server answered 5xx: its backend failed, is unreachable (502),
    #: not ready (503) or timed out (504).
    SERVER_ERROR = 5
    #: The server could not be reached (connection refused, no such host,
    #: no connection within the timeout).
    UNREACHABLE = 6
    #: No answer within ``--timeout``, or a ``--wait`` that ran out of time.
    TIMEOUT = 7


def for_status(status: int) -> ExitCode:
    """The exit code of an HTTP error status (4xx or 5xx)."""
    return ExitCode.CLIENT_ERROR if 400 <= status < 500 else ExitCode.SERVER_ERROR


class RpoolError(click.ClickException):
    """A failure of one command, with its exit code and one line of message."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        # click reads the status off the exception: each instance has its own.
        self.exit_code = int(code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"rpool: {self.format_message()}", err=True, file=file)


class UsageProblem(RpoolError):
    """Wrong input on the command line (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class ApiError(RpoolError):
    """
    The server answered an error status.

    :ivar status: the HTTP status.
    :ivar error: the ``error`` of its ``{"error": ...}`` body (or the body's text).
    """

    def __init__(self, method: str, path: str, status: int, error: str) -> None:
        super().__init__(f"{method} {path}: {status}: {error}", for_status(status))
        self.status = status
        self.error = error


class Unreachable(RpoolError):
    """The server could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}", ExitCode.UNREACHABLE)


class TimedOut(RpoolError):
    """No answer, or not the awaited state, within the time allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.TIMEOUT)


class Failed(RpoolError):
    """What the request started ended in failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.FAILED)
