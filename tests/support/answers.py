"""
What a good answer looks like, as assertions shared by the family tests.
"""

from __future__ import annotations

from typing import Any

from rpoold.response_shaping import ResponseShaper
from testbed.http_api import Api, Reply

#: Checks answers against the contract's response schemas.
RESPONSES = ResponseShaper()


def expect(reply: Reply, status: int) -> Reply:
    """Assert the status, showing the body when it is wrong."""
    assert reply.status == status, f"expected {status}, got {reply}"
    return reply


def body_of(reply: Reply, operation: str, status: int = 200) -> Any:
    """
    Assert a JSON answer of ``operation`` with ``status`` whose body matches
    the contract's response schema.

    :returns: the decoded body.
    """
    expect(reply, status)
    assert reply.header("content-type") == "application/json", reply.headers
    value = reply.json()
    problems = RESPONSES.problems(operation, value)
    assert not problems, f"{operation} answered a body off the contract: {problems}\n{value}"
    return value


def no_content(reply: Reply, status: int = 204) -> Reply:
    """Assert an answer without a body, and so without a content type."""
    expect(reply, status)
    assert reply.body == b"", reply
    assert reply.header("content-type") is None, reply.headers
    return reply


def error_of(reply: Reply, status: int, *words: str) -> str:
    """
    Assert an error answer: ``status``, ``{"error": message}`` as JSON, no
    traceback, and a message naming each of ``words`` (case-insensitive).

    :returns: the message.
    """
    expect(reply, status)
    message = reply.error()
    assert "Traceback" not in message and 'File "' not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"error does not name {word!r}: {message!r}"
    return message


MALFORMED_JSON = b'{"name": "x", '


async def malformed_json_is_400(api: Api, method: str, path: str) -> None:
    """A body that is not JSON at all is refused before anything happens."""
    reply = await api.request(method, path, body=MALFORMED_JSON,
                              headers={"Content-Type": "application/json"})
    error_of(reply, 400, "JSON")
