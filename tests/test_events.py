"""
``GET /events`` over real HTTP, on the mock served in the test's process:
the changes of a container in order, filters, ``Last-Event-ID`` after a
disconnect (no gap, no duplicate), an id older than the retention, the
keep-alive comment, a subscriber that does not read (disconnected with a
last event while another one and the daemon go on), a stream whose token
expires; a job's output as ``stdout`` and ``end`` events, and its stream
left early by the client without an error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from rpoold.app import RpoolApi
from rpoold.auth import Authenticator, JwtSettings, Role
from rpoold.events import EventSettings
from testbed.http_api import Api
from testbed.sse import EventStreamClient, SSEEvent
from tests.support.answers import expect
from tests.support.backends import SEED_CONTAINER, SEED_NODE, unique
from tests.support.in_process import mock_app, serving
from tests.support.polling import wait_for
from tests.support.resources import container_body


@pytest_twisted.async_yield_fixture
async def served() -> AsyncIterator[tuple[RpoolApi, str]]:
    app = mock_app(events=EventSettings(keepalive=0.2, buffer=50, node_interval=0))
    async with serving(app) as base:
        yield app, base


async def container_life(api: Api, name: str) -> None:
    base = f"/nodes/{SEED_NODE}/containers"
    expect(await api.post(base, json=container_body(name)), 201)
    expect(await api.post(f"{base}/{name}/stop"), 204)
    expect(await api.delete(f"{base}/{name}"), 204)


def about(name: str) -> Any:
    return lambda event: event.data.get("resource", "").endswith(f"/containers/{name}")


@pytest_twisted.ensureDeferred
async def test_a_container_created_stopped_deleted_in_order(served: tuple[RpoolApi, str]) -> None:
    _, base = served
    stream = await EventStreamClient.open(base, "/events?type=container.*")
    assert stream.status == 200 and stream.headers["content-type"][0].startswith("text/event-stream")
    name = unique("ct")
    await container_life(Api.over_http(base), name)
    events = await stream.take(3, accept=about(name))
    assert [e.name for e in events] == ["container.created", "container.stopped", "container.deleted"]
    ids = [int(e.id or 0) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 3
    first = events[0].data
    assert first["type"] == "container.created" and first["time"].endswith("Z")
    assert first["resource"] == f"/nodes/{SEED_NODE}/containers/{name}" and first["data"] == {}
    stream.close()


@pytest_twisted.ensureDeferred
async def test_filters_by_type_and_node(served: tuple[RpoolApi, str]) -> None:
    app, base = served
    jobs = await EventStreamClient.open(base, "/events?type=job.*,bridge.created")
    elsewhere = await EventStreamClient.open(base, "/events?node=nowhere")
    await app.long.hub.emit("container.created", f"/nodes/{SEED_NODE}/containers/x", {})
    await app.long.hub.emit("job.ended", f"/nodes/{SEED_NODE}/jobs/j", {"state": "success"})
    await app.long.hub.emit("bridge.created", "/nodes/nowhere/bridges/b", {})
    assert [e.name for e in await jobs.take(2)] == ["job.ended", "bridge.created"]
    assert [e.name for e in await elsewhere.take(1)] == ["bridge.created"]
    expect(await Api.over_http(base).get("/events", params={"last_event_id": "x"}), 400)
    jobs.close()
    elsewhere.close()


@pytest_twisted.ensureDeferred
async def test_last_event_id_resumes_without_gap_or_duplicate(served: tuple[RpoolApi, str]) -> None:
    app, base = served
    hub = app.long.hub
    stream = await EventStreamClient.open(base, "/events")
    for i in range(5):
        await hub.emit("vdisk.changed", f"/vdisks/v{i}", {"i": i})
    seen = await stream.take(5)
    stream.close()
    # Made while nobody listens.
    for i in range(5, 12):
        await hub.emit("vdisk.changed", f"/vdisks/v{i}", {"i": i})
    again = await EventStreamClient.open(base, "/events", headers={"Last-Event-ID": seen[2].id or ""})
    await hub.emit("vdisk.changed", "/vdisks/live", {"i": 12})
    resumed = await again.take(10)
    assert [e.data["data"]["i"] for e in resumed] == list(range(3, 13))
    ids = [int(e.id or 0) for e in seen[:3] + resumed]
    assert ids == list(range(ids[0], ids[0] + 13))
    again.close()


@pytest_twisted.ensureDeferred
async def test_an_id_older_than_the_retention_is_told(served: tuple[RpoolApi, str]) -> None:
    app, base = served
    hub = app.long.hub
    for i in range(10):
        await hub.emit("vdisk.changed", f"/vdisks/v{i}", {"i": i})
    hub.max_events = 4
    await hub.trim_now()
    first, last = await hub.bounds()
    stream = await EventStreamClient.open(base, "/events", headers={"Last-Event-ID": "1"})
    told = await stream.next()
    assert told.name == "stream.truncated" and told.id is None
    assert told.data["first_kept"] == first == last - 3
    assert [int(e.id or 0) for e in await stream.take(4)] == list(range(first, last + 1))
    stream.close()


@pytest_twisted.ensureDeferred
async def test_an_idle_stream_gets_comments(served: tuple[RpoolApi, str]) -> None:
    _, base = served
    stream = await EventStreamClient.open(base, "/events")
    await wait_for(lambda: "keepalive" in stream.comments, "a keep-alive comment", timeout=5)
    stream.close()


@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_does_not_read_is_disconnected(served: tuple[RpoolApi, str]) -> None:
    """Its buffer fills, it gets stream.overflow and goes; a reading one and the daemon go on."""
    app, base = served
    hub = app.long.hub
    reading = await EventStreamClient.open(base, "/events?type=bulk.*")
    port = int(base.rsplit(":", 1)[1])
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_for(lambda: len(app.long.streams) == 2, "both streams open")
    [writer] = [w for w in app.long.streams if w.request.getHeader(b"Host") == b"x"]
    filler = {"text": "x" * 2000}
    sent = 0
    started = time.monotonic()
    while not writer.ended and sent < 20000:
        await hub.emit("bulk.changed", "/vdisks/bulk", filler)
        sent += 1
        if sent % 10 == 0:
            # Let the reactor write and read: the reading client keeps up.
            await deferLater(reactor, 0, lambda: None)
    assert writer.ended and writer.reason == "stream.overflow", (sent, writer.held)
    assert time.monotonic() - started < 30

    def read_to_the_end() -> bytes:
        slow.settimeout(20)
        data = b""
        while chunk := slow.recv(1 << 16):
            data += chunk
        return data

    # What the slow client finds when it reads at last: its events, then why it was cut.
    everything = deferToThread(read_to_the_end)
    received = await reading.take(sent, timeout=30)
    assert len(received) == sent and not reading.events and not reading.closed
    data = await everything
    assert b"event: stream.overflow" in data[-4000:], data[-4000:]
    assert data.count(b"event: bulk.changed") < sent
    await wait_for(lambda: len(app.long.streams) == 1, "the slow stream let go")
    slow.close()
    reading.close()
    expect(await Api.over_http(base).get(f"/nodes/{SEED_NODE}/mem"), 200)


def _es256() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest_twisted.ensureDeferred
async def test_a_stream_ends_when_its_token_expires() -> None:
    private, public = _es256()
    settings = JwtSettings(key=serialization.load_pem_public_key(public.encode()), algorithms=["ES256"],
                           issuer="iss", audience="aud", leeway=0, scope_claim="scope",
                           scopes={"pool:read": Role.read})
    token = jwt.encode({"iss": "iss", "aud": "aud", "scope": "pool:read", "sub": "watcher",
                        "exp": int(time.time()) + 2}, private, algorithm="ES256")
    app = mock_app(auth=Authenticator(enabled=True, jwt=settings),
                   events=EventSettings(keepalive=5, node_interval=0))
    async with serving(app) as base:
        stream = await EventStreamClient.open(base, "/events", headers={"Authorization": f"Bearer {token}"})
        assert stream.status == 200
        last: SSEEvent = await stream.next(timeout=10, accept=lambda e: e.name == "stream.expired")
        assert "expired" in last.data["message"]
        await stream.ended(timeout=5)
        refused = await EventStreamClient.open(base, "/events")
        assert refused.status == 401
        refused.close()
    assert reactor.running


async def started_job(api: Api, command: dict[str, Any]) -> str:
    """Start a process in the seed container; :returns: its job's path."""
    path = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/processes"
    reply = expect(await api.post(path, json=command), 202)
    location = reply.header("location")
    assert location is not None and "/jobs/" in location, reply.headers
    return location


