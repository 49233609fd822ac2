"""
The AYS client against stubbed HTTP answers (``treq.testing``): paths,
bodies and query parameters it sends, and how each AYS answer becomes a
value or an rpoold error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from treq.testing import StringStubbingResource, StubTreq
from twisted.internet import error as txerror
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, fail
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from plugins.ays.client import AysClient, BlueprintExists, RepositoryMissing, error_text
from rpoold.errors import BackendError, BackendTimeout, BackendUnavailable

URL = "http://ays.test:5000"
JSON = {b"Content-Type": b"application/json"}

Answer = tuple[int, dict[bytes, bytes], bytes]


class Recorder:
    """Answers requests with a function and keeps what was asked."""

    def __init__(self, answer: Callable[[str, str, dict[bytes, list[bytes]], bytes], Answer]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[bytes, list[bytes]], bytes]] = []

    def __call__(self, method: bytes, url: str, params: dict[bytes, list[bytes]],
                 headers: Any, data: bytes) -> Answer:
        entry = (method.decode(), url, params, data)
        self.requests.append(entry)
        return self.answer(*entry)


def client_for(answer: Callable[..., Answer], clock: Clock | None = None) -> tuple[AysClient, Recorder]:
    recorder = Recorder(answer)
    http = StubTreq(StringStubbingResource(recorder))
    return AysClient(URL, "objstor", http, clock or Clock(), request_timeout=5), recorder


def settle(work: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that needs no time to pass; return its result or raise."""
    d = ensureDeferred(work)
    assert d.called, "the call did not complete without the clock moving"
    results: list[Any] = []
    d.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def reply(code: int, body: Any = None) -> Callable[..., Answer]:
    raw = b"" if body is None else json.dumps(body).encode() if not isinstance(body, bytes) else body
    return lambda *_: (code, JSON, raw)


def test_create_blueprint_posts_name_and_yaml_text() -> None:
    client, recorder = client_for(reply(201, {"name": "bp", "archived": False}))
    settle(client.create_blueprint("bp", "actions: []\n"))
    method, url, _, data = recorder.requests[0]
    assert (method, url) == ("POST", f"{URL}/ays/repository/objstor/blueprint")
    assert json.loads(data) == {"name": "bp", "content": "actions: []\n"}


def test_an_active_blueprint_of_that_name_is_reported() -> None:
    client, _ = client_for(reply(409, {"error": "Blueprint with the name bp' already exists"}))
    with pytest.raises(BlueprintExists):
        settle(client.create_blueprint("bp", "x: 1\n"))


def test_execute_failure_carries_the_ays_error_text_not_a_status_line() -> None:
    reason = "Error during execution of the blueprint:\n could not find parent node!1"
    client, recorder = client_for(reply(500, {"error": reason}))
    with pytest.raises(BackendError) as caught:
        settle(client.execute_blueprint("container_web1_install_1_ab"))
    assert caught.value.status == 500
    assert "could not find parent node!1" in caught.value.message
    assert "execute blueprint 'container_web1_install_1_ab'" in caught.value.message
    assert "Internal Server Error" not in caught.value.message
    assert recorder.requests[0][:2] == (
        "POST", f"{URL}/ays/repository/objstor/blueprint/container_web1_install_1_ab")


def test_archive_uses_put_on_the_archive_path() -> None:
    client, recorder = client_for(reply(200, {"msg": "archived"}))
    settle(client.archive_blueprint("bp"))
    assert recorder.requests[0][:2] == ("PUT", f"{URL}/ays/repository/objstor/blueprint/bp/archive")


def test_run_creation_and_lookup() -> None:
    run = {"key": "k1", "state": "new", "steps": []}
    client, recorder = client_for(reply(200, run))
    assert settle(client.create_run()) == run
    assert settle(client.get_run("k1")) == run
    assert [r[:2] for r in recorder.requests] == [
        ("POST", f"{URL}/ays/repository/objstor/aysrun"),
        ("GET", f"{URL}/ays/repository/objstor/aysrun/k1"),
    ]


def test_a_run_answer_without_key_is_an_error() -> None:
    client, _ = client_for(reply(200, {"state": "new"}))
    with pytest.raises(BackendError, match="without a run key"):
        settle(client.create_run())


def test_list_services_sends_fields_and_parent() -> None:
    items = [{"role": "container", "name": "web1", "data": {"status": "running"}}]
    client, recorder = client_for(reply(200, items))
    got = settle(client.list_services("container", ("flist", "status"), ("node.g8os", "525400123456")))
    assert got == items
    _, url, params, _ = recorder.requests[0]
    assert url == f"{URL}/ays/repository/objstor/service/container"
    assert params == {b"fields": [b"flist,status"], b"parent": [b"node.g8os!525400123456"]}


