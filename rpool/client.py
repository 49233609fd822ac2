"""
The HTTP client of the API (httpx): one connection pool per run, the
bearer token on every request, and each failure mapped to its error
(``rpool.exits``): an error status to ``ApiError``, no connection to
``Unreachable``, no answer in time to ``TimedOut``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from rpool import __version__
from rpool.exits import ApiError, TimedOut, Unreachable

#: Seconds to open a connection (the whole request has ``timeout``).
CONNECT_TIMEOUT = 5.0


@dataclass
class Answer:
    """
    One answer of the server.

    :ivar status: the HTTP status.
    :ivar headers: its headers (case-insensitive).
    :ivar content: the raw body.
    """

    status: int
    headers: httpx.Headers
    content: bytes
    media_type: str = field(init=False)

    def __post_init__(self) -> None:
        self.media_type = self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty)."""
        if not self.content:
            return None
        return json.loads(self.content)

    @property
    def is_json(self) -> bool:
        return self.media_type == "application/json" or self.media_type.endswith("+json")


def error_message(content: bytes) -> str:
    """The ``error`` of an ``{"error": ...}`` body, else the body's text (shortened)."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    text = content.decode("utf-8", "replace").strip()
    return text[:300] or "(no body)"


class ApiClient:
    """
    Requests to one server.

    :param url: the server's base URL (no trailing slash).
    :param token: sent as ``Authorization: Bearer <token>`` when not empty.
    :param timeout: seconds one request may take.
    :param transport: an httpx transport instead of the network (tests).
    """

    def __init__(self, url: str, token: str = "", timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        headers = {"User-Agent": f"rpool/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=url, headers=headers, transport=transport, follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)))

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, content: bytes | None = None,
                files: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                timeout: float | None = None, check: bool = True) -> Answer:
        """
        Send one request.

        :param path: the path (with its query, if any), or a full URL of this server.
        :param json_body: a body sent as JSON (unless ``None``).
        :param check: raise ``ApiError`` for a 4xx or 5xx answer.
        :returns: the answer.
        :raises ApiError: an error status (with ``check``).
        :raises Unreachable: no connection.
        :raises TimedOut: no answer within the timeout.
        """
        extra: dict[str, Any] = {}
        if json_body is not None:
            extra["json"] = json_body
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        with self._errors(method, path):
            response = self._http.request(method, path, params=params, content=content,
                                          files=files, headers=headers, **extra)
        answer = Answer(response.status_code, response.headers, response.content)
        if check and answer.status >= 400:
            raise ApiError(method, path, answer.status, error_message(answer.content))
        return answer

    @contextmanager
    def stream(self, method: str, path: str, *, headers: dict[str, str] | None = None,
               read_timeout: float | None = None) -> Iterator[httpx.Response]:
        """
        A streamed answer (Server-Sent Events): the response, its body not
        read yet.  ``read_timeout`` bounds each wait for more of the body
        (``None``: none).

        :raises Unreachable: no connection.
        """
        timeout = httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout), read=read_timeout)
        with self._errors(method, path), self._http.stream(
                method, path, headers=headers, timeout=timeout) as response:
            yield response

    @contextmanager
    def _errors(self, method: str, path: str) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectTimeout:
            raise Unreachable(self.url, "no connection within the timeout") from None
        except httpx.ConnectError as e:
            raise Unreachable(self.url, _reason(e)) from None
        except httpx.TimeoutException:
            raise TimedOut(f"{method} {path}: no answer within {self.timeout:g} s") from None
        except httpx.RemoteProtocolError as e:
            raise Unreachable(self.url, f"the connection broke: {_reason(e)}") from None
        except httpx.NetworkError as e:
            raise Unreachable(self.url, _reason(e)) from None


def _reason(error: Exception) -> str:
    """The last words of an httpx error ('[Errno 111] Connection refused')."""
    text = str(error) or type(error).__name__
    return text.rsplit("] ", 1)[-1] if text.startswith("[") else text
