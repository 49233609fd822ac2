"""
``/health``, ``/metrics``, request ids, the JSON log output and the text
log lines.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEventAsClassicLogText
from twisted.python.failure import Failure
from zope.interface import implementer

from plugins.ays.telemetry import AysRunStates
from plugins.core0 import telemetry as core0_telemetry
from rpoold import metrics
from rpoold.app import RpoolApi
from rpoold.health import HealthReport
from rpoold.interfaces import FAMILIES, IHealthCheck
from rpoold.logs import REQUEST_ID, TextLineObserver, event_as_json, new_request_id, text_observer_for
from testbed.http_api import call
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child, python_env, wait_until
from testbed.twistd import start_rpoold, twistd
from tests.support.scenario import N


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    config = tmp_path_factory.mktemp("obs") / "rpoold.toml"
    config.write_text(
        MOCK_CONFIG.replace("reboot_seconds = 0.2", "reboot_seconds = 5")
        + '\n[server]\nrequest_timeout = 0.3\n\n[log]\nformat = "json"\n'
    )
    child, base = start_rpoold(str(config))
    yield child, base
    child.stop()


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for match in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.MULTILINE):
        out[match.group(1)] = float(match.group(2))
    return out


# Health ------------------------------------------------------------------------------


def test_health_reports_each_backend_instance(daemon: Any) -> None:
    _, base = daemon
    reply = call(base, "GET", "/health")
    assert reply.status == 200
    report = reply.json()
    assert report["status"] == "ok"
    mock = report["backends"]["mock"]
    assert mock["plugin"] == "mock" and mock["ok"] is True and mock["nodes"] == 2
    assert sorted(mock["families"]) == sorted(f.name for f in FAMILIES)
    assert call(base, "GET", "/health", query={"ready": "1"}).status == 200


@implementer(IHealthCheck)
class _Checked:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def check_health(self) -> Any:
        return self.answer() if callable(self.answer) else succeed(self.answer)


def test_health_degraded_unreachable_failing_and_slow_backends() -> None:
    clock = Clock()
    instances = {
        "good": ("core0", _Checked({"ok": True, "nodes": 3, "answering": 3})),
        "down": ("ays", _Checked({"ok": False, "detail": "connection refused"})),
        "broken": ("core0", _Checked(lambda: 1 / 0)),
        "slow": ("ays", _Checked(lambda: Deferred())),
        "plain": ("mock", object()),
    }
    routing = {"nodes": instances["good"][1], "vms": instances["down"][1]}
    api = RpoolApi(routing, clock=clock, instances=instances, health_timeout=2)
    stub = StubTreq(api.resource())
    d = stub.get("http://rpoold.test/health?ready=yes")
    clock.advance(2.5)
    stub.flush()
    response = _result(d)
    assert response.code == 503
    report = json.loads(_result(stub.content(response)))
    assert report["status"] == "degraded"
    backends = report["backends"]
    assert backends["good"] == {"plugin": "core0", "families": ["nodes"], "ok": True, "nodes": 3,
                                "answering": 3}
    assert backends["down"]["ok"] is False and backends["down"]["families"] == ["vms"]
    assert backends["broken"] == {"plugin": "core0", "families": [], "ok": False,
                                  "detail": "the health check failed"}
    assert backends["slow"]["ok"] is False and "no answer within 2 s" in backends["slow"]["detail"]
    assert backends["plain"]["ok"] is None
    # Liveness stays 200 when degraded.
    d = stub.get("http://rpoold.test/health")
    clock.advance(2.5)
    stub.flush()
    assert _result(d).code == 200


def _result(d: Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "Deferred has not fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def test_health_report_of_a_backend_without_check_is_unknown() -> None:
    report = HealthReport({"x": ("mock", object())}, {}, 1, Clock())
    d = Deferred.fromCoroutine(report.report())
    assert _result(d)["backends"]["x"]["ok"] is None


# Metrics -------------------------------------------------------------------------------


def test_metrics_by_route_template_method_status_and_backend_calls(daemon: Any) -> None:
    _, base = daemon
    for _ in range(3):
        assert call(base, "GET", f"/nodes/{N}").status == 200
    assert call(base, "GET", "/nodes/999999999999").status == 404
    assert call(base, "GET", f"/nodes/{N}/containers/vfw_21/mems").status == 200
    assert call(base, "GET", "/no/such/route").status == 404
    reply = call(base, "GET", "/metrics")
    assert reply.status == 200
    assert reply.header("Content-Type").startswith("text/plain")
    text = reply.body.decode()
    requests = _samples(text, "rpoold_http_requests_total")
    assert requests['method="GET",route="/nodes/{nodeid}",status="200"'] >= 3
    assert requests['method="GET",route="/nodes/{nodeid}",status="404"'] >= 1
    assert requests['method="GET",route="/nodes/{nodeid}/containers/{containername}/mems",status="200"'] >= 1
    assert requests['method="GET",route="unrouted",status="404"'] >= 1
    assert not any(N in labels for labels in requests), "concrete ids leaked into route labels"
    buckets = _samples(text, "rpoold_http_request_duration_seconds_bucket")
    assert buckets['le="+Inf",method="GET",route="/nodes/{nodeid}"'] >= 3
    calls = _samples(text, "rpoold_backend_calls_total")
    assert calls['backend="mock",command="get_node",outcome="ok"'] >= 3
    assert calls['backend="mock",command="get_node",outcome="not_found"'] >= 1
    assert "rpoold_backend_call_duration_seconds_bucket" in text
    assert "rpoold_http_requests_in_flight" in text
    assert "process_resident_memory_bytes" in text


def test_the_version_is_told(daemon: Any) -> None:
    """``twistd rpoold --version`` prints rpoold's version; ``/metrics`` has it as build info."""
    from rpoold.version import version

    _, base = daemon
    text = call(base, "GET", "/metrics").body.decode()
    assert _samples(text, "rpoold_build_info") == {f'version="{version()}"': 1.0}
    child = Child(twistd("rpoold", "--version"), env=python_env())
    wait_until(lambda: not child.alive(), 30.0, "twistd --version exits")
    assert child.stop() == 0
    assert child.output().strip().splitlines() == [f"rpoold {version()}"]
    assert version() != "unknown"


