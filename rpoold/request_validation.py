"""
What a request carries, checked before any backend sees it: path
parameters, the container path of the file operations, and JSON bodies.

A JSON body goes through the contract's processing order: decode (within
the bounds of ``rpoold.json_bodies``), drop nulls, rename aliases, fill
defaults, validate against the operation's schema
(``rpoold.json_schemas``: the checks between fields are in it too), then
fill every absent field with its zero value (``rpoold.zero_values``) so
that backends always see complete bodies.  Every refusal is a
``BadRequest`` whose message names the field
(``rpoold.validation_messages``).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

import rpoold.contract
from rpoold import json_bodies
from rpoold.errors import BadRequest
from rpoold.json_schemas import ContractSchemas
from rpoold.names import DOT_NAMES, MAX_LENGTHS, PATH_PARAMETERS, PROCESS_IDS
from rpoold.validation_messages import (
    CROSS_FIELD,
    container_path_problem,
    describe_body,
    error_message,
    expected,
)
from rpoold.zero_values import ZeroValues

#: Each path parameter's pattern, compiled.
_PATH_PATTERNS = {name: re.compile(pattern) for name, pattern in PATH_PARAMETERS.items()}


@functools.cache
def python_pattern(pattern: str) -> re.Pattern[str]:
    """
    :returns: a JSON Schema (ECMA-262) pattern compiled with its meaning:
        ``$`` is the end of the string (Python's ``$`` also matches before
        a final newline, so ``^[a-z]+$`` would take ``"br0\\n"``).
    """
    out: list[str] = []
    in_class = False
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(char + next(chars, ""))
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``pattern`` keyword with the pattern's ECMA-262 meaning (``python_pattern``)."""
    if validator.is_type(instance, "string") and not python_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ECMA-262 patterns, as the published schemas mean them.
RequestSchemaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})

#: The longest container path (characters; at most PATH_MAX bytes in UTF-8),
#: as ``DeleteFile.path`` in the contract.
MAX_PATH = 1024


def check_container_path(path: str, what: str) -> None:
    """
    :param what: names the value in the message (``query parameter 'path'``).
    :raises BadRequest: ``path`` is not absolute and normalised, holds
        NUL, or is longer than ``MAX_PATH``.
    """
    problem = container_path_problem(path, what)
    if problem is not None:
        raise BadRequest(problem)
    if len(path) > MAX_PATH:
        raise BadRequest(f"{what} must have at most {MAX_PATH} character(s)")


