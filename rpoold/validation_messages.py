"""
The words of a refused request: what a JSON Schema violation, a pattern or
a field path is called in the ``{"error": ...}`` a client reads.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Any

import jsonschema

import rpoold.contract
from rpoold.names import DOT_NAMES, REFERENCE_FIELDS, SERVICENAME

#: What each contract rule's pattern means, by rule name.
_RULE_NAMES = {
    "macaddress_or_empty": "a MAC address or empty",
    "container_filesystem": "'<storagepool>:<filesystem>'",
    "env_entry": "'KEY=VALUE' with a non-empty KEY",
    "port_mapping": "'<node port>:<container port>', each {range}",
    "container_path": "an absolute, normalised path",
    "block_device": "a device path '/dev/<name>'",
    "zerotier_network": "a ZeroTier network id (16 hexadecimal digits)",
    "hostname": "visible ASCII characters (no space)",
    "vlan_tag": "a VLAN tag {range}",
    "vxlan_id": "a VXLAN id {range}",
}

#: The most characters of a client's value an error message shows.
SHOWN = 64


def _pattern_names() -> dict[str, str]:
    names = {
        SERVICENAME: "made of letters, digits, '_', '.' and '-'",
        "^$|" + SERVICENAME: "empty or made of letters, digits, '_', '.' and '-'",
        REFERENCE_FIELDS[("CreateContainer", "filesystems")]:
            "'<storagepool>:<filesystem>', both made of letters, digits, '_', '.' and '-'",
    }
    rules = rpoold.contract.load()["validators"]
    for rule, text in _RULE_NAMES.items():
        if "range" in rules[rule]:
            lowest, highest = rules[rule]["range"]
            text = text.format(range=f"from {lowest} to {highest}")
        names.setdefault(rules[rule]["pattern"], text)
    return names


#: What each pattern a request value must match means, for error messages.
PATTERN_NAMES: dict[str, str] = _pattern_names()

#: The ``container_path`` rule's pattern.
CONTAINER_PATH: str = rpoold.contract.load()["validators"]["container_path"]["pattern"]


def shown(value: Any) -> str:
    """
    :returns: ``repr(value)``, cut to ``SHOWN`` characters: a message
        never echoes a long value back whole.
    """
    text = repr(value)
    if len(text) <= SHOWN:
        return text
    return f"{text[:SHOWN]}... ({len(text)} characters)"


def container_path_problem(path: str, what: str) -> str | None:
    """
    :param what: names the value in the message (``field 'path'``).
    :returns: what is wrong with a container path, or ``None`` when it is
        absolute and normalised (the ``container_path`` rule).
    """
    if not path.startswith("/"):
        return f"{what} must be an absolute path"
    if posixpath.normpath(path) != path or path.startswith("//"):
        return f"{what} must be a normalised path (no '.', '..' or '//')"
    if "\x00" in path:
        return f"{what} must not contain NUL"
    return None


def expected(pattern: str) -> str:
    """:returns: what a value matching ``pattern`` is, in words."""
    return PATTERN_NAMES.get(pattern, f"match {pattern}")


def field_path(path: Iterable[Any]) -> str:
    """``["nics", 0, "id"]`` -> ``nics[0].id``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_body(type_ref: str) -> str:
    """``T[]`` -> ``array of T``; ``T`` -> ``object (T)``."""
    base, is_array = rpoold.contract.element_type(type_ref)
    return f"array of {base}" if is_array else f"object ({base})"


def error_message(error: jsonschema.ValidationError) -> str:
    """:returns: one violation of a request body's schema, in words, naming the field."""
    where = field_path(error.absolute_path)
    validator = error.validator
    if validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        full = f"{where}.{name}" if where else name
        return f"missing required field '{full}'"
    subject = f"field '{where}'" if where else "request body"
    if validator == "type":
        return f"{subject} must be of type {error.validator_value}"
    if validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{subject} must be one of: {allowed}"
    if validator == "pattern":
        if error.validator_value == CONTAINER_PATH and isinstance(error.instance, str):
            problem = container_path_problem(error.instance, subject)
            if problem is not None:
                return problem
        meaning = expected(error.validator_value)
        return f"{subject} has an invalid value {shown(error.instance)}: it must be {meaning}"
    if validator in ("minimum", "maximum"):
        word = "at least" if validator == "minimum" else "at most"
        return f"{subject} must be {word} {error.validator_value}"
    if validator in ("minLength", "maxLength", "minItems", "maxItems"):
        word = "at least" if validator in ("minLength", "minItems") else "at most"
        unit = "item(s)" if validator in ("minItems", "maxItems") else "character(s)"
        return f"{subject} must have {word} {error.validator_value} {unit}"
    if validator == "uniqueItems":
        return f"{subject} must not hold the same item twice"
    if validator == "anyOf" and error.schema.get("$comment") in CROSS_FIELD:
        return CROSS_FIELD[error.schema["$comment"]](error.instance)
    if validator in ("anyOf", "allOf", "if", "then"):
        best = jsonschema.exceptions.best_match(error.context or [])
        if best is not None and best is not error:
            return error_message(best)
        return f"{subject} has an invalid value {shown(error.instance)}"
    if validator == "not" and error.instance in DOT_NAMES:
        return f"{subject} must not be '.' or '..'"
    if validator in ("format", "const"):
        return f"{subject} has an invalid value {shown(error.instance)}"
    return f"{subject} has an invalid value {shown(error.instance)} ({validator})"


def _servers_not_a_multiple(body: Any) -> str:
    nodes = len(body["nodes"])
    return f"field 'servers' ({body['servers']}) must be a multiple of the number of nodes ({nodes})"


#: Messages of the rules between fields, by the ``$comment`` of their schema.
CROSS_FIELD = {"servers_multiple_of_nodes": _servers_not_a_multiple}