def test_metrics_api_for_backends() -> None:
    registry = metrics.REGISTRY

    def value(name: str, labels: dict[str, str]) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    core0_telemetry.connection_opened("node-a")
    core0_telemetry.connection_opened("node-a")
    core0_telemetry.connection_closed("node-a")
    assert value("rpoold_redis_connections", {"node": "node-a"}) == 1

    runs = AysRunStates("ays-test")
    runs.update("r1", "new")
    runs.update("r2", "new")
    runs.update("r1", "running")
    assert value("rpoold_ays_runs", {"backend": "ays-test", "state": "new"}) == 1
    assert value("rpoold_ays_runs", {"backend": "ays-test", "state": "running"}) == 1
    runs.update("r1", "ok")
    runs.update("r2", "error")
    runs.update("r3", "running")
    runs.forget("r3")
    assert value("rpoold_ays_runs", {"backend": "ays-test", "state": "running"}) == 0
    assert value("rpoold_ays_runs", {"backend": "ays-test", "state": "new"}) == 0
    assert value("rpoold_ays_runs_finished_total", {"backend": "ays-test", "state": "ok"}) == 1
    assert value("rpoold_ays_runs_finished_total", {"backend": "ays-test", "state": "error"}) == 1
    assert runs.active() == {}

    ticks = iter([10.0, 10.25])
    d: Deferred[str] = Deferred()
    metrics.track_backend_call("core0-test", "core.ping", d, clock=lambda: next(ticks))
    d.callback("PONG")
    assert value("rpoold_backend_calls_total",
                 {"backend": "core0-test", "command": "core.ping", "outcome": "ok"}) == 1
    assert value("rpoold_backend_call_duration_seconds_sum",
                 {"backend": "core0-test", "command": "core.ping"}) == 0.25
    failing: Deferred[str] = Deferred()
    metrics.track_backend_call("core0-test", "core.ping", failing)
    failing.errback(metrics.errors.BackendUnavailable("refused"))
    failing.addErrback(lambda f: None)
    assert value("rpoold_backend_calls_total",
                 {"backend": "core0-test", "command": "core.ping", "outcome": "unavailable"}) == 1
    assert metrics.outcome_of(metrics.errors.BackendTimeout("x")) == "timeout"
    assert metrics.outcome_of(ValueError()) == "exception"