class RequestValidator:
    """
    :param schemas: the contract's JSON Schemas; ``None``: the shipped
        contract's.
    """

    def __init__(self, schemas: ContractSchemas | None = None) -> None:
        self.schemas = schemas if schemas is not None else ContractSchemas()
        self.types = self.schemas.types
        self.zero_values = ZeroValues(self.types)
        self._validators: dict[str, Any] = {}

    def path_arguments(self, params: dict[str, str]) -> dict[str, Any]:
        """
        :param params: the path parameters as routed, by name.
        :returns: them as the interface method takes them (``processid``
            as an ``int``).
        :raises BadRequest: one does not match its pattern, or is ``.`` or ``..``.
        """
        args: dict[str, Any] = {}
        for name, value in params.items():
            if name == "processid":
                args[name] = _process_id(value)
                continue
            longest = MAX_LENGTHS[name]
            if len(value) > longest:
                raise BadRequest(f"path parameter '{name}' must have at most {longest} character(s)")
            if not _PATH_PATTERNS[name].fullmatch(value):
                raise BadRequest(f"path parameter '{name}' must be {expected(PATH_PARAMETERS[name])}")
            if value in DOT_NAMES:
                raise BadRequest(f"path parameter '{name}' must not be '.' or '..'")
            args[name] = value
        return args

    def container_path(self, raw: bytes) -> str:
        """
        :param raw: the ``path`` query parameter of a file operation.
        :returns: it, decoded.
        :raises BadRequest: absent, not UTF-8, or not an absolute normalised path.
        """
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("query parameter 'path' is not UTF-8") from None
        if not path:
            raise BadRequest("query parameter 'path' is required")
        check_container_path(path, "query parameter 'path'")
        return path

    def validator(self, operation: str) -> Any:
        """:returns: the validator of an operation's JSON body (compiled on first use)."""
        found = self._validators.get(operation)
        if found is None:
            found = RequestSchemaValidator(
                self.schemas.request_schema(operation),
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[operation] = found
        return found

    def body(self, operation: str, raw: bytes) -> Any:
        """
        Decode and validate a JSON request body.

        :param operation: the contract operation name.
        :param raw: the body as received.
        :returns: the body, aliases renamed and every absent field filled.
        :raises BadRequest: undecodable JSON or a body that fails the
            contract, with a message naming the field.
        """
        request = self.schemas.operations_by_name[operation].request
        assert request is not None, f"{operation} takes no JSON body"
        value = json_bodies.decode(raw)
        if value is None:
            raise BadRequest(f"request body is required: a JSON {describe_body(request)}")
        base, is_array = rpoold.contract.element_type(request)
        typed = base in self.types
        if typed:
            if is_array and isinstance(value, list):
                value = [self._prepare(base, v) for v in value]
            else:
                value = self._prepare(base, value)
        self._raise_first_error(operation, value)
        if typed:
            complete = self.zero_values.complete
            value = [complete(base, v) for v in value] if is_array else complete(base, value)
        return value

    def _prepare(self, type_name: str, value: Any) -> Any:
        """
        Drop nulls, rename aliases and fill defaults, recursively; an
        integer field written as a whole float (``2.0``, an integer to JSON
        Schema) becomes an ``int``, so that backends see only ints there.
        """
        if not isinstance(value, dict):
            return value
        spec = self.types[type_name]
        result = {k: v for k, v in value.items() if v is not None}
        for f in spec["fields"]:
            for alias in f.get("request_aliases", ()):
                if alias in result:
                    aliased = result.pop(alias)
                    result.setdefault(f["name"], aliased)
        for f in spec["fields"]:
            name = f["name"]
            if name not in result:
                if "default" in f:
                    result[name] = copy.deepcopy(f["default"])
                continue
            ref = f.get("ref")
            item_ref = f.get("items", {}).get("ref")
            given = result[name]
            if f["type"] == "integer" and isinstance(given, float) and given.is_integer():
                result[name] = int(given)
            elif ref:
                result[name] = self._prepare(ref, result[name])
            elif item_ref and isinstance(result[name], list):
                result[name] = [self._prepare(item_ref, v) for v in result[name]]
        return result

    def _raise_first_error(self, operation: str, value: Any) -> None:
        # A rule that depends on another field (``then`` of an ``if``, a
        # rule between fields) is reported only when nothing else is wrong:
        # with an invalid nic ``type``, the type is the problem, not the
        # ``id`` it would require.
        errors = sorted(
            self.validator(operation).iter_errors(value),
            key=lambda e: (_between_fields(e), len(e.absolute_path),
                           list(map(str, e.absolute_path))),
        )
        if errors:
            raise BadRequest(error_message(errors[0]))


def _between_fields(error: Any) -> bool:
    """Whether a schema violation is of a rule that involves several fields."""
    return "then" in error.schema_path or (
        isinstance(error.schema, dict) and error.schema.get("$comment") in CROSS_FIELD)


def _process_id(value: str) -> int:
    """
    :returns: the ``processid`` path parameter as an ``int``.
    :raises BadRequest: it is not a decimal process id Linux could give out.
    """
    lowest, highest = PROCESS_IDS
    if not _PATH_PATTERNS["processid"].fullmatch(value) or not lowest <= int(value) <= highest:
        raise BadRequest(
            f"path parameter 'processid' must be a process id (an integer from {lowest} to {highest})")
    return int(value)
