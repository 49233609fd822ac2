"""
A client for the AYS ("At Your Service") REST API, on treq.

It speaks the subset of the API the resource pool uses (repository,
blueprints, runs, services) and turns every failure into an
``rpoold.errors`` type with a message that says what was asked and what AYS
answered:

- AYS cannot be reached (refused, reset, DNS, proxy 502/503/504)
  -> ``BackendUnavailable`` (502);
- AYS does not answer within the request timeout -> ``BackendTimeout`` (504);
- AYS no longer knows the repository -> ``RepositoryMissing`` (503);
- any other unexpected status -> ``BackendError`` (500), carrying the text
  of AYS's ``error`` when there is one, never a bare status line.

A ``404`` for a named service is not an error here: ``get_service`` answers
``None`` and ``delete_service`` ``False``; callers decide what it means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from rpoold import metrics
from rpoold.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    RpoolError,
    ServiceUnavailable,
)

log = Logger()

#: ``backend`` label of the calls in the metrics.
BACKEND = "ays"

#: Longest piece of an AYS answer quoted in an error message.
QUOTE_LIMIT = 2000

#: ``git_url`` sent when the repository is created (AYS requires one).
NO_GIT_URL = "http://github.com/fake/fake"

_REPOSITORY_MISSING = re.compile(r"repository\b.*\bdoes(?:n't| not) exists?", re.IGNORECASE)


class RepositoryMissing(ServiceUnavailable):
    """AYS answers but does not know the configured repository (503)."""


class BlueprintExists(BackendError):
    """An active blueprint already has this name (AYS ``409``)."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def error_text(body: bytes) -> str:
    """
    What AYS said in an error answer: the ``error`` of a JSON object, a JSON
    string as is, else the (shortened) text; ``""`` when it said nothing.
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        text = parsed["error"]
    elif isinstance(parsed, str):
        text = parsed
    text = text.strip()
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + " [...]"
    return text


def status_outcome(code: int) -> str:
    """The metrics ``outcome`` of an AYS answer with status ``code``."""
    if code < 400:
        return "ok"
    if code == 404:
        return "not_found"
    if code == 409:
        return "conflict"
    if code < 500:
        return "bad_request"
    if code in (502, 503, 504):
        return "unavailable"
    return "error"


def _outcome(result: Any) -> str:
    """The metrics ``outcome`` of a request that ended with ``result``."""
    if isinstance(result, Failure):
        return metrics.outcome_of(result)
    return status_outcome(result[0])


def _describe(error: BaseException) -> str:
    """A transport failure in a few words (treq wraps causes in lists)."""
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(_describe(getattr(r, "value", r)) for r in reasons)
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AysClient:
    """
    :param url: AYS base URL, e.g. ``http://127.0.0.1:5000`` (no trailing
        slash needed).
    :param repository: the AYS repository every call works in.
    :param http: a ``treq.client.HTTPClient`` (or anything with its
        ``request`` method, such as ``treq.testing.StubTreq``).
    :param clock: the reactor (``IReactorTime``) timing the requests.
    :param request_timeout: seconds one request (answer and body) may take.
    """

    def __init__(
        self,
        url: str,
        repository: str,
        http: Any,
        clock: Any,
        request_timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.repository = repository
        self.http = http
        self.clock = clock
        self.request_timeout = request_timeout

    # Transport ------------------------------------------------------------------------

    def _repo_path(self, *parts: str) -> str:
        return "/".join(["/ays/repository", _segment(self.repository), *parts])

    async def _exchange(
        self, method: str, url: str, body: Any, params: dict[str, str] | None
    ) -> tuple[int, bytes]:
        kwargs: dict[str, Any] = {
            "headers": {b"Accept": [b"application/json"]},
        }
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["data"] = json.dumps(body).encode("utf-8")
            kwargs["headers"][b"Content-Type"] = [b"application/json"]
        response = await self.http.request(method, url, **kwargs)
        content = await response.content()
        return int(response.code), bytes(content)

    async def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
        kind: str = "other",
    ) -> tuple[int, bytes]:
        """
        One HTTP exchange with AYS, bounded by the request timeout, counted
        in the metrics (``rpoold_backend_calls_total{backend="ays"}``).

        :param what: what is being done, for error messages
            (e.g. ``"execute blueprint 'x'"``).
        :param timeout: seconds, when shorter than the request timeout.
        :param kind: the endpoint, as its method and path template
            (``"GET service/{role}/{name}"``): the ``command`` label.
        :returns: the status code and the body.
        :raises BackendUnavailable: AYS cannot be reached.
        :raises BackendTimeout: no complete answer in time.
        """
        return await metrics.track_backend_call(
            BACKEND, kind, ensureDeferred(self._request(method, path, what, body, params, timeout)),
            outcome=_outcome)

    async def _request(
        self, method: str, path: str, what: str, body: Any, params: dict[str, str] | None,
        timeout: float | None,
    ) -> tuple[int, bytes]:
        limit = self.request_timeout if timeout is None else min(timeout, self.request_timeout)
        url = self.url + path
        exchange = ensureDeferred(self._exchange(method, url, body, params))
        # Cancelling ``d`` (our timeout, or the caller giving up) cancels the
        # exchange, and whatever error the HTTP stack then reports means
        # "cancelled".
        cancelled = expired = False

        def cancel(_: Deferred[tuple[int, bytes]]) -> None:
            nonlocal cancelled
            cancelled = True
            exchange.cancel()

        d: Deferred[tuple[int, bytes]] = Deferred(cancel)
        exchange.chainDeferred(d)

        def expire() -> None:
            nonlocal expired
            expired = True
            d.cancel()

        call = self.clock.callLater(max(limit, 0.0), expire)
        try:
            code, content = await d
        except Exception as e:
            if expired:
                raise BackendTimeout(
                    f"AYS at {self.url} did not answer within {limit:g} s "
                    f"(while trying to {what})"
                ) from None
            if cancelled:
                raise CancelledError() from None
            if isinstance(e, RpoolError):
                raise
            raise BackendUnavailable(
                f"AYS at {self.url} is unreachable (while trying to {what}): {_describe(e)}"
            ) from None
        finally:
            if call.active():
                call.cancel()
        if code in (502, 503, 504):
            raise BackendUnavailable(
                f"AYS at {self.url} is unavailable (while trying to {what}): "
                f"HTTP {code} {error_text(content) or 'without explanation'}"
            )
        return code, content

    def failure(self, what: str, code: int, content: bytes) -> RpoolError:
        """The error for an unexpected answer to ``what``."""
        text = error_text(content)
        if code == 404 and _REPOSITORY_MISSING.search(text):
            return RepositoryMissing(
                f"AYS at {self.url} does not know repository '{self.repository}' "
                f"(while trying to {what}); rpoold is creating it again"
            )
        said = f": {text}" if text else " without explanation"
        return BackendError(f"AYS could not {what} (HTTP {code}){said}")

    def _unknown(self, what: str, code: int, content: bytes) -> bool:
        """
        Whether AYS answered that it does not know what was named (404).

        :raises RepositoryMissing: the 404 is for the repository itself.
        """
        if code != 404:
            return False
        error = self.failure(what, code, content)
        if isinstance(error, RepositoryMissing):
            raise error
        return True

    @staticmethod
    def _json(what: str, content: bytes) -> Any:
        try:
            return json.loads(content.decode("utf-8"))
        except ValueError:
            raise BackendError(f"AYS answered {what} with something that is not JSON") from None

    # Liveness and repository ------------------------------------------------------------

    async def ping(self, timeout: float | None = None) -> None:
        """
        :param timeout: seconds, when shorter than the request timeout.
        :raises BackendError: ``GET /`` answers something but ``200``.
        """
        what = "answer its liveness probe"
        code, content = await self.request("GET", "/", what, kind="GET /", timeout=timeout)
        if code != 200:
            raise self.failure(what, code, content)

    async def repository_exists(self, timeout: float | None = None) -> bool:
        """
        :param timeout: seconds, when shorter than the request timeout.
        :returns: whether AYS knows the repository.
        """
        what = f"look up repository '{self.repository}'"
        code, content = await self.request("GET", self._repo_path(), what, kind="GET repository",
                                           timeout=timeout)
        if code == 200:
            return True
        if code == 404:
            return False
        raise self.failure(what, code, content)

    async def ensure_repository(self) -> bool:
        """
        Make sure the repository exists.

        :returns: ``True`` when it was created now, ``False`` when it existed.
        """
        if await self.repository_exists():
            return False
        what = f"create repository '{self.repository}'"
        code, content = await self.request(
            "POST", "/ays/repository", what, kind="POST repository",
            body={"name": self.repository, "git_url": NO_GIT_URL},
        )
        if code in (200, 201):
            return True
        if code == 409:
            return False
        raise self.failure(what, code, content)

    # Blueprints --------------------------------------------------------------------------

    async def create_blueprint(self, name: str, content: str) -> None:
        """
        :param content: the blueprint's YAML text.
        :raises BlueprintExists: an active blueprint has this name.
        """
        what = f"create blueprint '{name}'"
        code, body = await self.request(
            "POST", self._repo_path("blueprint"), what, kind="POST blueprint",
            body={"name": name, "content": content},
        )
        if code == 409:
            raise BlueprintExists(f"AYS could not {what}: an active blueprint has that name")
        if code not in (200, 201):
            raise self.failure(what, code, body)

    async def execute_blueprint(self, name: str) -> None:
        """
        Create the blueprint's services and schedule its actions.

        :raises BackendError: AYS refused the blueprint, with its reason.
        """
        what = f"execute blueprint '{name}'"
        code, body = await self.request(
            "POST", self._repo_path("blueprint", _segment(name)), what, body={},
            kind="POST blueprint/{name}")
        if code != 200:
            raise self.failure(what, code, body)

    async def archive_blueprint(self, name: str) -> None:
        what = f"archive blueprint '{name}'"
        code, body = await self.request(
            "PUT", self._repo_path("blueprint", _segment(name), "archive"), what, body={},
            kind="PUT blueprint/{name}/archive")
        if code != 200:
            raise self.failure(what, code, body)

    # Runs ----------------------------------------------------------------------------------

    async def create_run(self) -> dict[str, Any]:
        """
        Start a run of every scheduled action of the repository.

        :returns: the AYSRun object (``key``, ``state``, ``steps``).
        """
        what = "create a run"
        code, body = await self.request("POST", self._repo_path("aysrun"), what, body={},
                                        kind="POST aysrun")
        if code not in (200, 201):
            raise self.failure(what, code, body)
        run = self._json(what, body)
        if not isinstance(run, dict) or not isinstance(run.get("key"), str):
            raise BackendError("AYS answered the creation of a run without a run key")
        return run

    async def get_run(self, key: str, timeout: float | None = None) -> dict[str, Any]:
        """:returns: the AYSRun object."""
        what = f"report on run {key}"
        code, body = await self.request(
            "GET", self._repo_path("aysrun", _segment(key)), what, timeout=timeout,
            kind="GET aysrun/{key}")
        if code != 200:
            raise self.failure(what, code, body)
        run = self._json(what, body)
        if not isinstance(run, dict):
            raise BackendError(f"AYS answered {what} with something that is not a run")
        return run

    # Services -------------------------------------------------------------------------------

    async def list_services(
        self,
        role: str,
        fields: Iterable[str] = (),
        parent: tuple[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """
        :param role: a role (``container``) or an actor name (``node.g8os``).
        :param fields: data fields to include in each item's ``data``.
        :param parent: ``(parent actor, parent instance)``: only its children.
        :returns: ``[{"role", "name", "data"}, ...]`` in no particular order.
        """
        params: dict[str, str] = {}
        fields = list(fields)
        if fields:
            params["fields"] = ",".join(fields)
        if parent is not None:
            params["parent"] = f"{parent[0]}!{parent[1]}"
        what = f"list the {role} services" + (
            f" of {parent[0]}!{parent[1]}" if parent is not None else "")
        code, body = await self.request(
            "GET", self._repo_path("service", _segment(role)), what,
            params=params, timeout=timeout, kind="GET service/{role}")
        if code != 200:
            raise self.failure(what, code, body)
        items = self._json(what, body)
        if not isinstance(items, list):
            raise BackendError(f"AYS answered {what} with something that is not a list")
        return [i for i in items if isinstance(i, dict)]

    async def get_service(
        self, role: str, name: str, timeout: float | None = None
    ) -> dict[str, Any] | None:
        """
        :returns: the Service object, or ``None`` when AYS does not know it.
        """
        what = f"get service {role}!{name}"
        code, body = await self.request(
            "GET", self._repo_path("service", _segment(role), _segment(name)), what,
            timeout=timeout, kind="GET service/{role}/{name}")
        if self._unknown(what, code, body):
            return None
        if code != 200:
            raise self.failure(what, code, body)
        service = self._json(what, body)
        if not isinstance(service, dict):
            raise BackendError(f"AYS answered {what} with something that is not a service")
        return service

    async def delete_service(self, role: str, name: str) -> bool:
        """
        Forget a service and its children (no action runs).

        :returns: ``False`` when AYS did not know it.
        """
        what = f"delete service {role}!{name}"
        code, body = await self.request(
            "DELETE", self._repo_path("service", _segment(role), _segment(name)), what,
            kind="DELETE service/{role}/{name}")
        if self._unknown(what, code, body):
            return False
        if code not in (200, 204):
            raise self.failure(what, code, body)
        return True
