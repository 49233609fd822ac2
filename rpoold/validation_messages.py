"""
The words of a refused request: what a JSON Schema violation, a pattern or
a field path is called in the ``{"error": ...}`` a client reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jsonschema

import rpoold.contract
from rpoold.names import DOT_NAMES, PATH_PARAMETERS, SERVICENAME

#: What each contract rule's pattern means, by rule name.
_RULE_NAMES = {
    "macaddress_or_empty": "a MAC address or empty",
    "container_filesystem": "'<storagepool>:<filesystem>'",
    "env_entry": "'KEY=VALUE' with a non-empty KEY",
    "port_mapping": "'<node port>:<container port>'",
}


def _pattern_names() -> dict[str, str]:
    names = {
        SERVICENAME: "made of letters, digits, '_', '.' and '-'",
        "^$|" + SERVICENAME: "empty or made of letters, digits, '_', '.' and '-'",
        PATH_PARAMETERS["processid"]: "an unsigned integer",
    }
    rules = rpoold.contract.load()["validators"]
    for rule, text in _RULE_NAMES.items():
        names.setdefault(rules[rule]["pattern"], text)
    return names


#: What each pattern a request value must match means, for error messages.
PATTERN_NAMES: dict[str, str] = _pattern_names()


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
        meaning = expected(error.validator_value)
        return f"{subject} has an invalid value {error.instance!r}: it must be {meaning}"
    if validator in ("minimum", "maximum"):
        word = "at least" if validator == "minimum" else "at most"
        return f"{subject} must be {word} {error.validator_value}"
    if validator in ("minLength", "maxLength", "minItems"):
        word = "at least" if validator != "maxLength" else "at most"
        unit = "item(s)" if validator == "minItems" else "character(s)"
        return f"{subject} must have {word} {error.validator_value} {unit}"
    if validator in ("anyOf", "allOf", "if", "then"):
        best = jsonschema.exceptions.best_match(error.context or [])
        if best is not None and best is not error:
            return error_message(best)
        return f"{subject} has an invalid value {error.instance!r}"
    if validator == "not" and error.instance in DOT_NAMES:
        return f"{subject} must not be '.' or '..'"
    if validator == "format" or validator == "const":
        return f"{subject} has an invalid value {error.instance!r}"
    return f"{subject}: {error.message}"
