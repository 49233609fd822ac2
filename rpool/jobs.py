"""
Following a job to its end and printing its output: through the server's
output stream when its document offers ``GET .../jobs/{jobid}/output`` as
Server-Sent Events, else by reading the job (``GetContainerJob``) until
it is no longer ``running``.  Output is written as it comes (what a read
of the job adds to its ``stdout``/``stderr``), each on its own stream.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from rpool.client import error_message
from rpool.exits import ApiError, Failed, RpoolError
from rpool.session import Session
from rpool.waiting import Waiter

#: Job states that mean it ended well, and the one that means it goes on.
SUCCESS, RUNNING = "success", "running"
#: SSE event names that carry output, and those that end the stream.
OUTPUT_EVENTS = ("stdout", "stderr")
END_EVENTS = ("end", "done", "result", "exit", "close", "finished")


class Printer:
    """Writes a job's output once: what a later read of the job adds is written, no more."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.streams = {"stdout": stdout or sys.stdout, "stderr": stderr or sys.stderr}
        self.written = {"stdout": 0, "stderr": 0}

    def write(self, stream: str, text: str) -> None:
        """Write more of ``stream`` as it comes (from the output stream)."""
        if text:
            self.streams[stream].write(text)
            self.streams[stream].flush()
            self.written[stream] += len(text)

    def catch_up(self, job: dict[str, Any]) -> None:
        """Write what the job's ``stdout``/``stderr`` hold beyond what was written."""
        for stream in ("stdout", "stderr"):
            text = job.get(stream)
            if isinstance(text, str) and len(text) > self.written[stream]:
                self.write(stream, text[self.written[stream]:])


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` of each Server-Sent Event in ``lines`` (``message`` when unnamed)."""
    event, data = "", []  # type: str, list[str]
    for line in lines:
        if not line:
            if data or event:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event or "message", "\n".join(data)


def _decoded(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def stream_output(session: Session, path: str, printer: Printer) -> dict[str, Any] | None:
    """
    Print the job's output from its stream at ``path`` until it ends.

    :returns: the job's result when the stream's last event holds it, else ``None``.
    :raises ApiError: the stream answered an error.
    """
    with session.client.stream("GET", path, headers={"Accept": "text/event-stream"}) as response:
        if response.status_code >= 400:
            response.read()
            raise ApiError("GET", path, response.status_code, error_message(response.content))
        for event, data in sse_events(response.iter_lines()):
            value = _decoded(data)
            if event in OUTPUT_EVENTS:
                if isinstance(value, dict) and isinstance(value.get("text"), str):
                    printer.write(event, value["text"])  # rpoold's: {"text": ...}
                else:
                    printer.write(event, value if isinstance(value, str) else data + "\n")
            elif event in END_EVENTS:
                return value if isinstance(value, dict) else None
            elif isinstance(value, dict) and value.get("stream") in OUTPUT_EVENTS:
                text = value.get("data", value.get("text", value.get("line", "")))
                printer.write(str(value["stream"]), str(text))
            elif isinstance(value, dict) and value.get("state") not in (None, RUNNING):
                return value
    return None


def follow_job(session: Session, nodeid: str, container: str, jobid: str,
               waiter: Waiter, printer: Printer) -> dict[str, Any]:
    """
    Follow the job ``jobid`` of ``container`` to its end, printing its output.

    :returns: the job's last ``JobResult``.
    :raises TimedOut: it did not end within ``waiter``'s deadline.
    """
    params = {"nodeid": nodeid, "containername": container, "jobid": jobid}
    job_op = session.operation("GetContainerJob")
    stream = session.spec.output_stream(job_op.path)
    if stream is not None:
        try:
            ended = stream_output(session, stream.url_path(params), printer)
        except RpoolError:
            ended = None  # The stream failed: read the job instead.
        if ended is not None and ended.get("state") not in (None, RUNNING) and "stdout" in ended:
            printer.catch_up(ended)
            return ended
    while True:
        waiter.check()
        job = session.send("GetContainerJob", params).outcome.body or {}
        printer.catch_up(job)
        state = job.get("state")
        if state != RUNNING:
            return job
        waiter.update(f"job {jobid[:8]} running")
        waiter.pause()


def check_ended(job: dict[str, Any]) -> None:
    """:raises Failed: the job did not end in ``success``."""
    state = job.get("state")
    if state != SUCCESS:
        detail = f": {job['data']}" if job.get("data") else ""
        raise Failed(f"job {job.get('id', '')} ended {state}{detail}")
