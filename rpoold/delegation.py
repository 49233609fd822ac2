"""
Backends made of parts: a backend serves a family through an object it
holds.

The web app and the configuration check see one object per backend
instance, providing the family interfaces it serves; the work is done by
the parts it holds (the core0 command kit's ``Nodes``, ``VMs``, ...; the
AYS backend's families).  A part declares the interfaces it implements
(``@implementer``); ``serve`` gives the backend class, for each method of
those interfaces, a one-line delegate to the part's method of that name,
and declares that the class provides the interfaces.  The delegates are
written once, here, instead of by hand in every backend.

A delegate returns a ``Deferred``, as the interfaces say, whether the
part's method is a coroutine function or returns a ``Deferred`` itself;
``inspect.signature`` of a delegate is the part method's, so the start-up
check of parameter names sees the real ones.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from zope.interface import Interface, classImplements, implementedBy

from rpoold.interfaces import FAMILY_INTERFACES

#: Called with the method name and each delegate's Deferred (for metrics);
#: returns the Deferred the caller gets.
Wrap = Callable[[str, Deferred[Any]], Deferred[Any]]

_FAMILY_INTERFACES = frozenset(FAMILY_INTERFACES.values())


def family_interfaces(part: type) -> list[type[Interface]]:
    """The family interfaces a part's class declares it implements."""
    return [i for i in implementedBy(part).flattened() if i in _FAMILY_INTERFACES]


def serve(backend: type, parts: Mapping[str, type], wrap: Wrap | None = None) -> None:
    """
    Make ``backend`` serve the families of its parts.

    :param backend: the backend class; its instances hold each part under
        the attribute that names it in ``parts``.
    :param parts: attribute name (dotted for a part of a part) -> the
        part's class.
    :param wrap: applied to every delegate's Deferred (``None``: nothing).
    :raises TypeError: a part's class lacks a method of an interface it
        claims, or two parts claim the same interface.
    """
    served: dict[type[Interface], str] = {}
    for attribute, part in parts.items():
        for interface in family_interfaces(part):
            if interface in served:
                raise TypeError(f"{interface.__name__} is claimed by both '{served[interface]}' "
                                f"and '{attribute}' of {backend.__name__}")
            served[interface] = attribute
            for name in interface.names():
                implementation = getattr(part, name, None)
                if implementation is None:
                    raise TypeError(f"{part.__name__} claims {interface.__name__} but has no '{name}'")
                setattr(backend, name, _delegate(attribute, name, implementation, wrap))
            classImplements(backend, interface)  # type: ignore[misc]  # a class given at run time


def _delegate(attribute: str, name: str, implementation: Callable[..., Any],
              wrap: Wrap | None) -> Callable[..., Deferred[Any]]:
    coroutine = inspect.iscoroutinefunction(implementation)
    method = operator.attrgetter(f"{attribute}.{name}")

    @functools.wraps(implementation)
    def delegate(self: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        outcome = method(self)(*args, **kwargs)
        d: Deferred[Any] = ensureDeferred(outcome) if coroutine else outcome
        return d if wrap is None else wrap(name, d)

    return delegate
