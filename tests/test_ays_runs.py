"""
The write sequence (blueprint -> execute -> run -> archive), run polling,
judging, timeouts and background settling, against a scripted AYS served
in memory by ``treq.testing``.  The end-to-end tests run the same code
against the AYS simulator.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest
from treq.testing import StringStubbingResource, StubTreq
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from plugins.ays import blueprints
from plugins.ays.blueprints import Action
from plugins.ays.client import AysClient
from plugins.ays.runs import Timing, Write, Writer, blueprint_name, run_error_message
from rpoold.errors import BackendError, BackendTimeout, Conflict

JSON = {b"Content-Type": b"application/json"}


def job(service: str, action: str, state: str, *logs: str, actor: str = "container") -> dict[str, Any]:
    return {"key": f"j-{service}-{action}", "action_name": action, "actor_name": actor,
            "actor": actor, "service_name": service, "service_key": "s", "state": state,
            "logs": [{"epoch": 1, "level": 1, "category": "errormsg" if state == "error" else "msg",
                      "log": text, "tags": ""} for text in logs]}


class ScriptedAys:
    """
    Just enough of AYS for the write sequence: blueprints are kept, a run
    is answered from ``outcomes`` (its final form) and reaches it after
    ``polls`` looks; services can be put in ``services``.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.blueprints: dict[str, dict[str, Any]] = {}
        self.outcomes: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self.looks: dict[str, int] = {}
        self.polls = 2
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.execute_error: str | None = None

    def __call__(self, method: bytes, url: str, params: Any, headers: Any, data: bytes) -> Any:
        verb, path = method.decode(), urlparse(url).path
        self.calls.append((verb, path))
        parts = path.strip("/").split("/")[3:]
        if verb == "POST" and parts == ["blueprint"]:
            body = json.loads(data)
            self.blueprints[body["name"]] = {"content": body["content"], "archived": False}
            return 201, JSON, data
        if verb == "POST" and parts[0] == "blueprint":
            if self.execute_error:
                return 500, JSON, json.dumps({"error": self.execute_error}).encode()
            return 200, JSON, b'{"msg": "executed"}'
        if verb == "PUT" and parts[0] == "blueprint":
            self.blueprints[parts[1]]["archived"] = True
            return 200, JSON, b'{"msg": "archived"}'
        if verb == "POST" and parts == ["aysrun"]:
            outcome = self.outcomes.pop(0)
            self.runs[outcome["key"]] = outcome
            self.looks[outcome["key"]] = 0
            return 200, JSON, json.dumps({"key": outcome["key"], "state": "new", "steps": []}).encode()
        if verb == "GET" and parts[0] == "aysrun":
            key = parts[1]
            self.looks[key] += 1
            run = self.runs[key]
            if self.looks[key] < self.polls:
                run = {"key": key, "state": "running", "steps": []}
            return 200, JSON, json.dumps(run).encode()
        if parts[0] == "service":
            key = (parts[1], parts[2])
            if verb == "DELETE":
                return (204, JSON, b"") if self.services.pop(key, None) else (404, JSON, b"{}")
            if key in self.services:
                return 200, JSON, json.dumps(self.services[key]).encode()
            return 404, JSON, b'{"error": "Service not found"}'
        return 500, JSON, b'{"error": "unexpected call"}'


@pytest.fixture
def ays() -> ScriptedAys:
    return ScriptedAys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def writer(ays: ScriptedAys, clock: Clock) -> Writer:
    client = AysClient("http://ays", "objstor", StubTreq(StringStubbingResource(ays)), clock)
    return Writer(client, clock, Timing(run_timeout=5, poll_interval=0.1, poll_max_interval=0.4,
                                        follow_timeout=60))


def drive(clock: Clock, d: Deferred[Any], seconds: float, step: float = 0.05) -> Any:
    """Let time pass until ``d`` fires (at most ``seconds``); its result or raise."""
    passed = 0.0
    while not d.called and passed < seconds:
        clock.advance(step)
        passed += step
    assert d.called, f"not done after {seconds} s of clock time"
    results: list[Any] = []
    d.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def install(name: str = "web1") -> tuple[Action, Write]:
    action = Action("container", name, "install", force=False)
    content = blueprints.actions_only(action)
    return action, Write("container", name, "install", content, ours=(action,))


