"""
Waiting for what a request started, with a spinner (or a bar, when the
server reports progress) on stderr while it lasts, drawn only when stderr
is a terminal, and a deadline (``--wait-timeout``):

- with the server's asynchronous operations (its ``/openapi.json`` lists
  ``GET /operations/{id}``): the request is sent with ``Prefer:
  respond-async``; a ``202`` names its operation (``Location``, or an
  ``id`` in the body), which is read with ``?wait=SECONDS`` (when the
  document declares ``wait``; else polled) until it ends;
- else by polling the resource: a node until it has booted again, a VM
  until its status is no longer a passing one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from rpool.client import ApiClient, error_message
from rpool.exits import ApiError, Failed, TimedOut
from rpool.render import stderr_console

#: Seconds between two polls: the first, and at most.
FIRST_POLL, LONGEST_POLL = 0.1, 1.0
#: Longest ``?wait=`` asked of the server for one read of an operation.
LONGEST_SERVER_WAIT = 30

RUNNING_STATES = {"accepted", "pending", "queued", "running", "in_progress", "inprogress",
                  "started", "starting", "waiting", "new", "scheduled"}
SUCCEEDED_STATES = {"succeeded", "success", "successful", "done", "completed", "complete",
                    "finished", "ok"}
FAILED_STATES = {"failed", "failure", "error", "errored", "cancelled", "canceled", "aborted",
                 "timeout", "timedout", "timed_out", "killed"}


class Waiter:
    """
    The time and the display of one wait.

    :param label: what is awaited ("rebooting 525400123456").
    :param timeout: seconds it may take.
    """

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self._interval = FIRST_POLL
        console = stderr_console()
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=not console.is_terminal)
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> Waiter:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    @property
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def update(self, state: str = "", fraction: float | None = None) -> None:
        """Show ``state`` beside the label, and a bar when ``fraction`` (0..1) is known."""
        description = f"{self.label}: {state}" if state else self.label
        if fraction is None:
            self._progress.update(self._task, description=description, total=None)
        else:
            self._progress.update(self._task, description=description, total=100,
                                  completed=max(0.0, min(1.0, fraction)) * 100)

    def check(self) -> None:
        """:raises TimedOut: the deadline has passed."""
        if self.remaining <= 0:
            raise TimedOut(f"{self.label}: not done after {self.timeout:g} s")

    def pause(self) -> None:
        """Wait before the next poll (a little longer each time), within the deadline."""
        self.check()
        time.sleep(max(0.0, min(self._interval, self.remaining)))
        self._interval = min(LONGEST_POLL, self._interval * 1.5)
        self.check()


@contextmanager
def spinner(label: str) -> Iterator[None]:
    """A spinner on stderr (when it is a terminal) while one request is in flight."""
    console = stderr_console()
    if not console.is_terminal:
        yield
        return
    with console.status(label):
        yield


# Operations --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """
    What a request came to, answered at once or at the end of its operation.

    :ivar status: the HTTP status of the result.
    :ivar body: its decoded JSON body (``None``: none).
    :ivar location: the ``Location`` of what it made, if any.
    """

    status: int
    body: Any = None
    location: str | None = None
    #: The server's operation as it ended, when the request ran as one.
    operation: dict[str, Any] | None = None


def operation_state(operation: Any) -> str:
    """``running``, ``succeeded`` or ``failed``: how far an operation's representation says it is."""
    if not isinstance(operation, dict):
        return "running"
    for key in ("status", "state", "phase"):
        value = operation.get(key)
        if isinstance(value, str):
            word = value.strip().lower().replace("-", "_").replace(" ", "_")
            if word in SUCCEEDED_STATES:
                return "succeeded"
            if word in FAILED_STATES:
                return "failed"
            if word in RUNNING_STATES:
                return "running"
    if operation.get("done") is True or operation.get("finished") is True:
        return "failed" if operation.get("error") else "succeeded"
    return "running"


