"""
The object a backend plugin module exposes to ``twisted.plugin``.

A dropin module in the ``plugins`` package holds one ``BackendPlugin``: its
name, its options schema, and the dotted name of the backend class.  The
class is imported only when configuration uses the plugin, so discovery
stays cheap and a broken backend only matters where it is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from rpoold.interfaces import IBackendContext, IBackendPlugin


@implementer(IPlugin, IBackendPlugin)
@dataclass(frozen=True)
class BackendPlugin:
    """
    :ivar factory: ``"package.module:Class"``; the class is called with
        ``(options, context)`` and returns the backend.
    :ivar process_bound: why its backends cannot be shared by worker
        processes; empty when they can.
    """

    name: str
    description: str
    factory: str
    options_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "additionalProperties": False}
    )
    process_bound: str = ""

    def create(self, options: dict[str, Any], context: IBackendContext) -> Any:
        module_name, _, attribute = self.factory.partition(":")
        backend_class = getattr(importlib.import_module(module_name), attribute)
        return backend_class(options, context)
