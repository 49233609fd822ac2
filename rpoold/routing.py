"""
Routing of the API's requests: Klein's table, compiled for the common case.

The routing table is Klein's (``RpoolApi.app``, one route per contract
operation and alias, plus the service routes).  Klein matches each request
through werkzeug (a map adapter bound per request, a state machine over
the path, the endpoint called through two ``maybeDeferred``): about a
fifth of a small request's cost.  :class:`CompiledRoutes` is the same
table compiled into a tree of path segments, built from Klein's rules
(so there is one table); :class:`RoutedResource` answers what the tree
matches exactly (a contract route, by its method) and hands everything
else to Klein's own resource: 404 and 405 answers, ``HEAD``, the service
routes, a path with an empty segment, an encoded ``/`` or non-UTF-8 bytes.

A match is the rule werkzeug would choose: at each segment a literal wins
over a parameter (werkzeug's static parts first), and a parameter takes
any non-empty segment (its default ``string`` converter).
``tests/test_routing.py`` checks that both agree on every rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from klein.resource import KleinResource
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET

log = Logger()

#: A route's segment as werkzeug writes a parameter with the default converter.
_PARAMETER = re.compile(r"<(\w+)>")

#: Serves one matched request: ``(request, parameters)`` -> bytes, ``None``
#: (the answer is written already) or a Deferred of either.
Handler = Callable[[Any, dict[str, str]], Any]


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    #: Parameter name -> the subtree after it.
    parameters: list[tuple[str, _Node]] = field(default_factory=list)
    #: Method -> (handler or ``None`` for a route served by Klein only, segments).
    methods: dict[str, tuple[Handler | None, int]] = field(default_factory=dict)


class CompiledRoutes:
    """
    Klein's rules as a tree of path segments.

    :param app: the Klein app whose ``url_map`` holds the table.
    :param handler_of: the handler of a rule's endpoint, or ``None`` for
        a rule Klein should serve itself.
    """

    def __init__(self, app: Any, handler_of: Callable[[str], Handler | None]) -> None:
        self.root = _Node()
        for rule in app.url_map.iter_rules():
            self._add(rule.rule, rule.methods or (), handler_of(rule.endpoint))

    def _add(self, path: str, methods: Any, handler: Handler | None) -> None:
        node = self.root
        segments = path.strip("/").split("/")
        simple = True
        for segment in segments:
            parameter = _PARAMETER.fullmatch(segment)
            if parameter is not None:
                name = parameter.group(1)
                for known, child in node.parameters:
                    if known == name:
                        node = child
                        break
                else:
                    child = _Node()
                    node.parameters.append((name, child))
                    node = child
            elif "<" in segment or not segment:
                simple = False  # another converter, or a trailing slash: Klein's
                break
            else:
                node = node.literals.setdefault(segment, _Node())
        for method in methods:
            # A rule the tree cannot hold still takes its place: its
            # requests go to Klein, as do those of a rule it shadows.
            node.methods.setdefault(method, (handler if simple else None, len(segments)))

    def match(self, method: str, segments: list[str]) -> tuple[Handler, dict[str, str], int] | None:
        """
        :param segments: the request's path segments, decoded.
        :returns: the handler, the path parameters and the rule's segment
            count; ``None`` when Klein is to route the request.
        """
        params: dict[str, str] = {}
        node = self._walk(self.root, segments, 0, params)
        if node is None:
            return None
        found = node.methods.get(method)
        if found is None or found[0] is None:
            return None
        return found[0], params, found[1]

    def _walk(self, node: _Node, segments: list[str], at: int, params: dict[str, str]) -> _Node | None:
        if at == len(segments):
            return node if node.methods else None
        segment = segments[at]
        child = node.literals.get(segment)
        if child is not None:
            found = self._walk(child, segments, at + 1, params)
            if found is not None:
                return found
        for name, child in node.parameters:
            params[name] = segment
            found = self._walk(child, segments, at + 1, params)
            if found is not None:
                return found
            del params[name]
        return None


def _segments(request: Any) -> list[str] | None:
    """The request's path segments, decoded; ``None`` for what only Klein routes."""
    postpath = request.postpath
    if request.prepath or not postpath:
        return None
    segments = []
    for raw in postpath:
        if not raw or b"/" in raw:
            return None
        try:
            segments.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return segments


class RoutedResource(KleinResource):
    """
    Klein's resource, answering the requests its compiled routes match
    without werkzeug (see the module docstring); the others as Klein does.
    """

    def __init__(self, app: Any, routes: CompiledRoutes) -> None:
        super().__init__(app)
        self.routes = routes

    def render_unrouted(self, request: Any) -> Any:
        """Answer a request the compiled routes do not match (as Klein does)."""
        return super().render(request)

    def render(self, request: Any) -> Any:
        segments = _segments(request)
        found = None if segments is None else self.routes.match(request.method.decode("latin-1"), segments)
        if found is None:
            return self.render_unrouted(request)
        handler, params, count = found
        request.prepath.extend(request.postpath[:count])
        request.postpath = request.postpath[count:]
        try:
            answer = handler(request, params)
        except Exception:
            answer = Failure()
        if not isinstance(answer, Deferred):
            _write(request, answer, False)
            return NOT_DONE_YET
        gone = [False]

        def lost(failure: Failure) -> None:
            # The client went away: the request's work is cancelled, as Klein does.
            gone[0] = True
            answer.cancel()

        request.notifyFinish().addErrback(lost)
        answer.addBoth(lambda result: _write(request, result, gone[0]))
        return NOT_DONE_YET


def _write(request: Any, answer: Any, gone: bool) -> None:
    """Send ``answer`` (bytes, ``None`` or a failure), as Klein's resource would."""
    if isinstance(answer, Failure):
        if gone:
            if not answer.check(CancelledError):
                log.failure("Unhandled Error Processing Request.", answer)
            return
        request.processingFailed(answer)
        return
    if gone:
        return
    if isinstance(answer, bytes):
        request.write(answer)
    request.finish()
