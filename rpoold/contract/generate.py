"""
Write ``rpoold/contract/wire.py``, the contract's types as ``TypedDict``
classes, from ``types.json``::

    python -m rpoold.contract.generate

``tests/test_contract.py`` checks that the file in the tree is what this
writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rpoold.contract import load

HEADER = '''"""
The contract's types as ``TypedDict`` classes: what backends answer and
what request bodies hold, under their wire names.

Generated from ``types.json`` by ``python -m rpoold.contract.generate``;
do not edit.  Every key is optional (``total=False``): a backend answers
what it knows, and the web app fills each field the contract always shows
with its zero value, in one place (``rpoold.response_shaping``).  A
request body reaches a backend with every field filled.
"""

from __future__ import annotations

from typing import Any, TypedDict
'''

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "any": "Any",
            "object": "dict[str, Any]"}


def python_type(field: dict[str, Any]) -> str:
    """The Python type of a field of ``types.json``."""
    if "ref" in field:
        return str(field["ref"])
    if field["type"] == "array":
        items = field.get("items", {})
        return f"list[{items['ref'] if 'ref' in items else _SCALARS[items.get('type', 'string')]}]"
    return _SCALARS[field["type"]]


def body_type(type_ref: str | None) -> str:
    """The Python type of a request or response body (``T``, ``T[]``, ``string[]``, ``boolean``)."""
    if type_ref is None:
        return "None"
    if type_ref.endswith("[]"):
        return f"list[{body_type(type_ref[:-2])}]"
    return _SCALARS.get(type_ref, type_ref)


def source() -> str:
    """The text of ``wire.py``."""
    lines = [HEADER]
    for name, spec in load()["types"].items():
        lines.append("")
        lines.append(f"class {name}(TypedDict, total=False):")
        description = str(spec.get("description") or "").strip()
        if description:
            lines.append(f'    """{description}"""')
            lines.append("")
        for field in spec["fields"]:
            lines.append(f"    {field['name']}: {python_type(field)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


TARGET = Path(__file__).with_name("wire.py")


def main() -> None:
    TARGET.write_text(source())
    sys.stdout.write(f"wrote {TARGET.name}\n")


if __name__ == "__main__":
    main()
