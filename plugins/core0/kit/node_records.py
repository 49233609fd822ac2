"""
What the command kit records about a node's things (``rpoold.records``):
the kinds, how keys are made, and forgetting a node's records.

Container names and VM ids are unique in the whole pool, so their records
are keyed by the name alone and say which node holds them: claiming a
name is one atomic ``add``, also between daemons sharing a store.  Bridges
and subvolumes are per node (``<node id>/<name>``).
"""

from __future__ import annotations

from typing import Any

from rpoold.records import IRecords

#: A container made (or seen running) here, by name: ``{"node", "spec"}``
#: (``spec``: its create body, from which a halted container starts again).
CONTAINER = "container"
#: A VM, by id: ``{"node", ...}`` what was asked (cpu, memory, nics, disks,
#: cloud-init) and its status.
VM = "vm"
#: The ``network`` a bridge was created with, by ``<node id>/<name>``.
BRIDGE = "bridge"
#: A filesystem's quota and read-only flag, a snapshot's time, by
#: ``<node id>/<path>``.
SUBVOLUME = "subvolume"

#: Kinds keyed by name, their records naming their node.
BY_NAME = (CONTAINER, VM)
#: Kinds keyed by node.
BY_NODE = (BRIDGE, SUBVOLUME)


def key(nodeid: str, name: str) -> str:
    """The key of ``name`` (a bridge, a subvolume path) on a node."""
    return f"{nodeid}/{name}"


def node_prefix(nodeid: str) -> str:
    return f"{nodeid}/"


async def on_node(records: IRecords, kind: str, nodeid: str) -> list[tuple[str, dict[str, Any]]]:
    """The records of a kind keyed by name (``BY_NAME``) that are on a node."""
    return [(name, record) for name, record in await records.list(kind) if record.get("node") == nodeid]


async def of_node(records: IRecords, kind: str, nodeid: str, name: str) -> dict[str, Any] | None:
    """The record of ``name`` (``BY_NAME``) if it is on that node."""
    record = await records.get(kind, name)
    return record if record is not None and record.get("node") == nodeid else None


async def forget_node(records: IRecords, nodeid: str) -> None:
    """Drop every record of a node's things."""
    for kind in BY_NAME:
        for name, record in await on_node(records, kind, nodeid):
            await records.replace(kind, name, record, None)
    for kind in BY_NODE:
        for found, _ in await records.list(kind, node_prefix(nodeid)):
            await records.delete(kind, found)