def operation_fraction(operation: Any) -> float | None:
    """The progress an operation reports (``progress`` 0..1 or 0..100), if any."""
    if not isinstance(operation, dict):
        return None
    value = operation.get("progress", operation.get("percent"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) / 100 if value > 1 else float(value)


def operation_location(answer_location: str | None, body: Any) -> str | None:
    """Where a ``202`` answer's operation is read: its ``Location``, else what its body names."""
    if answer_location:
        return answer_location
    if isinstance(body, dict):
        for key in ("href", "location", "self", "url"):
            if isinstance(body.get(key), str):
                return str(body[key])
        if isinstance(body.get("id"), str):
            return f"/operations/{body['id']}"
    return None


def operation_outcome(operation: dict[str, Any], method: str, path: str) -> Outcome:
    """
    The result of an operation that ended, from its representation: a
    ``response`` (or ``result``, as rpoold's) object with ``status``,
    ``body``, ``location``, or those keys on the operation itself; a
    failed one's ``error`` with its ``status`` and ``message``.

    :raises ApiError: it ended with an error status.
    :raises Failed: it failed without one.
    """
    result = operation.get("result")
    response: dict[str, Any]
    if isinstance(operation.get("response"), dict):
        response = operation["response"]
        body = response.get("body", result)
    elif isinstance(result, dict) and _status_of(result) is not None:
        # rpoold's: ``result`` is what the synchronous call would have answered.
        response, body = result, result.get("body")
    else:
        response, body = {}, result
    error = operation.get("error") or response.get("error")
    status = _status_of(response) or _status_of(operation) or (_status_of(error) if isinstance(error, dict)
                                                               else None)
    location = response.get("location") or operation.get("location") or (
        None if response else operation.get("resource"))
    if isinstance(body, dict) and isinstance(body.get("error"), str) and status and status >= 400:
        error = body["error"]
    if status is not None and status >= 400:
        text = _error_text(error) or f"operation {operation.get('id', '')} failed"
        raise ApiError(method, path, status, text)
    if operation_state(operation) == "failed":
        raise Failed(f"{method} {path}: operation {operation.get('id', '')} "
                     f"{operation.get('status') or operation.get('state')}: {_error_text(error)}")
    return Outcome(status or 200, body, location if isinstance(location, str) else None)


def _status_of(item: dict[str, Any]) -> int | None:
    for key in ("status_code", "statusCode", "http_status", "code", "status"):
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("error") or error.get("message") or error)
    return str(error or "")


def follow_operation(client: ApiClient, location: str, waiter: Waiter, method: str, path: str,
                     server_wait: bool) -> Outcome:
    """
    Read the operation at ``location`` until it ends (``?wait=`` when
    ``server_wait``, else polling), within ``waiter``'s deadline.

    :returns: its outcome.
    :raises ApiError, Failed, TimedOut: it failed, or did not end in time.
    """
    while True:
        waiter.check()
        params: dict[str, Any] = {}
        timeout = None
        if server_wait:
            seconds = max(1, min(LONGEST_SERVER_WAIT, int(waiter.remaining)))
            params["wait"] = seconds
            timeout = client.timeout + seconds
        asked = time.monotonic()
        answer = client.request("GET", location, params=params, timeout=timeout, check=False)
        took = time.monotonic() - asked
        if answer.status in (301, 302, 303, 307, 308) and answer.location:
            # Done, and the result is elsewhere.
            final = client.request("GET", answer.location)
            return Outcome(final.status, final.json() if final.is_json else None, answer.location)
        if answer.status >= 400:
            raise ApiError("GET", location, answer.status, error_message(answer.content))
        operation = answer.json() if answer.is_json else None
        state = operation_state(operation)
        if state != "running" and isinstance(operation, dict):
            outcome = operation_outcome(operation, method, path)
            outcome.operation = operation
            return outcome
        waiter.update(str((operation or {}).get("status") or "running"), operation_fraction(operation))
        if not server_wait or took < FIRST_POLL:
            # Polling, or a server that did not hold the read: pace the reads.
            waiter.pause()

