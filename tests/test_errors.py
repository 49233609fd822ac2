"""
How failures become answers, in the one place that maps them: backend
errors keep their status, a backend that does not answer in time is 504,
an unexpected exception is 500 with a request id (the traceback only in the
log), a family nobody serves is 501, and oversized or mistyped bodies are
refused before any backend is called.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import globalLogPublisher

from rpoold import errors
from rpoold.app import RpoolApi
from testbed.http_api import Api
from tests.support.answers import error_of


class Nodes:
    """An ``INodes`` backend whose ``list_nodes`` does what the test says."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.called = 0

    def list_nodes(self) -> Any:
        self.called += 1
        return self.outcome()

    def get_node(self, nodeid: str) -> Any:
        return succeed({"id": nodeid})


def api_for(backend: Any, **options: Any) -> Api:
    return Api.in_memory(RpoolApi({"nodes": backend, "containers": backend}, **options).resource())


@pytest.mark.parametrize(("error", "status"), [
    (errors.NotFound("gone"), 404),
    (errors.Conflict("twice"), 409),
    (errors.BadRequest("wrong"), 400),
    (errors.BackendError("failed there"), 500),
    (errors.BackendUnavailable("node unreachable"), 502),
    (errors.ServiceUnavailable("starting"), 503),
    (errors.BackendTimeout("too slow"), 504),
])
@pytest_twisted.ensureDeferred
async def test_backend_errors_keep_their_status(error: errors.RpoolError, status: int) -> None:
    for outcome in (lambda: fail(error), lambda: (_ for _ in ()).throw(error)):
        reply = await api_for(Nodes(outcome)).get("/nodes")
        assert error_of(reply, status) == error.message


@pytest_twisted.ensureDeferred
async def test_unexpected_exception_is_500_with_a_request_id() -> None:
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        reply = await api_for(Nodes(lambda: fail(ZeroDivisionError("secret detail")))).get("/nodes")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    message = error_of(reply, 500, "internal error")
    request_id = reply.header("x-request-id")
    assert request_id and request_id in message
    assert "secret detail" not in message and "ZeroDivisionError" not in reply.body.decode()
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert failures and failures[0].get("request_id") == request_id
    assert failures[0]["log_failure"].check(ZeroDivisionError)


@pytest_twisted.ensureDeferred
async def test_a_backend_that_does_not_answer_is_504() -> None:
    pending: list[Deferred[Any]] = []

    def never() -> Deferred[Any]:
        pending.append(Deferred())
        return pending[-1]

    reply = await api_for(Nodes(never), request_timeout=0.05).get("/nodes")
    error_of(reply, 504, "0.05 s")
    assert pending[0].called, "the backend call is cancelled"


@pytest_twisted.ensureDeferred
async def test_an_unserved_family_is_501() -> None:
    error_of(await api_for(Nodes(lambda: succeed([]))).get("/vdisks"), 501, "vdisks")


@pytest_twisted.ensureDeferred
async def test_body_limit_is_413() -> None:
    backend = Nodes(lambda: succeed([]))
    api = api_for(backend, max_body=100)
    body = {"name": "c", "hostname": "c", "flist": "x" * 200}
    error_of(await api.post("/nodes/n1/containers", json=body), 413, "100 bytes")


@pytest_twisted.ensureDeferred
async def test_a_json_body_must_be_json_typed() -> None:
    api = api_for(Nodes(lambda: succeed([])))
    reply = await api.post("/nodes/n1/containers", body=b'{"name": "c"}',
                           headers={"Content-Type": "text/plain"})
    error_of(reply, 415, "application/json", "text/plain")


@pytest_twisted.ensureDeferred
async def test_validation_happens_before_the_backend_is_called() -> None:
    class Containers:
        calls = 0

        def create_container(self, nodeid: str, body: Any) -> Any:
            Containers.calls += 1
            return succeed(None)

    api = Api.in_memory(RpoolApi({"containers": Containers()}).resource())
    error_of(await api.post("/nodes/n1/containers", json={"name": "a b"}), 400)
    error_of(await api.post("/nodes/a%20b/containers", json={"name": "c", "hostname": "c", "flist": "f"}),
             400, "nodeid")
    assert Containers.calls == 0
