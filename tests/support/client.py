"""
A small blocking HTTP client over ``http.client``, for tests that drive a
real daemon from the test thread (no reactor involved).
"""

from __future__ import annotations

import http.client
import json as jsonlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def call(
    base: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request on a fresh connection; the whole answer is read."""
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    all_headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if query:
        path += "?" + urllib.parse.urlencode(query)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """:returns: a ``multipart/form-data`` body with one file part, and its content type."""
    boundary = "rpoold-test-boundary-7d1c"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
