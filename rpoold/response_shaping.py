"""
Answers in the contract's shape: what every backend's answer goes through
before it is sent (``ResponseShaper.shape``), and the check of a shaped
answer against the contract's response schema (``ResponseShaper.problems``,
used by tests).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator

import rpoold.contract
from rpoold.json_schemas import ContractSchemas
from rpoold.validation_messages import field_path
from rpoold.zero_values import ZERO_BY_TYPE, ZeroValues

#: Fields that rpoold adds to a response type, and the field they copy
#: (reconciliation R1 and R8).
EXTENSION_SOURCES: dict[tuple[str, str], str] = {
    ("ContainerListItem", "id"): "name",
    ("PoolContainerListItem", "id"): "name",
    ("VdiskListItem", "storagecluster"): "storageCluster",
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
    elif ftype in ZERO_BY_TYPE:
        kind = _SCALAR
    else:
        kind = _AS_IS
    return _FieldShape(
        name=field["name"],
        source=EXTENSION_SOURCES.get((type_name, field["name"])),
        always=bool(field.get("response_always_present")),
        kind=kind,
        ref=ref or "",
        zero=ZERO_BY_TYPE.get(ftype),
        field=field,
    )


class ResponseShaper:
    """
    :param schemas: the contract's JSON Schemas; ``None``: the shipped
        contract's.
    """

    def __init__(self, schemas: ContractSchemas | None = None) -> None:
        self.schemas = schemas if schemas is not None else ContractSchemas()
        self.zero_values = ZeroValues(self.schemas.types)
        self._validators: dict[str, Draft202012Validator] = {}

    def shape(self, type_ref: str, value: Any) -> Any:
        """
        Give a backend's answer the contract's shape: ``None`` lists become
        ``[]``, always-present fields are filled with zero values,
        extension fields are copied, unknown keys are dropped.

        :param type_ref: the operation's response type (``T`` or ``T[]``).
        """
        base, is_array = rpoold.contract.element_type(type_ref)
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
                item = self.zero_values.zero(field)
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
            for name, spec in self.schemas.types.items()
        }

    def problems(self, operation: str, value: Any) -> list[str]:
        """
        :param operation: an operation answering a JSON body.
        :returns: what is wrong with its answer ``value``, one line per
            problem (empty when it matches the contract).
        """
        validator = self._validators.get(operation)
        if validator is None:
            validator = Draft202012Validator(self.schemas.response_schema(operation))
            self._validators[operation] = validator
        return [
            f"{field_path(e.absolute_path) or 'body'}: {e.message}"
            for e in validator.iter_errors(value)
        ]
