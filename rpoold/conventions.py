"""
Conventions of the pool that every backend keeps alike, whatever it talks
to (core0 agents, AYS): how a disk's type is told, where a container sees
a pool filesystem, a container NIC's configuration with every field, the
name of a node's ZeroTier membership.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rpoold.contract.wire import ContainerNICConfig

GIB = 1024**3
#: Rotating disks larger than this are ``archive`` rather than ``hdd``.
ARCHIVE_MIN_GIB = 7 * 1024


def disk_type(disk: dict[str, Any]) -> str:
    """ssd / nvme / hdd / archive of a ``disk.list`` disk, as the reference decided it."""
    size_gib = int(disk.get("size") or 0) // GIB
    if str(disk.get("rota")) == "1":
        return "archive" if size_gib > ARCHIVE_MIN_GIB else "hdd"
    return "nvme" if "nvme" in str(disk.get("name", "")) else "ssd"


def container_mount_target(pool: str, filesystem: str) -> str:
    """Where a container sees the filesystem ``<pool>:<filesystem>`` it mounts."""
    return f"/fs/{pool}/{filesystem}"


def nic_config(config: Mapping[str, Any] | None) -> ContainerNICConfig:
    """A container NIC's ``config`` with every field, as REST, core0 and AYS spell it."""
    config = config or {}
    return {
        "dhcp": bool(config.get("dhcp")),
        "cidr": config.get("cidr") or "",
        "gateway": config.get("gateway") or "",
        "dns": list(config.get("dns") or []),
    }


def zerotier_name(nodeid: str, nwid: str) -> str:
    """The name the original gave a node's membership (its AYS service name)."""
    return f"{nodeid}_{nwid}"
