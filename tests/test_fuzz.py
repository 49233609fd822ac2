"""
Fuzzing: schemathesis generates requests from ``/openapi.json`` of a live
``twistd rpoold`` on the mock backend (a real subprocess, real HTTP), both
valid and invalid ones, for every operation.  Every answer must be no 5xx,
of a documented status and content type, match its declared schema, and
invalid input must be refused with a 4xx.

Bounded: ``EXAMPLES`` requests at most per route (92 routes: the 91
operations and one path alias), a third valid, a third invalid, a third
valid with the path's ids held at the mock's seed (so that requests reach
a node and a container that exist); derandomized so that a run is
repeatable; no shrinking.  Every finding is reported at once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
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
from testbed.mock_pool import MOCK_CONFIG
from testbed.twistd import start_rpoold
from tests.support.scenario import N2, SEED_CONTAINER, SEED_JOB, N

#: Requests per route; ``RPOOLD_FUZZ_EXAMPLES`` raises it for a longer hunt.
EXAMPLES = int(os.environ.get("RPOOLD_FUZZ_EXAMPLES", "36"))

#: Path parameters of the mock's seed: a node, its container, a job of it,
#: a process of it.
SEEDS = {"nodeid": N, "containername": SEED_CONTAINER, "jobid": SEED_JOB, "processid": 2}
#: rpoold's own endpoints that answer an endless ``text/event-stream``.
STREAMS = {f"{op.method} {op.path}" for op in OWN_OPERATIONS if op.response_media_type == "text/event-stream"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="session")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("fuzz") / "rpoold.toml"
    config.write_text(MOCK_CONFIG + "\n[server]\nrequest_timeout = 5\naccess_log = false\n")
    child, base = start_rpoold(str(config))
    yield base
    status = child.stop()
    assert status == 0, child.output()[-2000:]


@pytest.fixture(scope="session")
def fuzz_report(fuzz_daemon: str) -> dict[str, Any]:
    """Run the whole fuzzing campaign once; the tests below read its report."""
    schema = schemathesis.openapi.from_url(f"{fuzz_daemon}/openapi.json")
    sent: Counter[str] = Counter()
    findings: dict[str, str] = {}
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
        for name, mode, fixed in campaigns:
            try:
                _campaign(operation, mode, fixed, sent)()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                # Nothing in the operation can be made invalid (no parameter, no body).
            except (Exception, BaseExceptionGroup) as e:  # every finding is reported at the end
                findings[f"{operation.label} ({name})"] = _describe(e)[:3000]
    return {"sent": sent, "findings": findings, "seconds": time.monotonic() - started}


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_describe(e) for e in error.exceptions)
    return f"{type(error).__name__}: {error}"


def _campaign(
    operation: Any, mode: GenerationMode, fixed: dict[str, Any] | None, sent: Counter[str]
) -> Any:
    """
    :param fixed: path parameters to hold at these values (ids that exist
        in the mock's seed, so that the request reaches deep into it).
    :returns: a Hypothesis test sending ``EXAMPLES // 3`` cases of ``mode``
        to ``operation``.
    """

    @settings(
        max_examples=EXAMPLES // 3,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case: Any) -> None:
        sent[operation.label] += 1
        case.call_and_validate(checks=CHECKS, timeout=30)

    return run


def test_fuzz_finds_nothing(fuzz_report: dict[str, Any]) -> None:
    findings = fuzz_report["findings"]
    assert not findings, "\n\n".join(f"{k}:\n{v}" for k, v in findings.items())


def test_fuzz_figures(fuzz_report: dict[str, Any]) -> None:
    sent = fuzz_report["sent"]
    total = sum(sent.values())
    print(f"\nfuzzing: {total} requests over {len(sent)} routes in {fuzz_report['seconds']:.1f} s")
    operations = {(op.method, op.path) for op in OPERATIONS}
    covered = {tuple(label.split(" ", 1)) for label in sent}
    assert operations <= covered, sorted(operations - covered)
    assert total >= 2000
