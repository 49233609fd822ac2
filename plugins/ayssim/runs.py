"""
AYS runs: which (service, action) pairs a run takes, in which steps, and
the run/step/job objects with their states and logs.

Building a run (AYS 8.2 semantics, plus claiming):

- collect every action in state ``scheduled`` or ``error`` over the
  repository;
- expand each with its prerequisites: the template's dependency table
  (``install`` needs ``init`` ...), the same action on every producer
  (the parent is one) for ordinary actions, on every consumer (children
  are consumers) for ``stop``/``uninstall``/``delete``/``destroy``;
- keep the pairs whose action is neither ``ok`` nor claimed by another
  run; a step holds the kept pairs whose prerequisites are in earlier
  steps;
- claim the kept pairs (action state ``running``) so that a concurrent
  run cannot take them too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from plugins.ayssim.store import Repository, Service, new_key
from plugins.ayssim.templates import TEARDOWN_ACTIONS

DONE = ("ok", "running")


class RunBuildError(Exception):
    """The actions cannot be ordered (a dependency cycle)."""


def _now() -> int:
    return int(time.time())


@dataclass
class Job:
    service: Service
    action: str
    key: str = field(default_factory=new_key)
    state: str = "new"
    logs: list[dict[str, Any]] = field(default_factory=list)

    def log(self, text: str, category: str = "msg", level: int = 1) -> None:
        self.logs.append({"epoch": _now(), "level": level, "category": category, "log": text,
                          "tags": ""})

    def view(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action_name": self.action,
            "actor_name": self.service.actor,
            "actor": self.service.actor,
            "service_key": self.service.key,
            "service_name": self.service.name,
            "state": self.state,
            "logs": [dict(entry) for entry in self.logs],
        }


@dataclass
class Step:
    number: int
    jobs: list[Job]
    state: str = "new"

    def view(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "jobs": [j.view() for j in self.jobs]}


@dataclass
class Run:
    """
    :ivar claims: the action state each job's action had before the run
        claimed it, restored for jobs that never ran.
    """

    repository: Repository
    steps: list[Step]
    simulate: bool = False
    key: str = field(default_factory=new_key)
    state: str = "new"
    epoch: int = field(default_factory=_now)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)

    def touch(self) -> None:
        self.epoch = _now()

    @property
    def jobs(self) -> list[Job]:
        return [j for s in self.steps for j in s.jobs]

    def view(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state, "epoch": self.epoch,
                "steps": [s.view() for s in self.steps]}


Pair = tuple[Service, str]


def _pid(pair: Pair) -> tuple[str, str]:
    return (pair[0].key, pair[1])


def collect(repository: Repository) -> list[Pair]:
    """Every (service, action) in state ``scheduled`` or ``error``."""
    return [(s, a) for s in repository.services for a, state in s.actions.items()
            if state in ("scheduled", "error")]


def prerequisites(pair: Pair) -> list[Pair]:
    """What must have run before ``pair``."""
    service, action = pair
    before: list[Pair] = [(service, a) for a in service.template.prerequisites(action)
                          if a in service.actions]
    others: Iterable[Service] = service.consumers if action in TEARDOWN_ACTIONS else service.producers
    before.extend((other, action) for other in others if action in other.actions)
    return before


def build(repository: Repository, simulate: bool = False) -> Run:
    """
    A run over what the repository has scheduled, claimed unless
    ``simulate``.

    :raises RunBuildError: on a dependency cycle.
    """
    depth: dict[tuple[str, str], int] = {}
    kept: dict[tuple[str, str], Pair] = {}
    visiting: set[tuple[str, str]] = set()

    def keep(pair: Pair) -> bool:
        return pair[0].actions.get(pair[1]) not in DONE

    def visit(pair: Pair) -> int:
        """The step index (0-based) of ``pair`` if kept, else of its latest kept prerequisite + 1."""
        pid = _pid(pair)
        if pid in depth:
            return depth[pid]
        if pid in visiting:
            raise RunBuildError(f"dependency cycle at {pair[0].actor}!{pair[0].name} {pair[1]}")
        visiting.add(pid)
        level = 0
        for before in prerequisites(pair):
            below = visit(before)
            level = max(level, below + (1 if _pid(before) in kept else 0))
        visiting.discard(pid)
        depth[pid] = level
        if keep(pair):
            kept[pid] = pair
        return level

    for pair in collect(repository):
        visit(pair)
    levels = sorted({depth[pid] for pid in kept})
    steps = [Step(number, [Job(s, a) for pid, (s, a) in kept.items() if depth[pid] == level])
             for number, level in enumerate(levels, start=1)]
    run = Run(repository, steps, simulate=simulate)
    if not simulate:
        for job in run.jobs:
            run.claims[(job.service.key, job.action)] = job.service.actions[job.action]
            job.service.actions[job.action] = "running"
    return run
