"""
core0's wire format: the keys of a node's Redis, the command payload, and
the result object with its states, decoded into data or rpoold errors.

Nothing here does I/O; ``plugins.core0.connection`` moves the bytes.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any

from rpoold.errors import BackendError, BackendTimeout, BadRequest

#: The command queue every node's agent pops (``BLPOP``).
QUEUE = "core:default"

SUCCESS = "SUCCESS"
ERROR = "ERROR"
TIMEOUT = "TIMEOUT"
KILLED = "KILLED"
UNKNOWN_CMD = "UNKNOWN_CMD"
#: The agent spells it ``DUPILICATE_ID``; later documents ``DUPLICATE_ID``.
DUPLICATE_IDS = frozenset({"DUPILICATE_ID", "DUPLICATE_ID"})

#: Levels whose ``data`` is a JSON document (result JSON, full job result).
JSON_LEVELS = frozenset({20, 30})


class JobIds:
    """
    Fresh job ids, spelled as UUIDs: 76 random bits drawn once (per
    process: each worker draws its own), then a counter in the last 48
    bits; cheaper than a ``uuid4`` per command, and as unique for the
    agent's queue.
    """

    def __init__(self) -> None:
        head = os.urandom(10).hex()
        self.prefix = f"{head[:8]}-{head[8:12]}-4{head[13:16]}-{head[16:20]}-"
        self.counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def __call__(self) -> str:
        """:returns: an id no other call of this process answered."""
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFF:012x}"


#: The job ids of this process.
new_job_id = JobIds()


def result_key(job_id: str) -> str:
    return f"result:{job_id}"


def flag_key(job_id: str) -> str:
    return f"result:{job_id}:flag"


def payload(job_id: str, command: str, arguments: dict[str, Any]) -> str:
    """The JSON pushed on ``core:default`` (``arguments`` always an object)."""
    return json.dumps({"id": job_id, "command": command, "arguments": arguments})


def inner_command(command: str, arguments: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    """
    The ``command`` argument of ``corex.dispatch`` (its id is ignored by core0).

    :param stream: the later protocol's ``stream`` flag (the output is
        pushed to ``stream:<id>`` as it is written); left out when false.
    """
    inner: dict[str, Any] = {"command": command, "arguments": arguments, "queue": "", "tags": ""}
    if stream:
        inner["stream"] = True
    return inner


def stream_key(job_id: str) -> str:
    """Where the later protocol's agent pushes a streamed job's output."""
    return f"stream:{job_id}"


class ProtocolError(BackendError):
    """The node answered something that is not a core0 result object."""


class CommandFailed(BackendError):
    """
    A command ended in a state other than the ones the caller accepts.

    :ivar node: the node id.
    :ivar command: the command name.
    :ivar state: core0's final state (``ERROR``, ``KILLED``, ...).
    :ivar detail: the agent's message (an error text, stderr, ...).
    :ivar result: the ``Result``.
    """

    def __init__(self, node: str, result: Result) -> None:
        self.node = node
        self.command = result.command
        self.state = result.state
        self.detail = result.message()
        self.result = result
        if result.state == UNKNOWN_CMD:
            text = f"node '{node}' does not know the command '{result.command}'"
        elif result.state in DUPLICATE_IDS:
            text = f"node '{node}' refused job id '{result.id}' for '{result.command}': duplicate id"
        elif result.state == KILLED:
            text = f"node '{node}': '{result.command}' was killed"
        else:
            text = f"node '{node}': '{result.command}' failed: {self.detail or result.state}"
        super().__init__(text)


def refused_as_bad_request(error: CommandFailed) -> Exception:
    """
    A command the node refused (``ERROR``: bad arguments for its state) as
    a bad request, with the agent's message; other failures stay as they are.
    """
    return BadRequest(error.detail or str(error)) if error.state == ERROR else error


class CommandTimedOut(BackendTimeout):
    """The agent killed the command for running longer than its ``max_time``."""


@dataclass(frozen=True)
class Result:
    """One core0 result object (protocol reference, section 2)."""

    id: str
    command: str
    state: str
    level: int
    data: str
    streams: list[str] | None
    starttime: int
    container: int
    raw: dict[str, Any] = field(repr=False, compare=False)
    #: The decoded payload, once ``value`` made it.
    _decoded: list[Any] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str | bytes, node: str) -> Result:
        """
        :raises ProtocolError: not a result object.
        """
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as e:
            raise ProtocolError(f"node '{node}' sent an unreadable result: {e}") from None
        return cls.from_object(raw, node)

    @classmethod
    def from_object(cls, raw: Any, node: str) -> Result:
        """
        A result object already decoded from JSON.

        :raises ProtocolError: not a result object.
        """
        try:
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            streams = raw.get("streams")
            data = raw.get("data")
            return cls(
                id=str(raw["id"]),
                command=str(raw.get("command", "")),
                state=str(raw["state"]),
                level=int(raw.get("level") or 0),
                data=data if isinstance(data, str) else "",
                streams=[str(s) for s in streams] if isinstance(streams, list) else None,
                starttime=int(raw.get("starttime") or 0),
                container=int(raw.get("container") or 0),
                raw=raw,
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ProtocolError(f"node '{node}' sent an unreadable result: {e}") from None

    @property
    def stdout(self) -> str:
        return self.streams[0] if self.streams else ""

    @property
    def stderr(self) -> str:
        return self.streams[1] if self.streams and len(self.streams) > 1 else ""

    def value(self) -> Any:
        """
        The result's payload: the decoded JSON of a level-20/30 result,
        the text otherwise (``zerotier.list`` data keeps its leading
        newline, so it is decoded here too).  Decoded once: the callers
        who shared a run get the same value, which they only read (as the
        mock's in-process client hands out its model's own values).
        """
        if self._decoded:
            return self._decoded[0]
        value = self._value()
        self._decoded.append(value)
        return value

    def _value(self) -> Any:
        if self.level in JSON_LEVELS:
            text = self.data.strip()
            if not text:
                return None
            try:
                return json.loads(text)
            except ValueError:
                return self.data
        return self.data

    def message(self) -> str:
        """What went wrong, as the agent put it."""
        if self.level in JSON_LEVELS:
            value = self.value()
            if isinstance(value, str):
                return value
            if value is not None:
                return json.dumps(value)
        if self.stderr.strip():
            return self.stderr.strip().splitlines()[-1]
        if self.data.strip():
            return self.data.strip()
        return ""


def check(result: Result, node: str, accept: frozenset[str] = frozenset({SUCCESS})) -> Result:
    """
    :returns: ``result`` if its state is one of ``accept``.
    :raises CommandTimedOut: the agent stopped the job at its ``max_time``.
    :raises CommandFailed: any other state.
    """
    if result.state in accept:
        return result
    if result.state == TIMEOUT:
        raise CommandTimedOut(f"node '{node}': '{result.command}' ran past its time limit")
    raise CommandFailed(node, result)
