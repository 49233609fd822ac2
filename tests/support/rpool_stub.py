"""
A small server that speaks what rpoold's API may grow, for the client's
tests of what the daemon does not serve yet: asynchronous operations
(``Prefer: respond-async`` -> ``202`` + ``/operations/{id}``, read with
``?wait=``), a job's output as Server-Sent Events, an operation the
contract does not have, and a ``503``.  It runs in a thread of the test
and records every request it gets.

Its nodes: ``n1`` reboots through an operation that succeeds (and its
boot time changes), ``n2`` through one that fails with a ``502``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JOB = {"id": "j1", "name": "core.system", "level": 0, "startTime": 1, "stdout": "hello\n",
       "stderr": "warn\n", "state": "success", "data": ""}


def _op(op_id: str, tag: str, success: str = "200", media: str = "application/json",
        parameters: tuple[dict[str, Any], ...] = (), body: bool = False,
        extra_statuses: tuple[str, ...] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op_id, "tags": [tag], "summary": op_id,
        "responses": {success: {"description": "success", "content": {media: {"schema": {}}}},
                      **{s: {"description": s} for s in extra_statuses}},
    }
    if success == "204":
        doc["responses"][success] = {"description": "success"}
    if parameters:
        doc["parameters"] = list(parameters)
    if body:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}
    return doc


def _path(*names: str) -> tuple[dict[str, Any], ...]:
    return tuple({"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names)


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "stub", "version": "2"},
    "paths": {
        "/nodes": {"get": _op("ListNodes", "nodes")},
        "/nodes/{nodeid}": {"get": _op("GetNode", "nodes", parameters=_path("nodeid"))},
        "/nodes/{nodeid}/info": {"get": _op("GetNodeOSInfo", "node_info", parameters=_path("nodeid"))},
        "/nodes/{nodeid}/reboot": {"post": _op("RebootNode", "nodes", "204", parameters=_path("nodeid"),
                                               extra_statuses=("202",))},
        "/operations/{operationid}": {"get": _op(
            "GetOperation", "operations",
            parameters=(*_path("operationid"),
                        {"name": "wait", "in": "query", "required": False, "schema": {"type": "integer"}}))},
        "/nodes/{nodeid}/containers/{containername}/processes": {"post": _op(
            "StartContainerProcess", "container_processes", "202",
            parameters=_path("nodeid", "containername"), body=True)},
        "/nodes/{nodeid}/containers/{containername}/jobs/{jobid}": {"get": _op(
            "GetContainerJob", "container_jobs", parameters=_path("nodeid", "containername", "jobid"))},
        "/nodes/{nodeid}/containers/{containername}/jobs/{jobid}/output": {"get": _op(
            "StreamContainerJobOutput", "container_jobs", media="text/event-stream",
            parameters=_path("nodeid", "containername", "jobid"))},
        "/widgets/{widgetid}": {"get": _op("GetWidget", "widgets", parameters=_path("widgetid"))},
        "/broken": {"get": _op("GetBroken", "broken")},
    },
}


@dataclass
class Seen:
    """One request the stub got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class StubState:
    """What the stub knows, and what it was asked."""

    boot: dict[str, int] = field(default_factory=lambda: {"n1": 1000, "n2": 1000})
    reads: dict[str, int] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, method: str, prefix: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        with self.state.lock:
            self.state.seen.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                        {k.lower(): v for k, v in self.headers.items()}))
        return parts.path, parse_qs(parts.query)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode() if value is not None else b""
        self.send_response(status)
        for name, text in (headers or {}).items():
            self.send_header(name, text)
        if value is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _ = self._record()
        parts = path.strip("/").split("/")
        if path == "/openapi.json":
            self._json(200, DOCUMENT)
        elif path == "/nodes":
            self._json(200, [self._node(n) for n in ("n1", "n2")])
        elif len(parts) == 2 and parts[0] == "nodes":
            self._json(200, self._node(parts[1]))
        elif len(parts) == 3 and parts[2] == "info":
            self._json(200, {"bootTime": self.state.boot[parts[1]], "hostname": parts[1]})
        elif parts[0] == "operations":
            self._operation(parts[1])
        elif path.endswith("/jobs/j1/output"):
            self._stream()
        elif path.endswith("/jobs/j1"):
            self._json(200, JOB)
        elif parts[0] == "widgets":
            self._json(200, {"id": parts[1], "color": "blue"})
        elif path == "/broken":
            self._json(503, {"error": "backend not ready"})
        else:
            self._json(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:
        path, _ = self._record()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[2] == "reboot":
            node = parts[1]
            if self.headers.get("Prefer", "").lower() == "respond-async":
                self._json(202, {"id": f"op-{node}", "status": "running"},
                           {"Location": f"/operations/op-{node}"})
            else:
                self.state.boot[node] += 1000
                self._json(204, None)
        elif path.endswith("/processes"):
            self._json(202, None, {"Location": f"/nodes/{parts[1]}/containers/{parts[3]}/jobs/j1"})
        else:
            self._json(404, {"error": f"no route {path}"})

    def _node(self, node: str) -> dict[str, Any]:
        return {"id": node, "hostname": node, "status": "running", "ipaddress": "10.0.0.1"}

    def _operation(self, op_id: str) -> None:
        with self.state.lock:
            reads = self.state.reads[op_id] = self.state.reads.get(op_id, 0) + 1
        if op_id == "op-n2":
            self._json(200, {"id": op_id, "status": "failed",
                             "response": {"status": 502, "body": {"error": "node n2 unreachable"}}})
        elif reads < 2:
            self._json(200, {"id": op_id, "status": "running", "progress": 0.5})
        else:
            if reads == 2:
                self.state.boot["n1"] += 1000
            self._json(200, {"id": op_id, "status": "succeeded", "response": {"status": 204}})

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        events = [
            'event: stdout\ndata: "hello\\n"\n\n',
            ": still there\n\n",
            'event: stderr\ndata: "warn\\n"\n\n',
            f"event: end\ndata: {json.dumps(JOB)}\n\n",
        ]
        for event in events:
            self.wfile.write(event.encode())
            self.wfile.flush()
        self.close_connection = True


class StubServer:
    """The stub on a free loopback port, in a thread: ``with StubServer() as stub: stub.url``."""

    def __init__(self) -> None:
        self.state = StubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
