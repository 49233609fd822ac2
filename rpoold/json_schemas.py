"""
The contract's types as JSON Schema, in each direction: a request schema
holds the contract's rules (required fields, patterns, ranges) and what
rpoold enforces beyond them (``rpoold.names``); a response schema says
which fields are always present.  Request validation, the tests' response
checks and the OpenAPI document (``rpoold.openapi``) all use these.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import rpoold.contract
from rpoold.contract import Operation
from rpoold.names import DOT_NAMES, REFERENCE_FIELDS, SERVICENAME

#: Rules the contract documents but the Go server did not enforce, that
#: rpoold enforces anyway (see README, "Validation").
ENFORCED_ITEM_RULES = ("port_mapping",)


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
                if request and "pattern" in items:
                    item_schema["pattern"] = items["pattern"]
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
            for key in ("minimum", "maximum", "maxLength", "minItems", "pattern"):
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
                self.rules[r]["json_schema_type"]
                for r in spec.get("request_type_rules", ())
                if "json_schema_type" in self.rules.get(r, {})
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
        base, is_array = rpoold.contract.element_type(type_ref)
        if base in self.types:
            inner: dict[str, Any] = {"$ref": f"#/$defs/{base}"}
        else:
            inner = {"type": base}
        return {"type": "array", "items": inner} if is_array else inner

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
        request = self.operations_by_name[operation].request
        assert request is not None, f"{operation} takes no JSON body"
        return {**self.body_schema(request), "$defs": self.request_definitions}

    def response_schema(self, operation: str) -> dict[str, Any]:
        """:returns: the whole JSON Schema of an operation's JSON response body (with ``$defs``)."""
        response = self.operations_by_name[operation].response
        assert response is not None, f"{operation} answers no body"
        return {**self.body_schema(response), "$defs": self.response_definitions}


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
