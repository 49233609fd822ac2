"""
The contract's types as JSON Schema, in each direction: a request schema
holds the contract's rules (required fields, patterns, ranges, lengths,
the rules between fields) and what rpoold enforces beyond them
(``rpoold.names``); a response schema says which fields are always
present.  Request validation, the tests' response checks and the OpenAPI
document (``rpoold.openapi``) all use these.

The validator sees a body after its nulls are dropped (``null`` counts as
absent); the published form of a request schema (:meth:`ContractSchemas.published`)
says so: each field that may be absent also takes ``null``, and shows its
default.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import rpoold.contract
from rpoold.contract import Operation
from rpoold.names import DOT_NAMES, REFERENCE_FIELDS, SERVICENAME

#: Rules the contract documents but the Go server did not enforce, that
#: rpoold enforces anyway (see README, "Validation").
ENFORCED_ITEM_RULES = ("port_mapping",)

#: The keys of a request field that bound its value, copied into its schema.
BOUND_KEYS = ("minimum", "maximum", "maxLength", "minItems", "maxItems", "uniqueItems", "pattern")


class ContractSchemas:
    """
    The JSON Schemas of one contract document.

    :param document: a parsed ``types.json``; ``None``: the shipped one.
    :ivar document: the document.
    :ivar types: its types, by name.
    :ivar rules: its validation rules (``validators``), by name.
    :ivar operations: its operations, in order.
    """

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document if document is not None else rpoold.contract.load()
        self.types: dict[str, dict[str, Any]] = self.document["types"]
        self.rules: dict[str, Any] = self.document["validators"]
        self.operations: tuple[Operation, ...] = rpoold.contract.operations(self.document)
        #: rpoold's own endpoints (``rpoold_operations``).
        self.own_operations: tuple[Operation, ...] = rpoold.contract.operations(
            self.document, "rpoold_operations")
        self.operations_by_name: dict[str, Operation] = {
            op.name: op for op in (*self.operations, *self.own_operations)}

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
                if request:
                    for key in ("pattern", "maxLength"):
                        if key in items:
                            item_schema[key] = items[key]
                if "enum" in items:
                    item_schema["enum"] = items["enum"]
                if request:
                    for rule in field.get("items_rules", ()):
                        if rule in ENFORCED_ITEM_RULES:
                            item_schema["pattern"] = self.rules[rule]["pattern"]
            schema = {"type": "array", "items": item_schema}
        else:
            schema = {"type": ftype}
        if "enum" in field and not field.get("enum_open"):
            schema["enum"] = field["enum"]
        if request:
            for key in BOUND_KEYS:
                if key in field:
                    schema[key] = field[key]
            for rule in field.get("rules", ()):
                fragment = self.rules.get(rule, {}).get("json_schema")
                if fragment:
                    schema = {"allOf": [schema, fragment]}
            if field.get("go_nonzero") and field.get("request_required"):
                if ftype == "string":
                    schema.setdefault("minLength", 1)
                elif ftype == "array":
                    schema.setdefault("minItems", 1)
        return schema

    def type_schema(self, type_name: str, direction: str) -> dict[str, Any]:
        """
        :param direction: ``"request"`` or ``"response"``.
        :returns: the JSON Schema of one contract type, references as
            ``#/$defs/<T>``.
        """
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
                rule
                for r in spec.get("request_type_rules", ())
                if (rule := self._type_rule(spec, r)) is not None
            ]
            if rules:
                schema["allOf"] = rules
        return schema

    def _type_rule(self, spec: dict[str, Any], name: str) -> dict[str, Any] | None:
        """:returns: the JSON Schema form of a rule between a type's fields (``request_type_rules``)."""
        rule = self.rules.get(name, {})
        if "json_schema_type" in rule:
            fragment: dict[str, Any] = rule["json_schema_type"]
            return fragment
        if "multiple_of_length" in rule:
            return multiple_of_length(spec, name, **rule["multiple_of_length"])
        return None

    def published(self, type_name: str) -> dict[str, Any]:
        """
        :returns: the request schema of a type as clients should read it:
            each field that may be absent also takes ``null`` (which counts
            as absent) and shows its default.
        """
        schema = self.request_definitions[type_name]
        spec = self.types[type_name]
        properties = dict(schema["properties"])
        for f in spec["fields"]:
            if f.get("request_required"):
                continue
            prop = properties[f["name"]]
            if prop:  # ``{}`` (any JSON value) takes null already
                prop = {"anyOf": [prop, {"type": "null"}]}
            if "default" in f:
                prop = {**prop, "default": f["default"]}
            properties[f["name"]] = prop
        return {**schema, "properties": properties}

    def request_types(self, operations: list[str]) -> list[str]:
        """:returns: the request types of ``operations`` and the types they refer to."""
        names: list[str] = []
        for name in operations:
            request = self.operations_by_name[name].request
            if request is None:
                continue
            base, _ = rpoold.contract.element_type(request)
            if base in self.types:
                names += [t for t in self._referenced_types(base) if t not in names]
        return names

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
        base, is_array = rpoold.contract.element_type(type_ref)
        if base in self.types:
            inner: dict[str, Any] = {"$ref": f"#/$defs/{base}"}
        else:
            inner = {"type": base}
        return {"type": "array", "items": inner} if is_array else inner

    def request_body_schema(self, operation: str) -> dict[str, Any]:
        """
        :returns: the JSON Schema of an operation's JSON request body,
            references pointing into ``#/$defs``; an array of strings with
            the operation's ``request_bounds``.
        """
        request = self.operations_by_name[operation].request
        assert request is not None, f"{operation} takes no JSON body"
        schema = self.body_schema(request)
        spec = next(op for op in self.document["operations"] if op["name"] == operation)
        bounds = spec.get("request_bounds")
        if bounds:
            items = {**schema["items"], **{k: v for k, v in bounds.get("items", {}).items() if k != "type"}}
            schema = {**schema, "items": items,
                      **{k: bounds[k] for k in ("maxItems", "uniqueItems", "minItems") if k in bounds}}
        return schema

    @cached_property
    def request_definitions(self) -> dict[str, dict[str, Any]]:
        """:meth:`definitions` of the requests, worked out once."""
        return self.definitions("request")

    @cached_property
    def response_definitions(self) -> dict[str, dict[str, Any]]:
        """:meth:`definitions` of the responses, worked out once."""
        return self.definitions("response")

    def request_schema(self, operation: str) -> dict[str, Any]:
        """:returns: the whole JSON Schema of an operation's JSON request body (with ``$defs``)."""
        return {**self.request_body_schema(operation), "$defs": self.request_definitions}

    def response_schema(self, operation: str) -> dict[str, Any]:
        """:returns: the whole JSON Schema of an operation's JSON response body (with ``$defs``)."""
        response = self.operations_by_name[operation].response
        assert response is not None, f"{operation} answers no body"
        return {**self.body_schema(response), "$defs": self.response_definitions}


