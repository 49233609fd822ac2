"""
AYS service data -> the REST contract's shapes.

AYS keeps each resource as a service: a name, a parent, and ``data`` in the
field names of its template.  The functions here map that data to the
contract's wire names explicitly (the original relied on a case-insensitive
JSON decoder), in the same shapes the other backends produce.
"""

from __future__ import annotations

from typing import Any

from rpoold import conventions


def capacity(value: Any) -> int:
    """
    A storage pool capacity.  The REST field is GiB and the original copied
    the service data through unchanged, so AYS keeps it in GiB.
    """
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def parent_of(service: dict[str, Any]) -> tuple[str, str] | None:
    """``(role, name)`` of a Service object's parent, ``None`` without one."""
    parent = service.get("parent")
    if isinstance(parent, dict) and parent.get("name"):
        return str(parent.get("role", "")), str(parent["name"])
    return None


# Nodes --------------------------------------------------------------------------------


def node(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "hostname": data.get("hostname") or "",
        "status": data.get("status") or "running",
        "ipaddress": data.get("redisAddr") or "",
    }


# Bridges ------------------------------------------------------------------------------


def bridge(name: str, data: dict[str, Any]) -> dict[str, Any]:
    setting = data.get("setting") or {}
    return {
        "name": name,
        "setting": {k: setting.get(k) or "" for k in ("cidr", "start", "end")},
        "status": data.get("status") or "up",
    }


# Storage pools ------------------------------------------------------------------------


def storage_pool_item(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "status": data.get("status") or "unknown",
        "capacity": capacity(data.get("freeCapacity")),
    }


def storage_pool(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "status": data.get("status") or "unknown",
        "dataProfile": data.get("dataProfile") or "",
        "metadataProfile": data.get("metadataProfile") or "",
        "mountpoint": data.get("mountpoint") or "",
        "capacity": capacity(data.get("freeCapacity")),
        "totalCapacity": capacity(data.get("totalCapacity")),
    }


def pool_devices(data: dict[str, Any]) -> list[dict[str, str]]:
    """The template's device entries (``device``, ``partUUID``, ``status``)."""
    return [d for d in data.get("devices") or [] if isinstance(d, dict)]


def storage_pool_device(device: dict[str, Any]) -> dict[str, Any]:
    status = device.get("status") or "healthy"
    return {
        "uuid": device.get("partUUID") or "",
        "deviceName": device.get("device") or "",
        "status": "healthy" if status == "unknown" else status,
    }


# Filesystems and snapshots ------------------------------------------------------------


def filesystem(name: str, pool: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "parent": pool,
        "mountpoint": data.get("mountpoint") or "",
        "quota": int(data.get("quota") or 0),
        "readOnly": bool(data.get("readOnly")),
        "sizeOnDisk": int(data.get("sizeOnDisk") or 0),
    }


def snapshot(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data.get("name") or name,
        "sizeOnDisk": int(data.get("sizeOnDisk") or 0),
        "timestamp": int(data.get("timestamp") or 0),
    }


# ZeroTier -----------------------------------------------------------------------------


def zerotier_item(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "nwid": data.get("nwid") or "",
        "status": data.get("status") or "",
        "type": str(data.get("type") or "private").lower(),
    }


def zerotier(data: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in data.items() if k != "node"}
    view["type"] = str(data.get("type") or "private").lower()
    view["routes"] = [
        {**route, "via": route.get("via") or ""}
        for route in data.get("routes") or [] if isinstance(route, dict)
    ]
    return view


# Containers ---------------------------------------------------------------------------


def container_item(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "hostname": data.get("hostname") or "",
        "flist": data.get("flist") or "",
        "status": data.get("status") or "halted",
    }


def container_nic(nic: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"type": nic.get("type") or "default",
                            "config": conventions.nic_config(nic.get("config"))}
    if nic.get("id"):
        item["id"] = nic["id"]
    return item


def container_filesystems(data: dict[str, Any]) -> list[str]:
    """
    The ``pool:fs`` entries the container was created with, read back from
    its mounts (targets are ``/fs/<pool>/<fs>``); a mount of another shape
    shows as its filesystem name.
    """
    result = []
    for mount in data.get("mounts") or []:
        if not isinstance(mount, dict):
            continue
        name = str(mount.get("filesystem") or "")
        parts = str(mount.get("target") or "").split("/")
        if len(parts) == 4 and parts[:2] == ["", "fs"] and parts[3] == name:
            result.append(f"{parts[2]}:{name}")
        else:
            result.append(name)
    if not result:
        result = [str(f) for f in data.get("filesystems") or []]
    return result


