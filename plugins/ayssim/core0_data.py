"""
core0's data as the simulated AYS templates write and read it: where a
storage pool, a filesystem and a snapshot are on a node, the arguments
of ``corex.create``, ``core.system`` and ``kvm.create``, and what
``disk.list``, ``corex.list`` and ``zerotier.list`` answer.

The real templates spoke core0 with their own client; so does the
simulator.  The layout is the pool's (the core0 backend reads what AYS
made: the tests check both agree).
"""

from __future__ import annotations

import json
from typing import Any

from rpoold.conventions import nic_config

#: Where a storage pool is mounted, and how its btrfs filesystem is labelled.
POOL_MOUNT = "/mnt/storagepools/{name}"
POOL_LABEL = "sp_{name}"


# Storage ----------------------------------------------------------------------------


def pool_label(name: str) -> str:
    """The btrfs label of storage pool ``name``."""
    return POOL_LABEL.format(name=name)


def pool_mount(name: str) -> str:
    """Where storage pool ``name`` is mounted."""
    return POOL_MOUNT.format(name=name)


def filesystem_path(pool: str, name: str) -> str:
    """The subvolume of filesystem ``name`` of ``pool``."""
    return f"{pool_mount(pool)}/filesystems/{name}"


def snapshot_path(pool: str, filesystem: str, name: str) -> str:
    """The subvolume of snapshot ``name`` of ``filesystem`` (``name`` empty: their folder)."""
    return f"{pool_mount(pool)}/snapshots/{filesystem}/{name}"


def block_devices(disk_list: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The whole disks of a ``disk.list`` answer by ``/dev/<kname>``."""
    return {f"/dev/{d['kname']}": d for d in disk_list.get("blockdevices") or []}


# Containers -------------------------------------------------------------------------


def listed_containers(listing: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The running containers of a ``corex.list`` answer by id: each id and its create arguments."""
    found = [(int(key), ((entry or {}).get("container") or {}).get("arguments") or {})
             for key, entry in listing.items()]
    return sorted(found, key=lambda item: item[0])


def ports_to_map(ports: list[str]) -> dict[str, int] | None:
    """
    ``["8080:80"]`` as core0's ``{"8080": 80}``.

    :raises ValueError: a guest port is not a number.
    """
    mapping = {}
    for entry in ports:
        host, _, guest = entry.partition(":")
        mapping[host] = int(guest)
    return mapping or None


def ports_from_map(port: dict[str, Any] | None) -> list[str]:
    """core0's ``{"8080": 80}`` as ``["8080:80"]``."""
    return [f"{host}:{guest}" for host, guest in sorted((port or {}).items())]


def container_arguments(data: dict[str, Any], mounts: dict[str, str]) -> dict[str, Any]:
    """
    ``corex.create`` arguments of a container service (its data has the
    fields of a ``CreateContainer`` body, ``name`` the service's), tagged
    with its name.

    :param mounts: subvolume -> target in the container.
    :raises ValueError: a port mapping is not ``host:guest``.
    """
    return {
        "root": data["flist"],
        "mount": mounts or None,
        "host_network": bool(data.get("hostNetworking")),
        "nics": [{"type": nic["type"], "id": nic.get("id") or "", "hwaddr": nic.get("hwaddr") or "",
                  "config": nic_config(nic.get("config"))} for nic in data.get("nics") or []],
        "port": ports_to_map(data.get("ports") or []),
        "privileged": False,
        "hostname": data["hostname"],
        "storage": data.get("storage") or "",
        "tags": [data["name"]],
    }


def system_arguments(process: dict[str, Any]) -> dict[str, Any]:
    """``core.system`` arguments of an init process (a ``CoreSystem``: ``KEY=VALUE`` environment)."""
    env = {}
    for entry in process.get("environment") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return {
        "name": process["name"],
        "args": list(process.get("args") or []),
        "dir": process.get("pwd") or "",
        "stdin": process.get("stdin") or "",
        "env": env or None,
    }


# VMs ---------------------------------------------------------------------------------


def vm_media(disks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A VM's disks (vdisk links) as ``kvm.create`` media."""
    return [{"url": f"nbd+unix:///{d['vdiskid']}?socket=/server.socket.{d['vdiskid']}",
             "iotune": {"totaliopssec": d.get("maxIOps", 0)}} for d in disks]


def vm_nics(nics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A VM's nics as ``kvm.create`` nics."""
    return [{"type": n["type"], "id": n.get("id") or "", "hwaddr": n.get("macaddress") or ""}
            for n in nics]


# ZeroTier ----------------------------------------------------------------------------


def parse_zerotier_list(data: str) -> list[dict[str, Any]]:
    """``zerotier.list`` data (JSON after a leading newline) as a list."""
    text = data.strip()
    return json.loads(text) if text else []


def zerotier_view(network: dict[str, Any]) -> dict[str, Any]:
    """A ``zerotier.list`` entry as the service data's fields (type lower case, routes with ``via``)."""
    view = {k: v for k, v in network.items() if k != "id"}
    view["type"] = str(network.get("type", "")).lower()
    view["routes"] = [
        {**route, "via": route.get("via") or ""} for route in network.get("routes") or []
    ]
    return view
