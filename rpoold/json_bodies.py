"""
Decoding a JSON request body within bounds, so that no body can drive the
decoder into recursion or the daemon into a memory blow-up: before
``json.loads`` sees it, the body's structure is scanned for its nesting
depth and for the items of each array and the members of each object.

The scan costs little: string literals are removed with one regular
expression (linear: it never backtracks), then only the bytes that make
the structure (``[]{},``) are kept, and a body with fewer opening
brackets than ``MAX_DEPTH`` and fewer commas than ``MAX_ITEMS`` needs
nothing more.  Other bodies are walked bracket by bracket (at most the
body's size, which the site bounds, and it stops at the first excess).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rpoold.errors import BadRequest

#: The deepest nesting of arrays and objects in a body (a top-level
#: object is depth 1).  The contract's deepest body needs 4.
MAX_DEPTH = 32
#: The most items of one array, or members of one object.
MAX_ITEMS = 1024

#: A JSON string literal, or an unterminated one up to the end (possessive:
#: a failed match never rescans what it passed).
_STRING = re.compile(rb'"(?:[^"\\]|\\[\s\S]?)*+(?:"|\Z)')
#: Every byte but the structural ones.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{},")


class BodyTooComplex(BadRequest):
    """A body nests deeper, or holds longer arrays or objects, than the limits (400)."""


def structure_of(raw: bytes) -> bytes:
    """:returns: the brackets and commas of ``raw``, outside string literals."""
    return _STRING.sub(b"", raw).translate(None, _NOT_STRUCTURE)


def check_structure(raw: bytes, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
    """
    :raises BodyTooComplex: ``raw`` nests deeper than ``max_depth``, or an
        array or object in it has more than ``max_items`` entries.
    """
    structure = structure_of(raw)
    opening = structure.count(b"[") + structure.count(b"{")
    if opening <= max_depth and structure.count(b",") < max_items:
        return
    # One entry per open array or object: the commas seen in it so far.
    commas: list[int] = []
    for byte in structure:
        if byte in b"[{":
            if len(commas) == max_depth:
                raise BodyTooComplex(f"request body is nested deeper than {max_depth} levels")
            commas.append(0)
        elif byte == 0x2C:  # ,
            if commas:
                commas[-1] += 1
                if commas[-1] >= max_items:
                    raise BodyTooComplex(
                        f"request body has an array or object of more than {max_items} items")
        elif commas:
            commas.pop()


def decode(raw: bytes) -> Any:
    """
    :returns: the JSON value of ``raw`` (``None`` for an empty body).
    :raises BadRequest: ``raw`` is not UTF-8 JSON, or is outside the
        limits (``BodyTooComplex``).
    """
    if not raw.strip():
        return None
    check_structure(raw)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None
