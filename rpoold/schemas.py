"""
The contract's types as JSON Schema, and the request and response
processing built on them.

``rpoold/contract/types.json`` is the single source: request validation,
response shaping and the OpenAPI document (``rpoold.openapi``) are all
derived from it here.  Requests go through the contract's processing order:
decode, rename aliases, fill defaults, validate, then (after validation)
every absent field is filled with its JSON zero value so that backends
always see complete bodies.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import jsonschema
from jsonschema import Draft202012Validator

import rpoold.contract
from rpoold.errors import BadRequest

#: Fields that rpoold adds to a response type, and the field they copy
#: (reconciliation R1 and R8).
EXTENSION_SOURCES: dict[tuple[str, str], str] = {
    ("ContainerListItem", "id"): "name",
    ("VdiskListItem", "storagecluster"): "storageCluster",
}

#: Rules the contract documents but the Go server did not enforce, that
#: rpoold enforces anyway (see README, "Validation").
ENFORCED_ITEM_RULES = ("port_mapping",)

SERVICENAME = r"^[A-Za-z0-9_.-]+$"

#: Path parameters and the pattern each must match (full match).
PATH_PARAMETERS: dict[str, str] = {
    "nodeid": SERVICENAME,
    "jobid": SERVICENAME,
    "processid": r"^[0-9]{1,19}$",
    "bridgeid": SERVICENAME,
    "storagepoolname": SERVICENAME,
    "deviceuuid": SERVICENAME,
    "filesystemname": SERVICENAME,
    "snapshotname": SERVICENAME,
    "zerotierid": SERVICENAME,
    "containername": SERVICENAME,
    "vmid": SERVICENAME,
    "label": SERVICENAME,
    "vdiskid": SERVICENAME,
}

#: Names that match SERVICENAME but are refused everywhere: as path
#: components they would climb the tree (a pool or filesystem named '..').
DOT_NAMES = (".", "..")

#: Request fields that name an existing resource (a vdisk, a node, a
#: storage cluster) but that the contract leaves unconstrained.  Every such
#: resource is created under a SERVICENAME id, so rpoold checks references
#: against the same pattern: no backend sees a reference that could not
#: name anything (nor one carrying YAML or key syntax).
REFERENCE_FIELDS: dict[tuple[str, str], str] = {
    ("VDiskLink", "vdiskid"): SERVICENAME,
    ("ClusterCreate", "nodes"): SERVICENAME,
    ("VdiskCreate", "storagecluster"): SERVICENAME,
    ("VdiskCreate", "tlogStoragecluster"): "^$|" + SERVICENAME,
}

#: What each contract pattern means, for error messages.
PATTERN_NAMES: dict[str, str] = {
    SERVICENAME: "made of letters, digits, '_', '.' and '-'",
    "^$|" + SERVICENAME: "empty or made of letters, digits, '_', '.' and '-'",
    PATH_PARAMETERS["processid"]: "an unsigned integer",
}

_RULE_NAMES = {
    "macaddress_or_empty": "a MAC address or empty",
    "container_filesystem": "'<storagepool>:<filesystem>'",
    "env_entry": "'KEY=VALUE' with a non-empty KEY",
    "port_mapping": "'<node port>:<container port>'",
}

_ZERO_BY_TYPE: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "any": None,
}


def load_contract() -> dict[str, Any]:
    """
    :returns: the parsed ``types.json`` shipped with the package.
    """
    return rpoold.contract.load()


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, as ``types.json`` lists it."""

    number: int
    name: str
    method: str
    path: str
    request: str | None
    success: int
    response: str | None
    response_media_type: str | None
    location: str | None
    path_aliases: tuple[str, ...]
    query: dict[str, Any]
    request_media_type: str | None
    notes: tuple[str, ...]

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _unwrap_array(type_name: str) -> tuple[str, bool]:
    """``T[]`` -> ``(T, True)``; ``T`` -> ``(T, False)``."""
    if type_name.endswith("[]"):
        return type_name[:-2], True
    return type_name, False


