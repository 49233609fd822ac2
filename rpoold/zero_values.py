"""
JSON zero values of the contract's fields: what an absent field becomes in
a validated request body (backends always see complete bodies) and in an
answer whose field is always present.
"""

from __future__ import annotations

import copy
from typing import Any

#: The zero value of each scalar field type.
ZERO_BY_TYPE: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "any": None,
}


class ZeroValues:
    """
    :param types: the contract's types, by name (``types.json``'s ``types``).
    """

    def __init__(self, types: dict[str, dict[str, Any]]) -> None:
        self.types = types

    def zero(self, field: dict[str, Any]) -> Any:
        """:returns: a field's default, else its JSON zero value (a new copy)."""
        if "default" in field:
            return copy.deepcopy(field["default"])
        if "ref" in field:
            return self.complete(field["ref"], {})
        if field["type"] == "array":
            return []
        if field["type"] == "object":
            return {}
        return ZERO_BY_TYPE[field["type"]]

    def complete(self, type_name: str, value: Any) -> Any:
        """Fill every absent field of ``value`` with its zero value, recursively."""
        if not isinstance(value, dict):
            return value
        result = dict(value)
        for f in self.types[type_name]["fields"]:
            name = f["name"]
            if f.get("only_in") == "raml" and name not in result:
                continue
            if name not in result:
                result[name] = self.zero(f)
                continue
            ref = f.get("ref")
            item_ref = f.get("items", {}).get("ref")
            if ref:
                result[name] = self.complete(ref, result[name])
            elif item_ref and isinstance(result[name], list):
                result[name] = [self.complete(item_ref, v) for v in result[name]]
        return result
