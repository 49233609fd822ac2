"""
How a record is written down in a durable store: one JSON object as text,
spelled one way (sorted keys, no spaces, ASCII with escapes, so that any
string, even a lone surrogate, can be written), so that the same record is
the same text whoever wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rpoold.records import Record


def encode(record: Mapping[str, Any]) -> str:
    """
    :returns: the record as canonical JSON text.
    :raises TypeError: it is not a mapping with string keys, or holds a
        value JSON cannot carry.
    :raises ValueError: it holds a NaN or an infinity (not JSON).
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"a record is a JSON object, not {type(record).__name__}")
    return json.dumps(dict(record), sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode(text: str) -> Record:
    """:returns: a new ``dict`` read from ``text`` (written by ``encode``)."""
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError(f"a stored record is not a JSON object: {text[:60]!r}")
    return record


def normal(record: Mapping[str, Any] | None) -> Record | None:
    """:returns: what ``record`` reads back as once stored (a copy), or ``None``."""
    return None if record is None else decode(encode(record))