class Contract:
    """
    The contract, compiled: request validators, response shapes and the
    operation list.
    """

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        self.raw = raw if raw is not None else load_contract()
        self.types: dict[str, dict[str, Any]] = self.raw["types"]
        self.validators_doc: dict[str, Any] = self.raw["validators"]
        self.operations: list[Operation] = [
            Operation(
                number=op["number"],
                name=op["name"],
                method=op["method"],
                path=op["path"],
                request=op["request"],
                success=op["success"],
                response=op["response"],
                response_media_type=op.get("response_media_type"),
                location=op["location"],
                path_aliases=tuple(op.get("path_aliases", ())),
                query=op.get("query", {}),
                request_media_type=op.get("request_media_type"),
                notes=tuple(op.get("notes", ())),
            )
            for op in self.raw["operations"]
        ]
        self.operations_by_name = {op.name: op for op in self.operations}
        for rule, text in _RULE_NAMES.items():
            PATTERN_NAMES.setdefault(self.validators_doc[rule]["pattern"], text)

    # JSON Schema -------------------------------------------------------

    def _field_schema(self, field: dict[str, Any], direction: str) -> dict[str, Any]:
        request = direction == "request"
        ftype = field["type"]
        schema: dict[str, Any]
        if "ref" in field:
            schema = {"$ref": f"#/$defs/{field['ref']}"}
        elif ftype == "any":
            schema = {}
        elif ftype == "array":
            items = field.get("items", {})
            if "ref" in items:
                item_schema: dict[str, Any] = {"$ref": f"#/$defs/{items['ref']}"}
            else:
                item_schema = {"type": items.get("type", "string")}
                if request and "pattern" in items:
                    item_schema["pattern"] = items["pattern"]
                if "enum" in items:
                    item_schema["enum"] = items["enum"]
                if request:
                    for rule in field.get("items_rules", ()):
                        if rule in ENFORCED_ITEM_RULES:
                            item_schema["pattern"] = self.validators_doc[rule]["pattern"]
            schema = {"type": "array", "items": item_schema}
        else:
            schema = {"type": ftype}
        if "enum" in field and not field.get("enum_open"):
            schema["enum"] = field["enum"]
        if request:
            for key in ("minimum", "maximum", "maxLength", "minItems", "pattern"):
                if key in field:
                    schema[key] = field[key]
            for rule in field.get("rules", ()):
                fragment = self.validators_doc.get(rule, {}).get("json_schema")
                if fragment:
                    schema = {"allOf": [schema, fragment]}
            if field.get("go_nonzero") and field.get("request_required"):
                if ftype == "string":
                    schema.setdefault("minLength", 1)
                elif ftype == "array":
                    schema.setdefault("minItems", 1)
        return schema

    def type_schema(self, type_name: str, direction: str) -> dict[str, Any]:
        spec = self.types[type_name]
        request = direction == "request"
        properties = {
            f["name"]: self._field_schema(f, direction) for f in spec["fields"]
        }
        if request:
            for f in spec["fields"]:
                properties[f["name"]] = _harden_name(
                    properties[f["name"]], f, REFERENCE_FIELDS.get((type_name, f["name"]))
                )
            required = [f["name"] for f in spec["fields"] if f.get("request_required")]
        else:
            required = [
                f["name"] for f in spec["fields"] if f.get("response_always_present")
            ]
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if request:
            rules = [
                self.validators_doc[r]["json_schema_type"]
                for r in spec.get("request_type_rules", ())
                if "json_schema_type" in self.validators_doc.get(r, {})
            ]
            if rules:
                schema["allOf"] = rules
        return schema

    def _referenced_types(self, root: str) -> list[str]:
        seen: list[str] = []
        todo = [root]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.append(name)
            for f in self.types[name]["fields"]:
                ref = f.get("ref") or f.get("items", {}).get("ref")
                if ref:
                    todo.append(ref)
        return seen

    def definitions(self, direction: str) -> dict[str, dict[str, Any]]:
        """
        :param direction: ``"request"`` or ``"response"``.
        :returns: a JSON Schema per contract type used in that direction
            (and the types those refer to), references as ``#/$defs/<T>``.
        """
        key = "used_in_requests" if direction == "request" else "used_in_responses"
        roots = [t for t, spec in self.types.items() if spec.get(key)]
        names: list[str] = []
        for root in roots:
            for name in self._referenced_types(root):
                if name not in names:
                    names.append(name)
        return {name: self.type_schema(name, direction) for name in names}

    def body_schema(self, type_ref: str) -> dict[str, Any]:
        """
        :param type_ref: a contract type name, ``T[]``, ``string[]`` or
            ``boolean``.
        :returns: the JSON Schema of a whole body, references pointing into
            ``#/$defs``.
        """
        base, is_array = _unwrap_array(type_ref)
        if base in self.types:
            inner: dict[str, Any] = {"$ref": f"#/$defs/{base}"}
        else:
            inner = {"type": base}
        return {"type": "array", "items": inner} if is_array else inner

    @cached_property
    def request_definitions(self) -> dict[str, dict[str, Any]]:
        return self.definitions("request")

    @cached_property
    def response_definitions(self) -> dict[str, dict[str, Any]]:
        return self.definitions("response")

    @cached_property
    def _request_validators(self) -> dict[str, Draft202012Validator]:
        validators = {}
        for op in self.operations:
            if op.request is None:
                continue
            schema = dict(self.body_schema(op.request))
            schema["$defs"] = self.request_definitions
            validators[op.name] = Draft202012Validator(
                schema, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return validators

    @cached_property
    def _response_validators(self) -> dict[str, Draft202012Validator]:
        validators = {}
        for op in self.operations:
            if op.response is None or op.response_media_type != "application/json":
                continue
            schema = dict(self.body_schema(op.response))
            schema["$defs"] = self.response_definitions
            validators[op.name] = Draft202012Validator(schema)
        return validators

    # Requests ----------------------------------------------------------

    def _prepare(self, type_name: str, value: Any) -> Any:
        """Drop nulls, rename aliases and fill defaults, recursively."""
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
            if ref:
                result[name] = self._prepare(ref, result[name])
            elif item_ref and isinstance(result[name], list):
                result[name] = [self._prepare(item_ref, v) for v in result[name]]
        return result

    def _zero(self, field: dict[str, Any]) -> Any:
        if "default" in field:
            return copy.deepcopy(field["default"])
        if "ref" in field:
            return self._complete(field["ref"], {})
        if field["type"] == "array":
            return []
        if field["type"] == "object":
            return {}
        return _ZERO_BY_TYPE[field["type"]]

    def _complete(self, type_name: str, value: Any) -> Any:
        """Fill every absent field with its zero value, recursively."""
        if not isinstance(value, dict):
            return value
        result = dict(value)
        for f in self.types[type_name]["fields"]:
            name = f["name"]
            if f.get("only_in") == "raml" and name not in result:
                continue
            if name not in result:
                result[name] = self._zero(f)
                continue
            ref = f.get("ref")
            item_ref = f.get("items", {}).get("ref")
            if ref:
                result[name] = self._complete(ref, result[name])
            elif item_ref and isinstance(result[name], list):
                result[name] = [self._complete(item_ref, v) for v in result[name]]
        return result

    def parse_request(self, operation: str, raw: bytes) -> Any:
        """
        Decode and validate a request body.

        :param operation: the contract operation name.
        :param raw: the body as received.
        :returns: the body, aliases renamed and every absent field filled.
        :raises BadRequest: undecodable JSON or a body that fails the
            contract, with a message naming the field.
        """
        op = self.operations_by_name[operation]
        assert op.request is not None
        try:
            value = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest(f"request body is not valid JSON: {e}") from None
        if value is None:
            raise BadRequest(f"request body is required: a JSON {_describe(op.request)}")
        base, is_array = _unwrap_array(op.request)
        if base in self.types:
            if is_array and isinstance(value, list):
                value = [self._prepare(base, v) for v in value]
            else:
                value = self._prepare(base, value)
        self._raise_first_error(self._request_validators[operation], value, op.request)
        if base in self.types:
            value = [self._complete(base, v) for v in value] if is_array else self._complete(base, value)
        check: Any = CROSS_FIELD_CHECKS.get(operation)
        if check is not None:
            check(value)
        return value

    def _raise_first_error(
        self, validator: Draft202012Validator, value: Any, type_ref: str
    ) -> None:
        # A rule that depends on another field (``then`` of an ``if``) is
        # reported only when nothing else is wrong: with an invalid nic
        # ``type``, the type is the problem, not the ``id`` it would require.
        errors = sorted(
            validator.iter_errors(value),
            key=lambda e: ("then" in e.schema_path, len(e.absolute_path),
                           list(map(str, e.absolute_path))),
        )
        if errors:
            raise BadRequest(_error_message(errors[0], type_ref))

    def check_response(self, operation: str, value: Any) -> list[str]:
        """
        :returns: what is wrong with a response body, one line per problem
            (empty when it matches the contract).  Used by tests.
        """
        validator = self._response_validators[operation]
        return [
            f"{_field_path(e.absolute_path) or 'body'}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    # Responses ---------------------------------------------------------

    def shape(self, type_ref: str, value: Any) -> Any:
        """
        Give a backend's answer the contract's shape: ``None`` lists become
        ``[]``, always-present fields are filled with zero values,
        extension fields are copied, unknown keys are dropped.
        """
        base, is_array = _unwrap_array(type_ref)
        if is_array:
            return [self._shape_object(base, v) for v in (value or [])]
        return self._shape_object(base, value)

    def _shape_object(self, type_name: str, value: Any) -> Any:
        plan = self._shape_plans.get(type_name)
        if plan is None or not isinstance(value, dict):
            return value
        result: dict[str, Any] = {}
        for name, source, always, kind, ref, zero, field in plan:
            if name in value:
                item = value[name]
            elif source is not None:
                item = value.get(source)
            elif always:
                item = self._zero(field)
            else:
                continue
            if kind is _SCALAR:
                if item is None:
                    item = zero
            elif kind is _OBJECT:
                item = self._shape_object(ref, item if item is not None else {})
            elif kind is _OBJECTS:
                item = [self._shape_object(ref, v) for v in (item or [])]
            elif kind is _LIST:
                item = list(item or [])
            result[name] = item
        return result

    @cached_property
    def _shape_plans(self) -> dict[str, tuple[_FieldShape, ...]]:
        """Per type, what :meth:`shape` does with each field, worked out once."""
        return {
            name: tuple(_field_shape(name, f) for f in spec["fields"])
            for name, spec in self.types.items()
        }


# How a response field's value is shaped (``_FieldShape.kind``):
_SCALAR = "scalar"  # a JSON scalar: None becomes its zero value
_OBJECT = "object"  # a contract type: shaped (None as {})
_OBJECTS = "objects"  # an array of a contract type: each item shaped (None becomes [])
_LIST = "list"  # an array of anything else: copied (None becomes [])
_AS_IS = "as is"  # anything else: passed as it is


class _FieldShape(NamedTuple):
    name: str
    #: For an extension field, the field it copies when absent.
    source: str | None
    #: ``response_always_present``: filled with its zero value when absent.
    always: bool
    kind: str
    #: The contract type of an ``_OBJECT`` or ``_OBJECTS`` field (else "").
    ref: str
    #: What ``None`` becomes in a ``_SCALAR`` field.
    zero: Any
    #: The field as ``types.json`` describes it.
    field: dict[str, Any]


def _field_shape(type_name: str, field: dict[str, Any]) -> _FieldShape:
    ftype = field["type"]
    ref = field.get("ref")
    item_ref = field.get("items", {}).get("ref")
    if ref:
        kind = _OBJECT
    elif ftype == "array":
        kind, ref = (_OBJECTS, item_ref) if item_ref else (_LIST, "")
    elif ftype in _ZERO_BY_TYPE:
        kind = _SCALAR
    else:
        kind = _AS_IS
    return _FieldShape(
        name=field["name"],
        source=EXTENSION_SOURCES.get((type_name, field["name"])),
        always=bool(field.get("response_always_present")),
        kind=kind,
        ref=ref or "",
        zero=_ZERO_BY_TYPE.get(ftype),
        field=field,
    )


def _harden_name(schema: dict[str, Any], field: dict[str, Any], reference: str | None) -> dict[str, Any]:
    """
    Add to a request field's schema what rpoold enforces beyond the
    contract: references match their pattern (``REFERENCE_FIELDS``) and no
    name or reference is ``.`` or ``..`` (``DOT_NAMES``).
    """
    is_array = field["type"] == "array"
    target = schema.get("items") if is_array else schema
    if not isinstance(target, dict):
        return schema
    if reference is not None:
        if "pattern" in target:
            target = {"allOf": [target, {"pattern": reference}]}
        else:
            target = {**target, "pattern": reference}
    rules = field.get("rules", ())
    names = reference is not None or field.get("pattern") == SERVICENAME or "servicename" in rules
    if names:
        target = {**target, "not": {"enum": list(DOT_NAMES)}}
    if is_array:
        return {**schema, "items": target}
    return target


def _servers_divisible(body: dict[str, Any]) -> None:
    nodes = len(body["nodes"])
    if body["servers"] % nodes:
        raise BadRequest(
            f"field 'servers' ({body['servers']}) must be a multiple of the number of nodes ({nodes})"
        )


#: Checks of one operation that involve several fields (endpoints.md).
CROSS_FIELD_CHECKS = {"DeployNewCluster": _servers_divisible}


def _describe(type_ref: str) -> str:
    base, is_array = _unwrap_array(type_ref)
    return f"array of {base}" if is_array else f"object ({base})"


def _field_path(path: Any) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _error_message(error: jsonschema.ValidationError, type_ref: str) -> str:
    where = _field_path(error.absolute_path)
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
        expected = PATTERN_NAMES.get(error.validator_value, f"match {error.validator_value}")
        return f"{subject} has an invalid value {error.instance!r}: it must be {expected}"
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
            return _error_message(best, type_ref)
        return f"{subject} has an invalid value {error.instance!r}"
    if validator == "not" and error.instance in DOT_NAMES:
        return f"{subject} must not be '.' or '..'"
    if validator == "format" or validator == "const":
        return f"{subject} has an invalid value {error.instance!r}"
    return f"{subject}: {error.message}"


_CONTRACT: Contract | None = None


def contract() -> Contract:
    """:returns: the process-wide compiled contract."""
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = Contract()
    return _CONTRACT
