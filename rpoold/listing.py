"""
Lists that filter and page: what the web app does with the array a list
operation's backend answered, as ``types.json``'s ``list`` of the
operation says (``rpoold.contract.ListSpec``).

The array is filtered (``?status=``, ``?name=`` prefix, ...), sorted by the
list's key (fields that tell its items apart), and cut after the cursor's
key: a page holds the first ``limit`` items whose key is above the key of
the last item of the page before.  A cursor is that key, encoded; so a
page does not move when items are added or removed before it, and an item
present from the first page to the last is on exactly one of them.

A pool-wide list's backend answers a ``PoolListing``: the items of the
nodes that answered, and the ids of those that did not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rpoold.contract import ListSpec
from rpoold.errors import BadRequest

#: Most items a page may hold (``?limit=``).
MAX_LIMIT = 1000
#: Longest cursor accepted (characters); a key of two names fits many times.
MAX_CURSOR = 2048
#: The characters of a cursor (URL-safe base64 without padding).
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"

T = TypeVar("T")

#: One element of a sort key: integers before strings, each among its kind.
KeyPart = tuple[bool, Any]


@dataclass
class PoolListing(Generic[T]):
    """
    What a pool-wide list's backend method answers.

    :ivar items: the items of every node asked that answered, each naming
        its node (``node``).
    :ivar unreachable: the ids of the nodes that did not answer in time
        (their items are left out, or shown as the orchestrator last knew
        them).
    """

    items: list[T]
    unreachable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListQuery:
    """
    A list request's paging and filters, validated.

    :ivar limit: most items of the page; ``None``: every item.
    :ivar after: the key of the last item of the page before (the cursor's);
        ``None``: the first page.
    :ivar filters: query parameter -> the value it was given.
    """

    limit: int | None = None
    after: tuple[KeyPart, ...] | None = None
    filters: Mapping[str, str] = field(default_factory=dict)


def _part(value: Any) -> KeyPart:
    if isinstance(value, int) and not isinstance(value, bool):
        return (False, value)
    return (True, "" if value is None else str(value))


def sort_key(spec: ListSpec, item: Any) -> tuple[KeyPart, ...]:
    """
    :returns: ``item``'s key in its list: its ``spec.key`` fields; a
        string item itself; another item without key fields, a digest of
        its JSON.  (``page`` adds the item's rank among the items of the
        same key.)
    """
    if spec.key:
        return tuple(_part(item.get(name)) for name in spec.key)
    if isinstance(item, str):
        return (_part(item),)
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"))
    return (_part(hashlib.sha256(canonical.encode()).hexdigest()),)


def encode_cursor(key: Sequence[KeyPart]) -> str:
    """:returns: the opaque cursor of a key."""
    raw = json.dumps([value for _, value in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(spec: ListSpec, text: str) -> tuple[KeyPart, ...] | None:
    """
    :returns: the key a cursor holds; ``None`` for an empty cursor (the
        first page).
    :raises BadRequest: not a cursor this list gives out.
    """
    if not text:
        return None
    refused = BadRequest("the cursor is not one this list gave out (query parameter 'cursor')")
    if len(text) > MAX_CURSOR:
        raise refused
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise refused from None
    if (not isinstance(values, list) or len(values) != max(len(spec.key), 1) + 1
            or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)):
        raise refused
    return tuple(_part(v) for v in values)


def _matches(spec: ListSpec, item: Any, filters: Mapping[str, str]) -> bool:
    for name, wanted in filters.items():
        rule = spec.filters[name]
        value = item if rule.field is None else item.get(rule.field)
        value = "" if value is None else str(value)
        if rule.match == "prefix" and not value.startswith(wanted):
            return False
        if rule.match == "exact" and value != wanted:
            return False
    return True


def page(spec: ListSpec, query: ListQuery, items: Iterable[Any]) -> tuple[list[Any], str | None]:
    """
    :param items: the whole list, as answered (shaped).
    :returns: the page ``query`` asks for, and the cursor of the next page
        (``None`` when this page ends the list).
    """
    keyed = sorted(((sort_key(spec, item), item) for item in items
                    if _matches(spec, item, query.filters)), key=lambda pair: pair[0])
    # Items that share a key (identical CPUs) are told apart by their rank among them.
    seen: dict[tuple[KeyPart, ...], int] = {}
    for index, (key, item) in enumerate(keyed):
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        keyed[index] = ((*key, _part(rank)), item)
    if query.after is not None:
        after = query.after
        keyed = [pair for pair in keyed if pair[0] > after]
    if query.limit is None or len(keyed) <= query.limit:
        return [item for _, item in keyed], None
    shown = keyed[:query.limit]
    return [item for _, item in shown], encode_cursor(shown[-1][0])
