"""
Blueprint parsing: the YAML text AYS receives, checked into service blocks
(``<actor>__<instance>: {fields}``) and an ``actions`` list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from plugins.ayssim.templates import Catalogue

NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class BlueprintError(Exception):
    """Execution of a blueprint fails (AYS 8.2 answers 500)."""


@dataclass(frozen=True)
class ServiceBlock:
    actor: str
    instance: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ActionEntry:
    actions: tuple[str, ...]
    actor: str
    service: str | None
    force: bool


@dataclass(frozen=True)
class ParsedBlueprint:
    services: tuple[ServiceBlock, ...]
    actions: tuple[ActionEntry, ...]


def check_name(name: str, what: str = "instance name") -> None:
    if not NAME.match(name):
        raise BlueprintError(f"{what} {name!r} may only hold letters, digits, '.', '_' and '-'")


def parse(content: str, catalogue: Catalogue) -> ParsedBlueprint:
    """
    :raises BlueprintError: invalid YAML, a key that is neither ``actions``
        nor ``<actor>__<instance>``, an unknown actor, a bad instance name
        or a malformed ``actions`` list.
    """
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as e:
        raise BlueprintError(f"invalid YAML: {e}") from None
    if document is None:
        return ParsedBlueprint((), ())
    if not isinstance(document, dict):
        raise BlueprintError("a blueprint is a mapping of '<actor>__<instance>' keys and 'actions'")
    services: list[ServiceBlock] = []
    actions: tuple[ActionEntry, ...] = ()
    for key, value in document.items():
        if not isinstance(key, str):
            raise BlueprintError(f"key {key!r} is not a string")
        if key == "actions":
            actions = _actions(value)
            continue
        actor, sep, instance = key.partition("__")
        if not sep or not actor or not instance:
            raise BlueprintError(f"key {key!r} is not of the form '<actor>__<instance>'")
        if catalogue.get(actor) is None:
            raise BlueprintError(f"actor {actor!r} does not exist")
        check_name(instance)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise BlueprintError(f"the value of {key!r} must be a mapping of data fields")
        for name in value:
            if not isinstance(name, str):
                raise BlueprintError(f"{key}: field name {name!r} is not a string")
        services.append(ServiceBlock(actor, instance, dict(value)))
    return ParsedBlueprint(tuple(services), actions)


def _actions(value: Any) -> tuple[ActionEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BlueprintError("'actions' must be a list")
    entries = []
    for n, item in enumerate(value):
        where = f"actions[{n}]"
        if not isinstance(item, dict):
            raise BlueprintError(f"{where} must be a mapping")
        unknown = set(item) - {"action", "actor", "service", "force", "recurring"}
        if unknown:
            raise BlueprintError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        action, actor, service, force = (item.get(k) for k in ("action", "actor", "service", "force"))
        if not isinstance(action, str) or not action.strip():
            raise BlueprintError(f"{where}: 'action' must be a non-empty string")
        if not isinstance(actor, str) or not actor:
            raise BlueprintError(f"{where}: 'actor' must be a non-empty string")
        if service is not None and not isinstance(service, str):
            raise BlueprintError(f"{where}: 'service' must be a string")
        if force is not None and not isinstance(force, bool):
            raise BlueprintError(f"{where}: 'force' must be a boolean")
        names = tuple(a.strip() for a in action.split(",") if a.strip())
        entries.append(ActionEntry(names, actor, service, bool(force)))
    return tuple(entries)
