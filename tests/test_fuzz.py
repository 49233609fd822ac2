"""
Fuzzing every backend: schemathesis generates requests from
``/openapi.json`` of a live ``twistd rpoold`` (a real subprocess, real
HTTP) and sends them, on each deployment in turn:

- ``mock``: rpoold on the mock pool;
- ``core0``: rpoold on the core0 backend against ``twistd core0sim`` (and
  the mock for storage clusters and vdisks, as ``etc/core0.toml``);
- ``ays``: the original's split, rpoold on AYS (``twistd ayssim``) and
  core0 (``twistd core0sim``).

Per route (95: the 93 operations and two path aliases) a bounded number of
cases, in three campaigns: valid, invalid, and valid with the path's ids
held at the seed (a node, its container, a job, a process that exist, so
that requests reach deep into the backend).  Then the stateful campaign:
scenarios that chain operations along the links schemathesis infers from
the document (a create, then reads and changes of what it made).
Generation is derandomized so that a run is repeatable; no shrinking.

Every answer must be no 5xx, of a documented status and content type,
match its declared schema, invalid input must be refused with a 4xx, and
valid input must never be refused by the validator (the document says all
it checks: a 400 for schema-valid input may only be about the backend's
state, such as a device that does not exist).  Every request has a
deadline (no hang).  The simulators' memory stays bounded: the RSS of
core0sim and ayssim (and of rpoold, where the mock's pool lives) before
and after the run, printed, and each at most twice what it was.  Every
finding is reported at once.

``RPOOLD_FUZZ_EXAMPLES`` (cases per route) and ``RPOOLD_FUZZ_SCENARIOS``
(stateful scenarios) raise the bounds for a longer hunt.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from rpoold.contract import OPERATIONS, OWN_OPERATIONS
from testbed.ays_split import SplitEnvironment
from testbed.core0sim import Core0Sim
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child
from testbed.toml_text import toml
from testbed.twistd import start_rpoold
from tests.support.scenario import N2, SEED_CONTAINER, SEED_JOB, N

#: Cases per route and stateful scenarios, per deployment (the simulators
#: answer more slowly than the mock; AYS writes wait for their runs).
EXAMPLES = {"mock": 36, "core0": 30, "ays": 18}
SCENARIOS = {"mock": 40, "core0": 30, "ays": 20}
#: Steps of one stateful scenario, at most.
STEPS = 8
#: Seconds a request may take before the run counts it as a hang.
DEADLINE = {"mock": 30.0, "core0": 30.0, "ays": 60.0}


def _examples(deployment: str) -> int:
    return int(os.environ.get("RPOOLD_FUZZ_EXAMPLES", EXAMPLES[deployment]))


def _scenarios(deployment: str) -> int:
    return int(os.environ.get("RPOOLD_FUZZ_SCENARIOS", SCENARIOS[deployment]))


#: Path parameters of the seed: a node, its container, a job of it, a
#: process of it.
SEEDS = {"nodeid": N, "containername": SEED_CONTAINER, "jobid": SEED_JOB, "processid": 2}
#: rpoold's own endpoints that answer an endless ``text/event-stream``.
STREAMS = {f"{op.method} {op.path}" for op in OWN_OPERATIONS if op.response_media_type == "text/event-stream"}

#: What the validator says when it refuses a body or a parameter: a
#: schema-valid request answered with one of these is a hole in the document.
VALIDATOR_WORDS = ("field '", "missing required field", "path parameter", "query parameter",
                   "request body")


def validator_accepts_valid_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """
    A case generated valid is never refused by rpoold's validator: every
    rule it applies is in the document.  (A 400 about the backend's state
    is allowed: the document cannot know which devices a node has.)
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        message = str(response.json().get("error", ""))
    except ValueError:
        return None
    if message.startswith(VALIDATOR_WORDS):
        raise AssertionError(f"valid data refused by the validator: {message}")
    return None


#: Refusals for size, answered before the request is read whole: an
#: invalid case (a string far over its maxLength) may well earn one.
SIZE_REFUSALS = (413, 414, 431)


def invalid_data_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """Invalid input is refused with a 4xx: schemathesis's check, which does not know 413, 414 and 431."""
    if response.status_code in SIZE_REFUSALS:
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    invalid_data_refused,
    validator_accepts_valid_data,
]