# Request ids and JSON logs ---------------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_json_logs_carry_the_request_id(daemon: Any) -> None:
    child, base = daemon
    assert call(base, "POST", f"/nodes/{N}/reboot").status == 204
    slow = call(base, "GET", f"/nodes/{N}/state", headers={"X-Request-Id": "probe-504"})
    assert slow.status == 504
    assert slow.header("X-Request-Id") == "probe-504"
    assert "error" in slow.json()

    def logged() -> bool:
        return any("504" in e.get("message", "") for e in _json_lines(child.output()))

    wait_until(logged, 10, "504 warning in the log")
    events = _json_lines(child.output())
    assert events, "no JSON lines in the output"
    warning = next(e for e in events if "504" in e["message"] and e["level"] == "warn")
    assert warning["request_id"] == "probe-504"
    assert warning["namespace"] == "rpoold.app"
    access = next(e for e in events if e.get("request_id") == "probe-504" and e["namespace"] == "rpoold.site")
    assert access["method"] == "GET" and access["uri"] == f"/nodes/{N}/state"
    assert (access["status"], access["client"]) == (504, "127.0.0.1")
    assert access["bytes"] == len(slow.body) and isinstance(access["seconds"], float)
    assert re.fullmatch(
        rf"GET /nodes/{N}/state 504 {len(slow.body)} bytes \d+\.\d{{3}} s \(request probe-504\)",
        access["message"],
    ), access["message"]
    for line in child.output().splitlines():
        if line.strip():
            json.loads(line)  # every line of the output is one JSON object
    # The node is back before the module's other tests use it.
    wait_until(lambda: call(base, "GET", f"/nodes/{N}/state").status == 200, 15, "the node back")


def test_request_ids() -> None:
    assert new_request_id(b"abc-123") == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{16}", new_request_id(b"bad id\r\nx"))
    assert re.fullmatch(r"[0-9a-f]{16}", new_request_id(b"x" * 65))
    token = REQUEST_ID.set("ctx-7")
    try:
        record = json.loads(event_as_json(
            {"log_format": "hello {who}", "who": "you", "log_time": time.time(),
             "log_namespace": "t", "log_level": None, "obj": object()}
        ))
    finally:
        REQUEST_ID.reset(token)
    assert record["message"] == "hello you"
    assert record["request_id"] == "ctx-7"
    assert record["who"] == "you"
    assert "obj" not in record


# Text log lines ------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text")


def _text_events() -> list[dict[str, Any]]:
    now = time.time()
    base = {"log_time": now, "log_namespace": "rpoold.site", "log_level": LogLevel.info}
    failure = Failure(ZeroDivisionError("division by zero"))
    return [
        {**base, "log_format": "{line}", "line": "GET /nodes 200 2 bytes 0.001 s"},
        {**base, "log_format": "{line}", "line": "two\nlines"},
        {**base, "log_format": "{line}", "line": 7},
        {**base, "log_format": "{line}", "line": _Unprintable()},
        {**base, "log_format": "{line}"},
        {**base, "log_format": "{a} and {b!r}", "a": 1, "b": "x"},
        {**base, "log_format": "{line}", "line": "x", "log_system": "HTTPChannel,3,127.0.0.1"},
        {**base, "log_format": "{line}", "line": "x", "log_level": None},
        {"log_format": "{line}", "line": "no time, no namespace"},
        {**base, "log_format": "failed: {why}", "why": "boom", "log_failure": failure},
        {**base, "log_format": None},
        {**base, "log_format": "{line}", "line": ""},
        {**base, "log_time": now + 1.5, "log_format": "{line}", "line": "a second later"},
    ]


def test_text_lines_are_twistds() -> None:
    """The text observer writes what twistd's own text observer writes."""
    out = io.StringIO()
    observer = TextLineObserver(out)
    expected = []
    for event in _text_events():
        observer(event)
        expected.append(formatEventAsClassicLogText(event) or "")
    assert out.getvalue() == "".join(expected)
    assert "GET /nodes 200 2 bytes 0.001 s\n" in out.getvalue()


@pytest.mark.parametrize(("twistd", "takes_over"), [
    ({"nodaemon": True, "logfile": None}, True),
    ({"nodaemon": True, "logfile": "-"}, True),
    ({"nodaemon": True, "logfile": "/var/log/rpoold.log"}, False),
    ({"nodaemon": False, "logfile": None}, False),
    ({"nodaemon": True, "logfile": None, "syslog": True}, False),
    ({"nodaemon": True, "logfile": None, "logger": "some.observer_factory"}, False),
])
def test_text_observer_only_where_twistd_writes_text_to_stdout(twistd: dict[str, Any],
                                                               takes_over: bool) -> None:
    observer = text_observer_for(twistd)
    assert (observer is not None) == takes_over
    assert text_observer_for(None) is None
