"""
Injected faults: actions that fail or take time, AYS endpoints that answer
a given status, stall or drop the connection.  Set through ``/_sim/``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any


class ControlError(ValueError):
    """A fault specification that makes no sense."""


def _times(spec: dict[str, Any]) -> int | None:
    """``times`` (default 1); ``always: true`` or ``times: null`` means without end."""
    if spec.get("always"):
        return None
    times = spec.get("times", 1)
    if times is None:
        return None
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ControlError("times must be a positive integer or null")
    return times


def _text(spec: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = spec.get(key)
    if value is None:
        if required:
            raise ControlError(f"{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} must be a non-empty string")
    return value


def _seconds(spec: dict[str, Any], key: str) -> float:
    value = spec.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ControlError(f"{key} must be a non-negative number of seconds")
    return float(value)


@dataclass
class ActionFault:
    """
    Make an action fail with ``error`` and/or take ``delay`` seconds, for
    ``times`` executions (``None``: always).
    """

    actor: str
    action: str
    instance: str | None = None
    error: str | None = None
    delay: float = 0.0
    times: int | None = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    hits: int = 0

    @classmethod
    def from_spec(cls, spec: Any) -> ActionFault:
        if not isinstance(spec, dict):
            raise ControlError("an action fault is a JSON object")
        fault = cls(
            actor=str(_text(spec, "actor", True)),
            action=str(_text(spec, "action", True)),
            instance=_text(spec, "instance"),
            error=_text(spec, "error"),
            delay=_seconds(spec, "delay"),
            times=_times(spec),
        )
        if fault.error is None and not fault.delay:
            raise ControlError("give error (a message) and/or delay (seconds)")
        return fault

    def matches(self, actor: str, action: str, instance: str) -> bool:
        return (self.actor == actor and self.action == action
                and (self.instance is None or self.instance == instance))

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "actor": self.actor, "action": self.action, "instance": self.instance,
                "error": self.error, "delay": self.delay, "times": self.times, "hits": self.hits}


@dataclass
class EndpointFault:
    """
    Make requests whose path matches ``path`` (a regular expression, whole
    path) and ``method`` answer ``status`` with ``body``, stall (``True``:
    until the fault is removed; a number: that many seconds, then answer
    normally or with ``status``) or lose their connection.
    """

    path: str
    method: str | None = None
    status: int | None = None
    body: Any = None
    stall: float | bool = False
    drop: bool = False
    times: int | None = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    hits: int = 0

    @classmethod
    def from_spec(cls, spec: Any) -> EndpointFault:
        if not isinstance(spec, dict):
            raise ControlError("an endpoint fault is a JSON object")
        path = str(_text(spec, "path", True))
        try:
            re.compile(path)
        except re.error as e:
            raise ControlError(f"path is not a regular expression: {e}") from None
        method = _text(spec, "method")
        status = spec.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                   or not 100 <= status <= 599):
            raise ControlError("status must be an HTTP status code")
        stall = spec.get("stall", False)
        if not isinstance(stall, bool):
            stall = _seconds(spec, "stall")
        drop = spec.get("drop", False)
        if not isinstance(drop, bool):
            raise ControlError("drop must be a boolean")
        if status is None and not stall and not drop:
            raise ControlError("give status, stall and/or drop")
        return cls(path=path, method=method.upper() if method else None, status=status,
                   body=spec.get("body"), stall=stall, drop=drop, times=_times(spec))

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method == method.upper())
                and re.fullmatch(self.path, path) is not None)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "method": self.method, "status": self.status,
                "body": self.body, "stall": self.stall, "drop": self.drop, "times": self.times,
                "hits": self.hits}


class Faults:
    """The faults in force, consumed as they fire."""

    def __init__(self) -> None:
        self.actions: list[ActionFault] = []
        self.endpoints: list[EndpointFault] = []

    def take_action(self, actor: str, action: str, instance: str) -> ActionFault | None:
        """The first fault matching this action, counted as fired."""
        for fault in self.actions:
            if fault.matches(actor, action, instance):
                self._fire(fault, self.actions)
                return fault
        return None

    def take_endpoint(self, method: str, path: str) -> EndpointFault | None:
        for fault in self.endpoints:
            if fault.matches(method, path):
                self._fire(fault, self.endpoints)
                return fault
        return None

    @staticmethod
    def _fire(fault: Any, faults: list[Any]) -> None:
        fault.hits += 1
        if fault.times is not None and fault.hits >= fault.times:
            faults.remove(fault)

    def clear(self) -> None:
        self.actions.clear()
        self.endpoints.clear()
