"""
The server's OpenAPI document as the client uses it: its operations (id,
method, path, parameters, body, answers) and what the server offers
beyond the contract (asynchronous operations, job output streams).  Every
command of ``rpool`` finds its request here, by operation id: the client
keeps no list of paths of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rpool.exits import UsageProblem

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_PATH_PARAMETER = re.compile(r"\{([^}/]+)\}")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")

#: Where a server lists its asynchronous operations: ``GET /operations/{id}``.
OPERATION_PATH = re.compile(r"^/operations/\{[^}/]+\}$")


def kebab(name: str) -> str:
    """``GetCPUInfo`` -> ``get-cpu-info``; ``node_info`` -> ``node-info``."""
    return "-".join(w.lower() for w in _WORD.findall(name)) or name.lower()


@dataclass
class Parameter:
    """A path or query parameter."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    description: str = ""

    @property
    def is_integer(self) -> bool:
        return self.schema.get("type") == "integer"


@dataclass
class Operation:
    """
    One operation of the document.

    :ivar success: the first 2xx status it declares.
    :ivar body_media_type: ``application/json``, ``multipart/form-data``
        or ``None`` (no body).
    :ivar answer_media_types: what its success answer may be.
    """

    id: str
    method: str
    path: str
    tag: str
    summary: str = ""
    description: str = ""
    deprecated: bool = False
    parameters: list[Parameter] = field(default_factory=list)
    body_media_type: str | None = None
    body_required: bool = False
    body_schema: dict[str, Any] = field(default_factory=dict)
    success: int = 200
    answer_media_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @property
    def path_parameters(self) -> list[Parameter]:
        """The path parameters, in the order the path names them."""
        by_name = {p.name: p for p in self.parameters if p.location == "path"}
        ordered = [by_name[n] for n in _PATH_PARAMETER.findall(self.path) if n in by_name]
        return ordered + [p for p in by_name.values() if p not in ordered]

    @property
    def query_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.location == "query"]

    @property
    def command_name(self) -> str:
        """The operation's name as a command: ``get-mem-info``."""
        return kebab(self.id)

    @property
    def is_async_capable(self) -> bool:
        """It declares a ``202`` answer or a ``Prefer`` header."""
        return "202" in self.statuses or any(
            p.location == "header" and p.name.lower() == "prefer" for p in self.parameters)

    def url_path(self, values: dict[str, Any]) -> str:
        """
        The path with its parameters filled in (percent-encoded).

        :raises UsageProblem: a path parameter is missing.
        """
        from urllib.parse import quote

        missing = [p.name for p in self.path_parameters if p.name not in values]
        if missing:
            raise UsageProblem(f"{self.id} needs the path parameter(s) {', '.join(missing)}")
        return _PATH_PARAMETER.sub(lambda m: quote(str(values[m.group(1)]), safe=""), self.path)


class Spec:
    """
    A parsed OpenAPI document.

    :ivar document: the document itself.
    :ivar operations: every operation, by id (aliases included).
    """

    def __init__(self, document: dict[str, Any]) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            raise ValueError("not an OpenAPI document: it has no 'paths'")
        self.document = document
        self.operations: dict[str, Operation] = {}
        for path, item in document["paths"].items():
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") or []
            for method in METHODS:
                raw = item.get(method)
                if isinstance(raw, dict):
                    op = self._operation(path, method, raw, shared)
                    self.operations[op.id] = op

    @property
    def title(self) -> str:
        info = self.document.get("info") or {}
        return f"{info.get('title', '')} {info.get('version', '')}".strip()

    def resolve(self, schema: Any) -> Any:
        """``schema`` with a top-level ``$ref`` into this document followed."""
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 16:
            target: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                    if isinstance(target, dict) else {}
            schema, seen = target, seen + 1
        return schema

    def _operation(self, path: str, method: str, raw: dict[str, Any],
                   shared: list[Any]) -> Operation:
        op_id = str(raw.get("operationId") or f"{method.upper()} {path}")
        tags = raw.get("tags") or ["default"]
        parameters = []
        for entry in [*shared, *(raw.get("parameters") or [])]:
            entry = self.resolve(entry)
            if not isinstance(entry, dict) or "name" not in entry:
                continue
            parameters.append(Parameter(
                name=str(entry["name"]), location=str(entry.get("in", "query")),
                required=bool(entry.get("required")) or entry.get("in") == "path",
                schema=self.resolve(entry.get("schema")) or {},
                description=str(entry.get("description", ""))))
        op = Operation(id=op_id, method=method.upper(), path=path, tag=str(tags[0]),
                       summary=str(raw.get("summary", "")), description=str(raw.get("description", "")),
                       deprecated=bool(raw.get("deprecated")), parameters=parameters)
        body = self.resolve(raw.get("requestBody"))
        if isinstance(body, dict) and isinstance(body.get("content"), dict) and body["content"]:
            content = body["content"]
            media = "application/json" if "application/json" in content else next(iter(content))
            op.body_media_type = media
            op.body_required = bool(body.get("required"))
            op.body_schema = self.resolve((content.get(media) or {}).get("schema")) or {}
        responses = raw.get("responses") or {}
        op.statuses = tuple(str(s) for s in responses)
        successes = sorted(int(s) for s in responses if str(s).isdigit() and 200 <= int(s) < 300)
        if successes:
            op.success = successes[0]
            answer = self.resolve(responses[str(successes[0])]) or {}
            op.answer_media_types = tuple((answer.get("content") or {}).keys())
        return op

    # Lookups ---------------------------------------------------------------------------------

    def operation(self, op_id: str) -> Operation:
        """
        :raises UsageProblem: the document has no such operation (the
            message suggests close names).
        """
        try:
            return self.operations[op_id]
        except KeyError:
            pass
        folded = {o.lower(): o for o in self.operations}
        folded.update({kebab(o): o for o in self.operations})
        if op_id.lower() in folded:
            return self.operations[folded[op_id.lower()]]
        import difflib

        close = difflib.get_close_matches(op_id, list(self.operations), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else " ('rpool operations' lists them)"
        raise UsageProblem(f"the server's document has no operation '{op_id}'{hint}")

    def listed(self) -> list[Operation]:
        """The operations that are not deprecated aliases, in document order."""
        return [op for op in self.operations.values() if not op.deprecated]

    def tags(self) -> dict[str, list[Operation]]:
        """The listed operations by tag, in document order."""
        grouped: dict[str, list[Operation]] = {}
        for op in self.listed():
            grouped.setdefault(op.tag, []).append(op)
        return grouped

    def operations_endpoint(self) -> Operation | None:
        """``GET /operations/{id}``, when the server runs requests as operations."""
        for op in self.operations.values():
            if op.method == "GET" and OPERATION_PATH.match(op.path):
                return op
        return None

    def output_stream(self, job_path: str) -> Operation | None:
        """``GET <job_path>/output`` as Server-Sent Events, when the server offers it."""
        for op in self.operations.values():
            if (op.method == "GET" and op.path == job_path.rstrip("/") + "/output"
                    and (not op.answer_media_types or "text/event-stream" in op.answer_media_types)):
                return op
        return None

    def find(self, method: str, path: str) -> Operation | None:
        """The operation whose path template matches the concrete ``path``."""
        for op in self.operations.values():
            if op.method == method.upper() and _template(op.path).match(path.split("?")[0]):
                return op
        return None


def _template(path: str) -> re.Pattern[str]:
    parts = _PATH_PARAMETER.split(path)
    pattern = "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts))
    return re.compile(f"^{pattern}$")
