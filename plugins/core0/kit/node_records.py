"""
What the command kit records about a node's things (``rpoold.records``):
the kinds, how a key is made, and forgetting a node's records.
"""

from __future__ import annotations

from rpoold.records import IRecords

#: The create body of a container made (or seen running) here.
CONTAINER = "container"
#: The ``network`` a bridge was created with.
BRIDGE = "bridge"
#: A filesystem's quota and read-only flag, a snapshot's time.
SUBVOLUME = "subvolume"
#: A VM: what was asked (cpu, memory, nics, disks, cloud-init) and its status.
VM = "vm"

KINDS = (CONTAINER, BRIDGE, SUBVOLUME, VM)


def key(nodeid: str, name: str) -> str:
    """The key of ``name`` (a container, a bridge, a subvolume path, a VM) on a node."""
    return f"{nodeid}/{name}"


def node_prefix(nodeid: str) -> str:
    return f"{nodeid}/"


def name_of(key: str) -> tuple[str, str]:
    """A key back to ``(node id, name)``."""
    nodeid, _, name = key.partition("/")
    return nodeid, name


async def forget_node(records: IRecords, nodeid: str) -> None:
    """Drop every record of a node's things."""
    for kind in KINDS:
        for found, _ in await records.list(kind, node_prefix(nodeid)):
            await records.delete(kind, found)
