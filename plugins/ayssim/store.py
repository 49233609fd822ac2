"""
The simulator's state: repositories holding blueprints, services and
runs, and the JSON views AYS 8.2 gives of them.
"""

from __future__ import annotations

import copy
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import DeferredLock

from plugins.ayssim.templates import Template

#: Where AYS keeps repositories (only shown in ``path`` fields).
REPOS_ROOT = "/optvar/cockpit_repos"


def new_key() -> str:
    return uuid.uuid4().hex


class StoredRun(Protocol):
    """
    A run as a repository keeps it (a ``plugins.ayssim.runs.Run``): what
    the readers of ``Repository.runs`` use of it.  The runs module builds
    runs over this store, so the store names only these, and does not
    import it back.
    """

    @property
    def key(self) -> str:
        """The run's key in the repository."""
        ...

    @property
    def state(self) -> str:
        """``new``, ``running``, ``ok`` or ``error``."""
        ...

    @property
    def epoch(self) -> int:
        """When the run last changed (seconds)."""
        ...

    def view(self) -> dict[str, Any]:
        """The AysRun object of ``GET aysrun/{key}``."""
        ...


class FieldError(Exception):
    """A ``fields`` name that is not in a listed service's schema."""


class Service:
    """
    One AYS service.

    :ivar data: every schema field of the template.
    :ivar state: ``new`` before any job ran for it, then ``ok`` / ``error``
        after the last one.
    :ivar actions: the state of each action, by name.
    :ivar rescheduled: actions scheduled again while a run was executing
        them; they go back to ``scheduled`` when that job ends.
    """

    def __init__(self, repository: Repository, template: Template, name: str,
                 data: dict[str, Any]) -> None:
        self.repository = repository
        self.template = template
        self.name = name
        self.key = new_key()
        self.data = data
        self.state = "new"
        self.actions: dict[str, str] = dict.fromkeys(template.actions, "new")
        self.parent: Service | None = None
        self.producers: list[Service] = []
        self.consumers: list[Service] = []
        self.rescheduled: set[str] = set()

    def __repr__(self) -> str:
        return f"<Service {self.actor}!{self.name}>"

    @property
    def actor(self) -> str:
        return self.template.actor

    @property
    def role(self) -> str:
        return self.template.role

    def ref(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name}

    def ancestors(self) -> list[Service]:
        """The parent chain, outermost first."""
        chain: list[Service] = []
        parent = self.parent
        while parent is not None and parent not in chain:
            chain.insert(0, parent)
            parent = parent.parent
        return chain

    @property
    def path(self) -> str:
        parts = [f"{s.role}!{s.name}" for s in [*self.ancestors(), self]]
        return "/".join([self.repository.path, "services", *parts])

    def link_producer(self, producer: Service) -> None:
        if producer is self:
            return
        if producer not in self.producers:
            self.producers.append(producer)
        if self not in producer.consumers:
            producer.consumers.append(self)

    def set_parent(self, parent: Service | None) -> None:
        """Re-parent; the parent is also a producer."""
        if self.parent is not None and self.parent is not parent:
            self.unlink(self.parent)
        self.parent = parent
        if parent is not None:
            self.link_producer(parent)

    def unlink(self, other: Service) -> None:
        for a, b in ((self, other), (other, self)):
            if b in a.producers:
                a.producers.remove(b)
            if b in a.consumers:
                a.consumers.remove(b)

    def view(self) -> dict[str, Any]:
        """The Service object of ``GET service/{role}/{name}``."""
        return {
            "key": self.key,
            "name": self.name,
            "role": self.role,
            "repository": self.repository.name,
            "data": copy.deepcopy(self.data),
            "state": self.state,
            "path": self.path,
            "actions": [{"name": name, "code": "", "state": state, "recurring": None}
                        for name, state in self.actions.items()],
            "parent": self.parent.ref() if self.parent is not None else None,
            "producers": [p.ref() for p in self.producers],
            "consumers": [c.ref() for c in self.consumers],
            "children": [c.ref() for c in self.repository.children(self)],
            "events": [],
        }

    def item(self, fields: list[str]) -> dict[str, Any]:
        """
        A ServiceData list item carrying ``fields`` of the data.

        :raises FieldError: for a field not in the schema.
        """
        data = {}
        for name in fields:
            f = self.template.schema_field(name)
            if f is None:
                raise FieldError(
                    f'No such field "{name}" in service "service:{self.role}!{self.name}" data')
            data[name] = copy.deepcopy(self.data.get(name, f.initial()))
        return {"role": self.role, "name": self.name, "data": data}


@dataclass
class Blueprint:
    name: str
    content: str
    archived: bool = False
    epoch: int = field(default_factory=lambda: int(time.time()))

    @property
    def hash(self) -> str:
        return hashlib.md5(self.content.encode("utf-8")).hexdigest()

    def view(self, repository: Repository) -> dict[str, Any]:
        filename = f"_{self.name}" if self.archived else self.name
        return {"name": self.name, "content": self.content, "hash": self.hash,
                "path": f"{repository.path}/blueprints/{filename}", "archived": self.archived}


class Repository:
    """
    An AYS repository.

    :ivar runs: the runs created over it, by key.
    :ivar lock: serialises blueprint executions and run creation, so the
        service store is never seen half-updated by either.
    """

    def __init__(self, name: str, git_url: str = "not defined") -> None:
        self.name = name
        self.git_url = git_url or "not defined"
        self.path = f"{REPOS_ROOT}/{name}"
        self.services: list[Service] = []
        self.blueprints: list[Blueprint] = []
        self.runs: dict[str, StoredRun] = {}
        self.lock = DeferredLock()

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "git_url": self.git_url}

    # Blueprints ---------------------------------------------------------------

    def active_blueprint(self, name: str) -> Blueprint | None:
        return next((b for b in self.blueprints if b.name == name and not b.archived), None)

    def any_blueprint(self, name: str) -> Blueprint | None:
        """The active blueprint of that name, else the latest archived one."""
        found = self.active_blueprint(name)
        if found is None:
            found = next((b for b in reversed(self.blueprints) if b.name == name), None)
        return found

    # Services -------------------------------------------------------------------

    def find(self, role: str, name: str) -> Service | None:
        """The service named ``name`` whose actor the path role names."""
        return next((s for s in self.services if s.name == name and s.template.matches(role)), None)

    def by_role(self, role: str) -> list[Service]:
        return [s for s in self.services if s.template.matches(role)]

    def by_actor(self, actor: str) -> list[Service]:
        return [s for s in self.services if s.actor == actor]

    def children(self, service: Service) -> list[Service]:
        return [s for s in self.services if s.parent is service]

    def add(self, service: Service) -> None:
        if self.find(service.role, service.name) is not None:
            raise ValueError(f"service {service.role}!{service.name} exists")
        self.services.append(service)

    def remove(self, service: Service) -> list[Service]:
        """
        Remove ``service`` and, recursively, its children; unlink them from
        their producers and consumers.

        :returns: every removed service.
        """
        removed = list(self._subtree(service))
        for gone in removed:
            for other in [*gone.producers, *gone.consumers]:
                gone.unlink(other)
            if gone in self.services:
                self.services.remove(gone)
        return removed

    def _subtree(self, service: Service) -> Iterator[Service]:
        for child in self.children(service):
            yield from self._subtree(child)
        yield service
