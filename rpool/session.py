"""
One run of ``rpool``: its settings, the HTTP client, the server's document
(loaded when a command first needs it) and where the output goes; and
``send``, the one way every command calls an operation, by its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rpool.client import Answer, ApiClient
from rpool.render import Output
from rpool.settings import Settings, cache_dir
from rpool.spec import Operation, Spec
from rpool.spec_cache import SpecCache
from rpool.waiting import Outcome, Waiter, follow_operation, operation_location, spinner

#: Seconds a ``--wait`` may take unless told (``--wait-timeout``).
DEFAULT_WAIT_TIMEOUT = 300.0


@dataclass
class Sent:
    """
    What ``Session.send`` came to.

    :ivar outcome: status, body and location (at the end of its operation,
        when it ran as one).
    :ivar answer: the first answer (its raw content for downloads).
    :ivar operation: the location of the server's operation, when it ran as one.
    """

    op: Operation
    outcome: Outcome
    answer: Answer
    operation: str | None = None


class Session:
    """
    :param settings: the run's settings.
    :param json_mode: ``--json`` was given.
    :param cache: cache the server's document (``--no-cache``: fetch it each run).
    :param refresh: fetch the document even when a cached copy is young enough.
    """

    def __init__(self, settings: Settings, json_mode: bool = False, cache: bool = True,
                 refresh: bool = False) -> None:
        self.settings = settings
        self.output = Output(json_mode)
        self.cache = cache
        self.refresh = refresh
        self._client: ApiClient | None = None
        self._specs: SpecCache | None = None
        self._spec: Spec | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.settings.url, self.settings.token, self.settings.timeout)
        return self._client

    @property
    def spec(self) -> Spec:
        """The server's document (cached per server URL, see ``rpool.spec_cache``)."""
        if self._spec is None:
            self._specs = SpecCache(self.client, cache_dir() if self.cache else None, self.settings.spec_ttl)
            self._spec = self._specs.load(refresh=self.refresh)
        return self._spec

    def operation(self, op_id: str) -> Operation:
        """
        The operation ``op_id`` of the server's document; a cached document
        that lacks it is fetched again once (the server may be newer).

        :raises UsageProblem: the server's document has no such operation.
        """
        spec = self.spec
        if op_id in spec.operations:
            return spec.operations[op_id]
        if self._specs is not None and not self._specs.fresh:
            self._spec = spec = self._specs.fetch()
        return spec.operation(op_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def send(self, op_id: str, path: dict[str, Any] | None = None, *,
             query: dict[str, Any] | None = None, body: Any = None,
             files: dict[str, Any] | None = None, wait: bool = False, detach: bool = False,
             wait_timeout: float = DEFAULT_WAIT_TIMEOUT, label: str = "") -> Sent:
        """
        Call the operation ``op_id`` with its path parameters ``path``.

        :param wait: run it as the server's operation when the server has
            them (``Prefer: respond-async``) and follow it to its end.
        :param detach: ask for the server's operation but do not follow it.
        :param label: what the spinner says while it runs.
        :raises ApiError: the server answered an error (or the operation ended in one).
        :raises Unreachable, TimedOut, Failed: see ``rpool.exits``.
        """
        op = self.operation(op_id)
        url = op.url_path(path or {})
        headers: dict[str, str] = {}
        operations = self.spec.operations_endpoint() if (wait or detach) and op.method != "GET" else None
        if operations is not None:
            headers["Prefer"] = "respond-async"
        label = label or f"{op.id} {url}"
        with spinner(label):
            answer = self.client.request(op.method, url, params=query, json_body=body,
                                         files=files, headers=headers)
        decoded = answer.json() if answer.is_json and answer.content else None
        sent = Sent(op, Outcome(answer.status, decoded, answer.location), answer)
        if operations is None or answer.status != 202:
            return sent
        location = operation_location(answer.location, decoded)
        if location is None or self.spec.find("GET", urlsplit(location).path) is not operations:
            return sent  # a 202 of the contract's own (a started process's job)
        sent.operation = location
        if detach:
            return sent
        server_wait = any(p.name == "wait" for p in operations.query_parameters)
        with Waiter(label, wait_timeout) as waiter:
            sent.outcome = follow_operation(self.client, location, waiter, op.method, url, server_wait)
        return sent