def test_blueprint_names_are_unique_within_a_second() -> None:
    names = {blueprint_name("container", "web1", "install", 1494925200.0) for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"container_web1_install_1494925200_[0-9a-f]{8}", n) for n in names)


def test_sequence_then_poll_until_ok(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    ays.outcomes.append({"key": "r1", "state": "ok", "steps": [
        {"number": 1, "state": "ok", "jobs": [job("web1", "install", "ok")]}]})
    drive(clock, ensureDeferred(writer.apply(write)), 5)
    kinds = [(verb, path.split("/")[4]) for verb, path in ays.calls]
    assert kinds[:4] == [("POST", "blueprint"), ("POST", "blueprint"),
                         ("POST", "aysrun"), ("PUT", "blueprint")]
    assert set(kinds[4:]) == {("GET", "aysrun")} and len(kinds[4:]) == 2
    (name, stored), = ays.blueprints.items()
    assert name.startswith("container_web1_install_")
    assert stored == {"content": blueprints.dump(write.content), "archived": True}


def test_a_failed_job_of_ours_is_a_500_with_the_logs_and_undoes(
        ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    undone: list[bool] = []

    async def undo() -> None:
        undone.append(True)

    write.on_failure = undo
    ays.outcomes.append({"key": "r1", "state": "error", "steps": [
        {"number": 1, "state": "error", "jobs": [
            job("web1", "install", "error", "starting container", "flist not found: x.flist")]}]})
    with pytest.raises(BackendError) as caught:
        drive(clock, ensureDeferred(writer.apply(write)), 5)
    assert caught.value.status == 500
    assert "flist not found: x.flist" in caught.value.message
    assert "starting container" in caught.value.message
    assert "container!web1 install" in caught.value.message
    assert undone == [True]


def test_a_run_failing_elsewhere_does_not_fail_us(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    ays.outcomes.append({"key": "r1", "state": "error", "steps": [
        {"number": 1, "state": "error", "jobs": [
            job("web1", "install", "ok"), job("broken", "install", "error", "old failure")]}]})
    drive(clock, ensureDeferred(writer.apply(write)), 5)


def test_a_failed_prerequisite_fails_us(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    ays.outcomes.append({"key": "r1", "state": "error", "steps": [
        {"number": 1, "state": "error", "jobs": [
            job("fs1", "install", "error", "no pool", actor="filesystem")]},
        {"number": 2, "state": "new", "jobs": [job("web1", "install", "new")]}]})
    with pytest.raises(BackendError, match="no pool"):
        drive(clock, ensureDeferred(writer.apply(write)), 5)


def test_run_error_message_lists_each_failed_job() -> None:
    run = {"key": "r9", "state": "error", "steps": [{"jobs": [
        job("a", "install", "error", "line 1\nline 2"), job("b", "install", "ok", "fine"),
        job("c", "stop", "error")]}]}
    message = run_error_message(run, "x")
    assert message.startswith("AYS run r9 failed (x)")
    assert "container!a install:\n  line 1\n  line 2" in message
    assert "container!c stop:\n  (no log" in message
    assert "fine" not in message


def test_ays_tracebacks_stay_out_of_the_error() -> None:
    failed = job("a", "install", "error", "boom")
    failed["logs"].append({"epoch": 1, "level": 1, "category": "trace", "tags": "",
                           "log": 'Traceback (most recent call last):\n  File "x.py"\nValueError: boom'})
    message = run_error_message({"key": "r", "steps": [{"jobs": [failed]}]}, "x")
    assert "boom" in message
    assert "Traceback" not in message and 'File "' not in message


def test_execute_refused_archives_and_undoes(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    undone: list[bool] = []

    async def undo() -> None:
        undone.append(True)

    write.on_failure = undo
    ays.execute_error = "Error during execution of the blueprint:\n init failed"
    with pytest.raises(BackendError, match="init failed"):
        drive(clock, ensureDeferred(writer.apply(write)), 5)
    assert all(b["archived"] for b in ays.blueprints.values())
    assert ("POST", "/ays/repository/objstor/aysrun") not in ays.calls
    assert undone == [True]


def test_a_failed_check_posts_nothing(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    undone: list[bool] = []

    async def undo() -> None:
        undone.append(True)

    async def taken() -> None:
        raise Conflict("container 'web1' exists")

    write.on_failure = undo
    with pytest.raises(Conflict):
        drive(clock, ensureDeferred(writer.apply(write, taken)), 1)
    assert ays.calls == [] and undone == []


def test_a_slow_run_is_a_504_and_is_settled_when_it_ends(
        ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    settled: list[str] = []

    async def forget() -> None:
        settled.append("forgotten")

    write.on_success = forget
    ays.polls = 1000
    ays.outcomes.append({"key": "r1", "state": "ok", "steps": [
        {"number": 1, "state": "ok", "jobs": [job("web1", "install", "ok")]}]})
    d = ensureDeferred(writer.apply(write))
    with pytest.raises(BackendTimeout) as caught:
        drive(clock, d, 6)
    assert caught.value.status == 504
    assert "r1" in caught.value.message and "5 s" in caught.value.message
    assert settled == [] and "r1" in writer.following
    ays.polls = ays.looks["r1"] + 1
    clock.advance(1)
    clock.advance(1)
    assert settled == ["forgotten"]
    assert writer.following == {}


def test_a_slow_create_that_fails_later_is_undone(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    undone: list[bool] = []

    async def undo() -> None:
        undone.append(True)

    write.on_failure = undo
    ays.polls = 1000
    ays.outcomes.append({"key": "r1", "state": "error", "steps": [
        {"number": 1, "state": "error", "jobs": [job("web1", "install", "error", "late")]}]})
    with pytest.raises(BackendTimeout):
        drive(clock, ensureDeferred(writer.apply(write)), 6)
    assert undone == []
    ays.polls = 0
    clock.advance(1)
    clock.advance(1)
    assert undone == [True]


def test_following_stops_with_the_writer(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, write = install()
    ays.polls = 1000
    ays.outcomes.append({"key": "r1", "state": "ok", "steps": []})
    with pytest.raises(BackendTimeout):
        drive(clock, ensureDeferred(writer.apply(write)), 6)
    assert writer.following
    writer.stop()
    assert writer.following == {}
    assert clock.getDelayedCalls() == []


def test_writes_are_serialised(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    _, first = install("a")
    _, second = install("b")
    for key in ("r1", "r2"):
        ays.outcomes.append({"key": key, "state": "ok", "steps": []})
    gate: Deferred[None] = Deferred()
    entered: list[str] = []

    async def slow_check() -> None:
        entered.append("a")
        await gate

    async def quick_check() -> None:
        entered.append("b")

    d1 = ensureDeferred(writer.apply(first, slow_check))
    d2 = ensureDeferred(writer.apply(second, quick_check))
    assert entered == ["a"] and ays.calls == []
    gate.callback(None)
    drive(clock, d1, 5)
    drive(clock, d2, 5)
    assert entered == ["a", "b"]
    order = [path.rsplit("/", 1)[-1] for verb, path in ays.calls if verb == "POST" and "aysrun" not in path]
    names = [n for n in order if n != "blueprint"]
    assert [n.split("_")[1] for n in names] == ["a", "b"]


def test_wait_for_data_until_applied(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    ays.services[("vdisk", "d1")] = {"name": "d1", "data": {"size": 10}}
    d = ensureDeferred(writer.wait_for_data("vdisk", "d1", lambda data: data["size"] == 20, "resize"))
    clock.advance(0.3)
    assert not d.called
    ays.services[("vdisk", "d1")]["data"]["size"] = 20
    drive(clock, d, 2)


def test_wait_for_data_times_out(ays: ScriptedAys, writer: Writer, clock: Clock) -> None:
    ays.services[("vdisk", "d1")] = {"name": "d1", "data": {"size": 10}}
    d = ensureDeferred(writer.wait_for_data("vdisk", "d1", lambda data: False, "the resize"))
    with pytest.raises(BackendTimeout, match="did not apply the resize within 5 s"):
        drive(clock, d, 6)