#: The bounds a backend may narrow (``IRequestBounds``), and how to narrow each.
NARROWABLE = {"maximum": min, "maxLength": min, "maxItems": min}


def narrowed(document: dict[str, Any], bounds: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    """
    :param bounds: by type name, by field name, the narrower bounds (see
        ``NARROWABLE``); a bound is only ever made tighter.
    :returns: a copy of a contract document with those bounds.
    :raises KeyError: a type or field the document does not have.
    :raises ValueError: a bound that cannot be narrowed.
    """
    document = copy.deepcopy(document)
    types = document["types"]
    for type_name, fields in bounds.items():
        by_name = {f["name"]: f for f in types[type_name]["fields"]}
        for field_name, keys in fields.items():
            spec = by_name[field_name]
            for key, value in keys.items():
                if key not in NARROWABLE:
                    raise ValueError(f"{type_name}.{field_name}: '{key}' cannot be narrowed")
                spec[key] = NARROWABLE[key](spec[key], value) if key in spec else value
    return document


def multiple_of_length(spec: dict[str, Any], rule: str, field: str, array: str) -> dict[str, Any]:
    """
    ``field`` is a multiple of the number of items of ``array``, in JSON
    Schema: one alternative per length the array may have (1 to its
    ``maxItems``).  The ``$comment`` names the rule, for error messages.
    """
    spec_of = {f["name"]: f for f in spec["fields"]}
    lowest = int(spec_of[array].get("minItems", 1))
    highest = int(spec_of[array]["maxItems"])
    alternatives = [
        {"properties": {array: {"minItems": n, "maxItems": n}, field: {"multipleOf": n}}}
        for n in range(max(lowest, 1), highest + 1)
    ]
    return {"$comment": rule, "anyOf": alternatives}


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
