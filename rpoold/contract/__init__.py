"""
The contract: ``types.json``, the single description of the API's
operations and types (wire names, required fields, enums, patterns), with
rpoold's own per-operation keys ``family`` and ``interface_method`` (which
resource family serves it and which interface method it calls).

``operations`` lists the 2017 contract's 91 operations; ``rpoold_operations``
the endpoints rpoold adds of its own (operations, events, streamed job
output), described the same way and marked ``rpoold_own``.

This module reads the document and lists its operations; what is derived
from the types lives beside it: ``rpoold.json_schemas`` (the types as JSON
Schema), ``rpoold.request_validation`` and ``rpoold.response_shaping``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
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


def element_type(type_ref: str) -> tuple[str, bool]:
    """
    Split a body type reference: ``T[]`` -> ``(T, True)``; ``T`` -> ``(T, False)``.
    """
    if type_ref.endswith("[]"):
        return type_ref[:-2], True
    return type_ref, False


#: The query parameters of every list operation: a page's size, and where it starts.
LIST_PARAMETERS = ("limit", "cursor")


@dataclass(frozen=True)
class ListFilter:
    """A query parameter that keeps the items whose ``field`` matches it."""

    #: The item field compared (``None``: the item itself, a string).
    field: str | None
    #: ``exact`` or ``prefix``.
    match: str


@dataclass(frozen=True)
class ListSpec:
    """How a list operation's array is sorted (``key``), paged and filtered."""

    #: The item fields the list is sorted by; empty: by the item itself.
    key: tuple[str, ...]
    filters: dict[str, ListFilter]


def _list_spec(spec: dict[str, Any] | None) -> ListSpec | None:
    if spec is None:
        return None
    return ListSpec(key=tuple(spec["key"]),
                    filters={name: ListFilter(f["field"], f["match"]) for name, f in spec["filters"].items()})


@dataclass(frozen=True)
class Reference:
    """
    A resource a write's body names, read before the write is made
    (``types.json``'s ``references``; see its conventions).
    """

    #: The body's array whose objects name it, and the field that does.
    items: str
    field: str
    #: Only the objects with these field values name it.
    when: dict[str, Any]
    #: The GET operation that reads it, and that operation's path
    #: parameters (templates over the write's path parameters and ``{value}``).
    read: str
    arguments: dict[str, str]
    #: What the refusal calls it (a template, as ``arguments``).
    names: str
    #: The refusal's status (404 or 400).
    status: int
    #: A GET of the write's path read first when it is missing (``None``: none).
    within: str | None = None


def _references(specs: list[dict[str, Any]]) -> tuple[Reference, ...]:
    return tuple(Reference(items=r["items"], field=r["field"], when=r.get("when", {}), read=r["read"],
                           arguments=r["arguments"], names=r["names"], status=r["status"],
                           within=r.get("within")) for r in specs)


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, as ``types.json`` lists it."""

    number: int
    name: str
    method: str
    path: str
    #: The resource family that serves it, and the method of the family's
    #: interface it calls (rpoold's keys).
    family: str
    interface_method: str
    #: The least role a caller needs (``read``, ``operate``, ``admin``).
    role: str
    request: str | None
    success: int
    response: str | None
    response_media_type: str | None
    location: str | None
    path_aliases: tuple[str, ...]
    query: dict[str, Any]
    request_media_type: str | None
    #: The parts of a ``multipart/form-data`` body, by name.
    multipart: dict[str, Any]
    notes: tuple[str, ...]
    #: For a 201: the GET operation whose answer it carries (the created
    #: resource, read back once the write is done); ``None`` otherwise.
    created: str | None = None
    #: How a list operation's array is sorted, paged and filtered
    #: (``types.json``'s ``list``: ``key``, ``filters``); ``None``: not a list.
    listing: ListSpec | None = None
    #: The response header naming the nodes a pool-wide list could not ask.
    fan_out: str | None = None
    #: The resources its body names, checked before it is made.
    references: tuple[Reference, ...] = ()
    #: One of rpoold's own endpoints (``rpoold_operations``), not the 2017 contract's.
    own: bool = False

    @property
    def query_parameters(self) -> tuple[str, ...]:
        """Every query parameter the operation accepts (any other is a 400)."""
        names = list(self.query)
        if self.listing is not None:
            names += [*LIST_PARAMETERS, *self.listing.filters]
        return tuple(names)

    @property
    def is_write(self) -> bool:
        """Whether it changes the pool: a POST, PUT or DELETE that needs more than the ``read`` role."""
        return self.method != "GET" and self.role != "read"

    @property
    def path_parameters(self) -> list[str]:
        """The names of the path's parameters, in order."""
        return re.findall(r"{(\w+)}", self.path)

    @property
    def arguments(self) -> tuple[str, ...]:
        """
        The keyword arguments the web app calls the interface method with:
        the path parameters, the query parameters, then ``blocks`` (the
        uploaded file, block by block) for a multipart body or ``body``
        for a JSON body.
        """
        names = [*self.path_parameters, *self.query]
        if self.multipart:
            names.append("blocks")
        elif self.request is not None:
            names.append("body")
        return tuple(names)


def operations(document: dict[str, Any], key: str = "operations") -> tuple[Operation, ...]:
    """
    :param key: ``operations`` (the contract's) or ``rpoold_operations``
        (rpoold's own endpoints).
    :returns: the operations of a contract document, in its order.
    """
    return tuple(
        Operation(
            number=op["number"],
            name=op["name"],
            method=op["method"],
            path=op["path"],
            family=op["family"],
            interface_method=op["interface_method"],
            role=op["role"],
            request=op["request"],
            success=op["success"],
            response=op["response"],
            response_media_type=op.get("response_media_type"),
            location=op["location"],
            path_aliases=tuple(op.get("path_aliases", ())),
            query=op.get("query", {}),
            request_media_type=op.get("request_media_type"),
            multipart=op.get("multipart", {}),
            notes=tuple(op.get("notes", ())),
            created=op.get("created"),
            listing=_list_spec(op.get("list")),
            fan_out=op.get("fan_out"),
            references=_references(op.get("references", [])),
            own=bool(op.get("rpoold_own", False)),
        )
        for op in document.get(key, ())
    )


#: Every operation of the shipped contract, in its order.
OPERATIONS: tuple[Operation, ...] = operations(load())
OPERATIONS_BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
#: rpoold's own endpoints (operations, events, streamed job output).
OWN_OPERATIONS: tuple[Operation, ...] = operations(load(), "rpoold_operations")
#: Both, the contract's first.
ALL_OPERATIONS: tuple[Operation, ...] = OPERATIONS + OWN_OPERATIONS
ALL_OPERATIONS_BY_NAME: dict[str, Operation] = {op.name: op for op in ALL_OPERATIONS}
