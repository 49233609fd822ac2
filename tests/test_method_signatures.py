"""
The check of a backend method against the arguments the web app passes
(``rpoold.method_signatures``), on its own: what Python would refuse when
the web app calls ``method(**arguments)``, said in words.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from rpoold.method_signatures import mismatch

ARGUMENTS = ("nodeid", "containername", "body")


def by_name(nodeid: str, containername: str, body: Any) -> None: ...
def keyword_only(*, nodeid: str, containername: str, body: Any) -> None: ...
def more_with_defaults(nodeid: str, containername: str, body: Any, timeout: float = 1) -> None: ...
def any_keywords(nodeid: str, **rest: Any) -> None: ...
def renamed(nodeid: str, container: str, body: Any) -> None: ...
def positional_only(nodeid: str, containername: str, body: Any, /) -> None: ...
def one_short(nodeid: str, containername: str) -> None: ...
def one_more(nodeid: str, containername: str, body: Any, force: bool) -> None: ...


@pytest.mark.parametrize("function", [by_name, keyword_only, more_with_defaults, any_keywords])
def test_callable_by_keyword(function: Callable[..., None]) -> None:
    assert mismatch(inspect.signature(function), ARGUMENTS) is None


@pytest.mark.parametrize(("function", "reasons"), [
    (renamed, ["it has no parameter 'containername'", "its parameter 'container' is not passed"]),
    (positional_only, ["it has no parameter 'nodeid'", "it has no parameter 'containername'",
                       "it has no parameter 'body'", "its parameter 'nodeid' is not passed"]),
    (one_short, ["it has no parameter 'body'"]),
    (one_more, ["its parameter 'force' is not passed"]),
], ids=["renamed", "positional-only", "one-short", "one-more"])
def test_not_callable_by_keyword(function: Callable[..., None], reasons: list[str]) -> None:
    found = mismatch(inspect.signature(function), ARGUMENTS)
    assert found is not None
    for reason in reasons:
        assert reason in found, (reason, found)
