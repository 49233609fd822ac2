"""
Whether a backend's methods take the arguments the web app calls them
with.

The web app calls a family's interface method by keyword, with the
operation's ``Operation.arguments`` (its path parameters by their contract
names, ``path``, ``blocks`` or ``body``).  ``verifyObject`` only counts
arguments: a method whose parameter is spelt otherwise passes it and fails
every request with a 500.  Configuration checks each method here instead,
so that such a backend stops start-up.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from rpoold.contract import ALL_OPERATIONS_BY_NAME
from rpoold.interfaces import Family

_KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _spelt(signature: inspect.Signature) -> str:
    """``(nodeid, *args, **options)``: the parameter names, without annotations."""

    def spelt(p: inspect.Parameter) -> str:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return f"*{p.name}"
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return f"**{p.name}"
        return p.name

    return "(" + ", ".join(spelt(p) for p in signature.parameters.values()) + ")"


def mismatch(signature: inspect.Signature, arguments: Sequence[str]) -> str | None:
    """
    :param arguments: the keyword arguments a call passes.
    :returns: why a callable of ``signature`` cannot be called with them
        (``None`` when it can).
    """
    try:
        signature.bind(**dict.fromkeys(arguments))
    except TypeError as e:
        refused = str(e)
    else:
        return None
    parameters = signature.parameters
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    reasons = []
    if not any_keyword:
        reasons += [f"it has no parameter '{name}'" for name in arguments
                    if name not in parameters or parameters[name].kind not in _KEYWORDS]
    reasons += [
        f"its parameter '{name}' is not passed" for name, p in parameters.items()
        if p.default is p.empty and p.kind not in _VARIADIC
        and (name not in arguments or p.kind not in _KEYWORDS)
    ]
    return "; ".join(reasons) or refused


def mismatches(family: Family, backend: object) -> list[str]:
    """
    :param backend: a backend that implements ``family.interface``.
    :returns: one line per method of the family that the web app cannot
        call on ``backend``, naming the method, the operation and the
        parameters (empty when all can be called).
    """
    lines = []
    for operation, method_name in family.operations.items():
        method = getattr(backend, method_name)
        try:
            signature = inspect.signature(method)
        except (TypeError, ValueError):  # no signature to read (a builtin): nothing to check
            continue
        arguments = ALL_OPERATIONS_BY_NAME[operation].arguments
        why = mismatch(signature, arguments)
        if why is not None:
            lines.append(
                f"method {method_name}{_spelt(signature)} cannot take what the web app passes for "
                f"{operation}, {method_name}({', '.join(arguments)}): {why}"
            )
    return lines
