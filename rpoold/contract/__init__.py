"""
The contract: ``types.json``, the single description of the API's
operations and types (wire names, required fields, enums, patterns), with
rpoold's own per-operation keys ``family`` and ``interface_method`` (which
resource family serves it and which interface method it calls).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def _text() -> str:
    return resources.files("rpoold.contract").joinpath("types.json").read_text("utf-8")


def load() -> dict[str, Any]:
    """
    :returns: the parsed ``types.json`` shipped with the package (a new
        copy on each call: callers may change it).
    """
    document: dict[str, Any] = json.loads(_text())
    return document