def test_list_services_refusing_a_field_is_an_error_with_its_text() -> None:
    client, _ = client_for(reply(400, 'No such field "x" in service "service:vm!a" data'))
    with pytest.raises(BackendError, match='No such field "x"'):
        settle(client.list_services("vm", ("x",)))


def test_get_service_unknown_is_none() -> None:
    client, _ = client_for(reply(404, {"error": "Service not found"}))
    assert settle(client.get_service("container", "nope")) is None


def test_get_service_in_a_missing_repository_is_not_a_missing_service() -> None:
    client, _ = client_for(reply(404, {"error": "Repository objstor doesn't exists"}))
    with pytest.raises(RepositoryMissing) as caught:
        settle(client.get_service("container", "web1"))
    assert caught.value.status == 503


def test_delete_service_answers_whether_it_existed() -> None:
    client, recorder = client_for(reply(204))
    assert settle(client.delete_service("node.g8os", "525400123456")) is True
    assert recorder.requests[0][:2] == (
        "DELETE", f"{URL}/ays/repository/objstor/service/node.g8os/525400123456")
    client, _ = client_for(reply(404, {"error": "Service role:x name:y not found in the repo objstor"}))
    assert settle(client.delete_service("x", "y")) is False


def test_ensure_repository_creates_it_only_when_missing() -> None:
    answers = iter([(404, JSON, b'{"error": "Repository objstor doesn\'t exists"}'),
                    (201, JSON, b'{"name": "objstor"}')])
    client, recorder = client_for(lambda *_: next(answers))
    assert settle(client.ensure_repository()) is True
    assert [r[:2] for r in recorder.requests] == [
        ("GET", f"{URL}/ays/repository/objstor"), ("POST", f"{URL}/ays/repository")]
    assert json.loads(recorder.requests[1][3])["name"] == "objstor"

    client, recorder = client_for(reply(200, {"name": "objstor"}))
    assert settle(client.ensure_repository()) is False
    assert len(recorder.requests) == 1


def test_proxy_errors_mean_unavailable() -> None:
    client, _ = client_for(reply(503, b"upstream down"))
    with pytest.raises(BackendUnavailable, match="upstream down"):
        settle(client.ping())


def test_refused_connection_is_unavailable() -> None:
    class Refusing:
        def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
            return fail(txerror.ConnectionRefusedError("connection refused"))

    client = AysClient(URL, "objstor", Refusing(), Clock())
    with pytest.raises(BackendUnavailable) as caught:
        settle(client.ping())
    assert caught.value.status == 502
    assert URL in caught.value.message and "refused" in caught.value.message


class Stalling(Resource):
    """Never answers; remembers the requests it holds."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []

    def render(self, request: Any) -> Any:
        self.held.append(request)
        return NOT_DONE_YET


def test_a_stalled_answer_times_out() -> None:
    clock = Clock()
    resource = Stalling()
    client = AysClient(URL, "objstor", StubTreq(resource), clock, request_timeout=3)
    d = ensureDeferred(client.get_service("vm", "vm1"))
    clock.advance(2.9)
    assert not d.called
    clock.advance(0.2)
    assert d.called
    failure: list[Failure] = []
    d.addErrback(failure.append)
    assert failure and failure[0].check(BackendTimeout)
    assert "3 s" in failure[0].value.message
    assert "get service vm!vm1" in failure[0].value.message


def test_a_shorter_timeout_for_one_call() -> None:
    clock = Clock()
    client = AysClient(URL, "objstor", StubTreq(Stalling()), clock, request_timeout=3)
    d = ensureDeferred(client.get_run("k", timeout=0.5))
    clock.advance(0.6)
    assert d.called
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(BackendTimeout)
    assert "0.5 s" in failures[0].value.message


def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    clock = Clock()
    client = AysClient(URL, "objstor", StubTreq(Stalling()), clock, request_timeout=3)
    d = ensureDeferred(client.ping())
    d.cancel()
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(CancelledError)
    assert not clock.getDelayedCalls()


@pytest.mark.parametrize(("body", "text"), [
    (b'{"error": "boom"}', "boom"),
    (b'"No such field"', "No such field"),
    (b"Bad Request Body: x", "Bad Request Body: x"),
    (b"", ""),
    (b"x" * 5000, "x" * 2000 + " [...]"),
])
def test_error_text(body: bytes, text: str) -> None:
    assert error_text(body) == text