@pytest_twisted.ensureDeferred
async def test_a_jobs_output_as_events(served: tuple[RpoolApi, str]) -> None:
    _, base = served
    job = await started_job(Api.over_http(base), {"name": "echo", "args": ["hello", "output"]})
    stream = await EventStreamClient.open(base, f"{job}/output")
    assert stream.status == 200 and stream.headers["content-type"][0].startswith("text/event-stream")
    out, end = await stream.take(2, timeout=10)
    assert (out.name, out.data) == ("stdout", {"text": "hello output\n"}), out
    assert (end.name, end.data) == ("end", {"state": "success"}), end
    await stream.ended(timeout=5)


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_a_jobs_output_early(served: tuple[RpoolApi, str]) -> None:
    """The stream of a job that goes on is let go without an error; the daemon goes on."""
    app, base = served
    api = Api.over_http(base)
    job = await started_job(api, {"name": "sleep", "args": ["60"]})
    failures: list[Any] = []

    def observe(event: Any) -> None:
        if event.get("log_failure") is not None or event.get("log_level") == LogLevel.critical:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        stream = await EventStreamClient.open(base, f"{job}/output")
        assert stream.status == 200
        await wait_for(lambda: len(app.long.streams) == 1, "the output stream open")
        stream.close()
        await wait_for(lambda: not app.long.streams, "the output stream let go")
        await deferLater(reactor, 0.1, lambda: None)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not failures, [formatEvent(e) for e in failures]
    expect(await api.delete(job), 204)
    expect(await api.get(f"/nodes/{SEED_NODE}/mem"), 200)