@dataclass
class Deployment:
    """A running rpoold and what it runs on."""

    name: str
    url: str
    #: The simulators' processes, by name (their memory is watched).
    simulators: dict[str, int] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None
    output: Callable[[], str] = lambda: ""


def rss_kib(pid: int) -> int:
    """:returns: the resident set size of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for process {pid}")


def _server_section() -> str:
    return "\n[server]\nrequest_timeout = 10\naccess_log = false\n"


def _mock(tmp: Path) -> Deployment:
    config = tmp / "rpoold.toml"
    config.write_text(MOCK_CONFIG + _server_section())
    child, base = start_rpoold(str(config))
    # The mock's pool lives in rpoold itself.
    return Deployment("mock", base, {"rpoold (mock pool)": child.process.pid}, lambda: _stopped(child),
                      child.output)


def _stopped(child: Child) -> None:
    status = child.stop()
    assert status == 0, child.output()[-2000:]


def _core0(tmp: Path) -> Deployment:
    sim = Core0Sim(2, ("--reboot-seconds", "0.3")).start()
    rpoold: Child | None = None
    try:
        config = tmp / "rpoold.toml"
        config.write_text(toml({
            "server": {"request_timeout": 10, "access_log": False},
            "backends": {
                "core0": {"plugin": "core0", "nodes_file": str(sim.node_file), "timeout": 5,
                          "ping_timeout": 1.0, "transition_seconds": 0.05},
                "mock": {"plugin": "mock"},
            },
            "families": {"default": "core0", "storageclusters": "mock", "vdisks": "mock"},
        }))
        rpoold, base = start_rpoold(str(config))
    except BaseException:
        sim.stop()
        raise
    assert sim.child is not None

    def stop() -> None:
        try:
            _stopped(rpoold)
        finally:
            sim.stop()

    return Deployment("core0", base, {"core0sim": sim.child.process.pid}, stop,
                      lambda: f"{rpoold.output()[-3000:]}\n--- core0sim\n{sim.output()[-3000:]}")


def _ays(tmp: Path) -> Deployment:
    env = SplitEnvironment(nodes=2).start()
    assert env.ayssim is not None and env.core0sim.child is not None
    simulators = {"core0sim": env.core0sim.child.process.pid, "ayssim": env.ayssim.process.pid}
    return Deployment("ays", env.url, simulators, env.stop, env.output)


STARTERS: dict[str, Callable[[Path], Deployment]] = {"mock": _mock, "core0": _core0, "ays": _ays}


@dataclass
class Report:
    """What a fuzzing run sent and found."""

    deployment: str
    sent: Counter[str] = field(default_factory=Counter)
    scenario_steps: int = 0
    findings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: RSS in KiB of each simulator, before and after.
    rss: dict[str, tuple[int, int]] = field(default_factory=dict)


@pytest.fixture(scope="session", params=list(STARTERS))
def fuzz_report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """Start one deployment, run the whole campaign on it once; the tests below read its report."""
    name: str = request.param
    deployment = STARTERS[name](tmp_path_factory.mktemp(f"fuzz-{name}"))
    try:
        yield run_campaign(deployment)
    finally:
        deployment.stop()


def run_campaign(deployment: Deployment) -> Report:
    report = Report(deployment.name)
    before = {sim: rss_kib(pid) for sim, pid in deployment.simulators.items()}
    schema = schemathesis.openapi.from_url(f"{deployment.url}/openapi.json")
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in STREAMS:
            continue  # an event stream does not end: it has tests of its own (test_events.py)
        names = {p.name for p in operation.path_parameters}
        seeded = {k: v for k, v in SEEDS.items() if k in names}
        if operation.label == "DELETE /nodes/{nodeid}":
            seeded = {"nodeid": N2}
        campaigns = [("positive", GenerationMode.POSITIVE, None), ("negative", GenerationMode.NEGATIVE, None)]
        if seeded:
            campaigns.append(("seeded", GenerationMode.POSITIVE, seeded))
        for campaign, mode, fixed in campaigns:
            try:
                _campaign(deployment, operation, mode, fixed, report.sent)()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                # Nothing in the operation can be made invalid (no parameter, no body).
            except (Exception, BaseExceptionGroup) as e:  # every finding is reported at the end
                report.findings[f"{operation.label} ({campaign})"] = _describe(e)[:3000]
    try:
        report.scenario_steps = _stateful(deployment, schema, report.findings)
    except (Exception, BaseExceptionGroup) as e:
        report.findings["stateful scenarios"] = _describe(e)[:6000]
    report.seconds = time.monotonic() - started
    report.rss = {sim: (before[sim], rss_kib(pid)) for sim, pid in deployment.simulators.items()}
    if report.findings:
        report.findings["(logs)"] = deployment.output()[-4000:]
    return report


def _describe(error: BaseException) -> str:
    notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()) if note.startswith(ANSWERED))
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_describe(e) for e in error.exceptions) + notes
    return f"{type(error).__name__}: {error}{notes}"


ANSWERED = "answered "


def _validate(case: Any, response: Any) -> None:
    """Check one answer; a finding carries the request (as curl) and the answer."""
    try:
        case.validate_response(response, checks=CHECKS)
    except (Exception, BaseExceptionGroup) as e:
        e.add_note(f"{ANSWERED}{response.status_code} {response.text[:600]!r} to\n"
                   f"{case.as_curl_command()[:1500]}")
        raise


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _campaign(
    deployment: Deployment, operation: Any, mode: GenerationMode, fixed: dict[str, Any] | None,
    sent: Counter[str],
) -> Any:
    """
    :param fixed: path parameters to hold at these values (ids that exist
        in the seed, so that the request reaches deep into it).
    :returns: a Hypothesis test sending a third of the deployment's cases
        per route, of ``mode``, to ``operation``.
    """

    @_settings(max(1, _examples(deployment.name) // 3))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case: Any) -> None:
        sent[operation.label] += 1
        _validate(case, case.call(timeout=DEADLINE[deployment.name]))

    return run


def _stateful(deployment: Deployment, schema: Any, findings: dict[str, str]) -> int:
    """
    Run the stateful scenarios (links inferred by schemathesis).  A
    finding is noted and the scenario goes on: raising would make
    Hypothesis replay the scenario against a server whose state has moved
    on (and report that instead).

    :returns: how many requests they sent.
    """
    machine = schema.as_state_machine()
    steps = 0
    deadline = DEADLINE[deployment.name]

    class Scenarios(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"timeout": deadline}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            nonlocal steps
            steps += 1
            try:
                _validate(case, response)
            except (Exception, BaseExceptionGroup) as e:
                findings.setdefault(f"{case.operation.label} (stateful)", _describe(e)[:3000])

    scenarios = _settings(_scenarios(deployment.name))
    Scenarios.run(settings=settings(scenarios, stateful_step_count=STEPS, phases=[Phase.generate]))
    return steps


def test_fuzz_finds_nothing(fuzz_report: Report) -> None:
    findings = fuzz_report.findings
    assert not findings, "\n\n".join(f"{k}:\n{v}" for k, v in findings.items())


def test_fuzz_figures(fuzz_report: Report) -> None:
    sent = fuzz_report.sent
    total = sum(sent.values())
    print(f"\nfuzzing {fuzz_report.deployment}: {total} requests over {len(sent)} routes and "
          f"{fuzz_report.scenario_steps} in stateful scenarios, {fuzz_report.seconds:.1f} s")
    operations = {(op.method, op.path) for op in OPERATIONS}
    covered = {tuple(label.split(" ", 1)) for label in sent}
    assert operations <= covered, sorted(operations - covered)
    # As many cases as one campaign on every route, at least.
    assert total >= len(operations) * max(1, _examples(fuzz_report.deployment) // 3)
    assert fuzz_report.scenario_steps >= _scenarios(fuzz_report.deployment)


def test_simulators_memory_stays_bounded(fuzz_report: Report) -> None:
    """Nothing the fuzzer sends makes a simulator grow: each ends within twice its RSS at the start."""
    assert fuzz_report.rss
    for sim, (before, after) in fuzz_report.rss.items():
        print(f"\n{sim} RSS ({fuzz_report.deployment}): {before / 1024:.1f} MiB before, "
              f"{after / 1024:.1f} MiB after")
    for sim, (before, after) in fuzz_report.rss.items():
        assert after <= 2 * before, (sim, fuzz_report.rss)
