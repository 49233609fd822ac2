"""
The resources a write's body names (a VM's vdisks and bridges), checked
before the write is made: each is read through the family that serves it,
which may be another backend than the write's (a VM on core0, its vdisks
on the mock).  One that does not exist refuses the write with the status
``types.json`` declares (``references``), naming it and where the body
named it.  A family this configuration does not serve is not asked, and a
read that fails otherwise (502, 504) fails the write as it would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from twisted.internet.defer import Deferred

import rpoold.contract
from rpoold import errors
from rpoold.contract import Operation, Reference

#: The refusal of a missing reference, by the status ``types.json`` declares.
REFUSALS: dict[int, type[errors.RpoolError]] = {404: errors.NotFound, 400: errors.BadRequest}


def named(reference: Reference, body: Any) -> Iterator[tuple[str, str]]:
    """:returns: each name the body gives, with where (``disks[0].vdiskid``), once per name."""
    items = body.get(reference.items) if isinstance(body, dict) else None
    seen: set[str] = set()
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict) or any(item.get(k) != v for k, v in reference.when.items()):
            continue
        value = item.get(reference.field)
        if isinstance(value, str) and value and value not in seen:
            seen.add(value)
            yield f"{reference.items}[{index}].{reference.field}", value


class ReferenceCheck:
    """
    :param backends: the configured backends, by family.
    :param call: calls an interface method with keyword arguments, within
        the request's deadline (the web app's ``_call``).
    :param path_arguments: turns path parameters into the interface's
        keyword arguments (the request validator's ``path_arguments``).
    """

    def __init__(self, backends: Mapping[str, object],
                 call: Callable[[Any, dict[str, Any]], Deferred[Any]],
                 path_arguments: Callable[[dict[str, str]], dict[str, Any]]) -> None:
        self.backends = backends
        self.call = call
        self.path_arguments = path_arguments

    async def check(self, op: Operation, params: dict[str, str], body: Any) -> None:
        """
        Read every resource ``body`` names (``op.references``), in order.

        :param params: the write's path parameters.
        :raises errors.RpoolError: the first that does not exist (the
            declared 404 or 400; a missing ``within`` parent: its own
            404), or the error of a read that failed.
        """
        for reference in op.references:
            for where, value in named(reference, body):
                await self._exists(reference, params, where, value)

    async def _exists(self, reference: Reference, params: dict[str, str], where: str, value: str) -> None:
        values = {**params, "value": value}
        try:
            await self._read(reference.read, {k: t.format(**values) for k, t in reference.arguments.items()})
            return
        except errors.NotFound:
            pass
        if reference.within is not None:
            await self._read(reference.within, params)
        raise REFUSALS[reference.status](f"{where}: {reference.names.format(**values)} does not exist")

    async def _read(self, name: str, path: dict[str, str]) -> None:
        """Read with the GET ``name``, if this configuration serves its family."""
        read = rpoold.contract.OPERATIONS_BY_NAME[name]
        backend = self.backends.get(read.family)
        if backend is not None:
            await self.call(getattr(backend, read.interface_method), self.path_arguments(path))
