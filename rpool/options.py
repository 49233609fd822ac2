"""
What commands share: the ``--json`` and ``--wait`` options, and the
parsers of ``--body`` (``@FILE``, ``-`` for stdin, or JSON text),
``--field KEY=VALUE`` and ``--param NAME=VALUE``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rpool.exits import UsageProblem
from rpool.session import DEFAULT_WAIT_TIMEOUT, Session

F = TypeVar("F", bound=Callable[..., Any])


def session_of(ctx: click.Context) -> Session:
    """The run's ``Session`` (made by the root command)."""
    session = ctx.find_object(Session)
    if session is None:  # pragma: no cover - the root command always makes one
        raise click.UsageError("no session")
    return session


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        session_of(ctx).output.json = True


def json_option(function: F) -> F:
    """``--json``: the answer as JSON on stdout (also accepted before the command)."""
    return click.option("--json", "json_mode", is_flag=True, expose_value=False, callback=_set_json,
                        help="Print the answer as JSON (for scripts).")(function)


def wait_options(what: str) -> Callable[[F], F]:
    """``--wait`` and ``--wait-timeout``."""

    def decorate(function: F) -> F:
        function = click.option(
            "--wait-timeout", type=click.FloatRange(min=0.1), default=DEFAULT_WAIT_TIMEOUT,
            show_default=True, metavar="SECONDS",
            help="How long --wait may wait (then exit code 7).")(function)
        return click.option("--wait", is_flag=True,
                            help=f"Wait until {what}, with a progress display.")(function)

    return decorate


def read_body(value: str) -> Any:
    """
    A ``--body``: ``@FILE`` (JSON in a file), ``-`` or ``@-`` (JSON on
    stdin), or JSON text.

    :raises UsageProblem: the file cannot be read or the text is not JSON.
    """
    if value in ("-", "@-"):
        text, source = sys.stdin.read(), "stdin"
    elif value.startswith("@"):
        source = value[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise UsageProblem(f"--body {value}: {e.strerror or e}") from None
    else:
        text, source = value, "--body"
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageProblem(f"{source} is not JSON: {e}") from None


def pair(text: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` split once; :raises UsageProblem: no ``=`` or no name."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageProblem(f"{option} {text!r}: expected NAME=VALUE")
    return name, value


def json_or_text(value: str) -> Any:
    """``VALUE`` as JSON when it is JSON (``3``, ``true``, ``["a"]``), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def apply_fields(body: Any, fields: tuple[str, ...]) -> Any:
    """
    ``body`` with each ``--field KEY=VALUE`` set (``a.b=1`` sets a nested
    key; the value is JSON when it parses, else a string).

    :raises UsageProblem: a field is malformed or the body is not an object.
    """
    if not fields:
        return body
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise UsageProblem("--field needs a JSON object body")
    for text in fields:
        key, value = pair(text, "--field")
        target = body
        *parents, last = key.split(".")
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageProblem(f"--field {key}: '{part}' is not an object")
            target = child
        target[last] = json_or_text(value)
    return body