def init_process(process: dict[str, Any]) -> dict[str, Any]:
    """An init process with every field (the template's are the REST ``CoreSystem``'s)."""
    return {
        "name": process.get("name") or "",
        "pwd": process.get("pwd") or "",
        "args": list(process.get("args") or []),
        "environment": list(process.get("environment") or []),
        "stdin": process.get("stdin") or "",
    }


def container(data: dict[str, Any]) -> dict[str, Any]:
    nics = [n for n in data.get("nics") or [] if isinstance(n, dict)]
    view: dict[str, Any] = {
        "status": data.get("status") or "halted",
        "hostname": data.get("hostname") or "",
        "flist": data.get("flist") or "",
        "initprocesses": [init_process(p) for p in data.get("initProcesses") or []
                          if isinstance(p, dict)],
        "filesystems": container_filesystems(data),
        "nics": [container_nic(n) for n in nics],
        "hostNetworking": bool(data.get("hostNetworking")),
        "ports": [str(p) for p in data.get("ports") or []],
        "storage": data.get("storage") or "",
    }
    zerotier_id = next((n.get("id") for n in nics if n.get("type") == "zerotier"), "")
    if zerotier_id:
        view["zerotier"] = zerotier_id
    return view


# VMs ----------------------------------------------------------------------------------


def vm_item(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": name, "status": data.get("status") or "deploying"}


def vm(name: str, data: dict[str, Any]) -> dict[str, Any]:
    vnc = data.get("vnc")
    return {
        "id": name,
        "status": data.get("status") or "deploying",
        "cpu": int(data.get("cpu") or 0),
        "memory": int(data.get("memory") or 0),
        "nics": [
            {"id": n.get("id") or "", "type": n.get("type") or "default",
             "macaddress": n.get("macaddress") or ""}
            for n in data.get("nics") or [] if isinstance(n, dict)
        ],
        "disks": [
            {"vdiskid": d.get("vdiskid") or "", "maxIOps": int(d.get("maxIOps") or 0)}
            for d in data.get("disks") or [] if isinstance(d, dict)
        ],
        "vnc": -1 if vnc is None else int(vnc),
    }


# Storage clusters ---------------------------------------------------------------------


def storage_server(name: str, service: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """
    An ardb service as a storage server, and the list it belongs in
    (``data`` or ``metadata``, the second-last ``_`` part of its name).
    """
    data = service.get("data") or {}
    parts = name.split("_")
    kind = parts[-2] if len(parts) >= 2 else ""
    try:
        number = int(parts[-1])
    except ValueError:
        number = 0
    host, _, port = str(data.get("bind") or "").rpartition(":")
    try:
        port_number = int(port)
    except ValueError:
        port_number = 0
    return kind, {
        "id": number,
        "ip": host,
        "port": port_number,
        "container": data.get("container") or "",
        "status": "error" if service.get("state") == "error" else "ready",
    }


def storage_cluster(
    data: dict[str, Any], ardbs: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """
    :param ardbs: ``(name, Service object)`` of each ardb the cluster lists.
    """
    servers: dict[str, list[dict[str, Any]]] = {"data": [], "metadata": []}
    for name, service in ardbs:
        kind, server = storage_server(name, service)
        if kind in servers:
            servers[kind].append(server)
    for items in servers.values():
        items.sort(key=lambda s: s["id"])
    return {
        "label": data.get("label") or "",
        "status": data.get("status") or "empty",
        "driveType": data.get("diskType") or "ssd",
        "nodes": [str(n) for n in data.get("nodes") or []],
        "dataStorage": servers["data"],
        "metadataStorage": servers["metadata"],
    }


# Vdisks -------------------------------------------------------------------------------


def vdisk_item(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "storageCluster": data.get("storageCluster") or "",
        "type": data.get("type") or "boot",
        "status": data.get("status") or "halted",
    }


def vdisk(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "size": int(data.get("size") or 0),
        "blocksize": int(data.get("blocksize") or 0),
        "type": data.get("type") or "boot",
        "readOnly": bool(data.get("readOnly")),
        "status": data.get("status") or "halted",
        "storagecluster": data.get("storageCluster") or "",
        "tlogStoragecluster": data.get("tlogStoragecluster") or "",
    }
