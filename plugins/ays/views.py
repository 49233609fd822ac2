"""
AYS service data -> the REST contract's shapes.

AYS keeps each resource as a service: a name, a parent, and ``data`` in the
field names of its template.  The functions here map that data to the
contract's wire names explicitly (the original relied on a case-insensitive
JSON decoder), in the same shapes the other backends produce
(``rpoold.contract.wire``).

A view converts what needs converting (numbers AYS may keep as text,
renamed fields, defaults that are not a zero value, such as a node's
``running``).  A text field is shown as AYS keeps it and left out when
AYS has none (or an empty one): the web app's response shaper fills every
field the contract always shows with its zero value, for every backend,
so the answer on the wire is the one ``data.get(key) or ""`` here would
give.  Views whose fields the backend itself reads (a VM's,
compared by updates; a cluster's ``label``), that go into blueprints
(init processes) or whose field the contract does not always show (a
container's ``storage``) fill them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from rpoold import conventions
from rpoold.contract.wire import (
    VM,
    Bridge,
    BridgeCreateSetting,
    Cluster,
    Container,
    ContainerListItem,
    ContainerNIC,
    CoreSystem,
    Filesystem,
    Node,
    Snapshot,
    StoragePool,
    StoragePoolDevice,
    StoragePoolListItem,
    StorageServer,
    Vdisk,
    VdiskListItem,
    VMListItem,
    Zerotier,
    ZerotierListItem,
)

#: Text fields shown as the service data has them, when it has them (the shaper fills the others).
SETTING_TEXTS: Final = ("cidr", "start", "end")
POOL_TEXTS: Final = ("dataProfile", "metadataProfile", "mountpoint")
ZEROTIER_ITEM_TEXTS: Final = ("nwid", "status")
CONTAINER_TEXTS: Final = ("hostname", "flist")


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


def node(name: str, data: dict[str, Any]) -> Node:
    """A ``node.g8os`` service as a ``Node`` (its address is ``redisAddr``)."""
    view: Node = {"id": name, "status": data.get("status") or "running"}
    if hostname := data.get("hostname"):
        view["hostname"] = hostname
    if address := data.get("redisAddr"):
        view["ipaddress"] = address
    return view


# Bridges ------------------------------------------------------------------------------


def bridge(name: str, data: dict[str, Any]) -> Bridge:
    """A ``bridge`` service as a ``Bridge``."""
    setting = data.get("setting") or {}
    shown: BridgeCreateSetting = {}
    for key in SETTING_TEXTS:
        if setting.get(key):
            shown[key] = setting[key]
    return {"name": name, "setting": shown, "status": data.get("status") or "up"}


# Storage pools ------------------------------------------------------------------------


def storage_pool_item(name: str, data: dict[str, Any]) -> StoragePoolListItem:
    """A ``storagepool`` service as a list item (its capacity is the free one)."""
    return {
        "name": name,
        "status": data.get("status") or "unknown",
        "capacity": capacity(data.get("freeCapacity")),
    }


def storage_pool(name: str, data: dict[str, Any]) -> StoragePool:
    """A ``storagepool`` service as a ``StoragePool``."""
    view: StoragePool = {
        "name": name,
        "status": data.get("status") or "unknown",
        "capacity": capacity(data.get("freeCapacity")),
        "totalCapacity": capacity(data.get("totalCapacity")),
    }
    for key in POOL_TEXTS:
        if data.get(key):
            view[key] = data[key]
    return view


def pool_devices(data: dict[str, Any]) -> list[dict[str, str]]:
    """The template's device entries (``device``, ``partUUID``, ``status``)."""
    return [d for d in data.get("devices") or [] if isinstance(d, dict)]


def storage_pool_device(device: dict[str, Any]) -> StoragePoolDevice:
    """A pool's device entry as a ``StoragePoolDevice`` (``unknown`` shows as ``healthy``)."""
    status = device.get("status") or "healthy"
    view: StoragePoolDevice = {"status": "healthy" if status == "unknown" else status}
    if uuid := device.get("partUUID"):
        view["uuid"] = uuid
    if path := device.get("device"):
        view["deviceName"] = path
    return view


# Filesystems and snapshots ------------------------------------------------------------


def filesystem(name: str, pool: str, data: dict[str, Any]) -> Filesystem:
    """A ``filesystem`` service of storage pool ``pool`` as a ``Filesystem``."""
    view: Filesystem = {
        "name": name,
        "parent": pool,
        "quota": int(data.get("quota") or 0),
        "readOnly": bool(data.get("readOnly")),
        "sizeOnDisk": int(data.get("sizeOnDisk") or 0),
    }
    if mountpoint := data.get("mountpoint"):
        view["mountpoint"] = mountpoint
    return view


def snapshot(name: str, data: dict[str, Any]) -> Snapshot:
    """An ``fssnapshot`` service as a ``Snapshot``."""
    return {
        "name": data.get("name") or name,
        "sizeOnDisk": int(data.get("sizeOnDisk") or 0),
        "timestamp": int(data.get("timestamp") or 0),
    }


# ZeroTier -----------------------------------------------------------------------------


def zerotier_item(name: str, data: dict[str, Any]) -> ZerotierListItem:
    """A ``zerotier`` service as a list item."""
    view: ZerotierListItem = {"name": name, "type": str(data.get("type") or "private").lower()}
    for key in ZEROTIER_ITEM_TEXTS:
        if data.get(key):
            view[key] = data[key]
    return view


def zerotier(data: dict[str, Any]) -> Zerotier:
    """
    The zerotier template's fields are the contract's: the data as it is
    (the shaper keeps the contract's fields and fills what is missing),
    with the type in lower case and only the routes that are objects (a
    route's ``via`` as the original filled it).
    """
    routes = [{**route, "via": route.get("via") or ""}
              for route in data.get("routes") or [] if isinstance(route, dict)]
    return cast(Zerotier, {**{k: v for k, v in data.items() if k != "node"},
                           "type": str(data.get("type") or "private").lower(), "routes": routes})


# Containers ---------------------------------------------------------------------------


def container_item(name: str, data: dict[str, Any]) -> ContainerListItem:
    """A ``container`` service as a list item (AYS's status)."""
    view: ContainerListItem = {"name": name, "status": data.get("status") or "halted"}
    for key in CONTAINER_TEXTS:
        if data.get(key):
            view[key] = data[key]
    return view


def container_nic(nic: dict[str, Any]) -> ContainerNIC:
    """A container service's NIC as a ``ContainerNIC`` (its ``id`` only when it has one)."""
    item: ContainerNIC = {"type": nic.get("type") or "default",
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


def init_process(process: Mapping[str, Any]) -> CoreSystem:
    """
    An init process with every field (the template's are the REST
    ``CoreSystem``'s): also what blueprints send AYS, so it is filled here.
    """
    return {
        "name": process.get("name") or "",
        "pwd": process.get("pwd") or "",
        "args": list(process.get("args") or []),
        "environment": list(process.get("environment") or []),
        "stdin": process.get("stdin") or "",
    }


def container(data: dict[str, Any]) -> Container:
    """A ``container`` service as a ``Container`` (AYS's status)."""
    nics = [n for n in data.get("nics") or [] if isinstance(n, dict)]
    view: Container = {
        "status": data.get("status") or "halted",
        "initprocesses": [init_process(p) for p in data.get("initProcesses") or []
                          if isinstance(p, dict)],
        "filesystems": container_filesystems(data),
        "nics": [container_nic(n) for n in nics],
        "hostNetworking": bool(data.get("hostNetworking")),
        "ports": [str(p) for p in data.get("ports") or []],
        "storage": data.get("storage") or "",
    }
    for key in CONTAINER_TEXTS:
        if data.get(key):
            view[key] = data[key]
    zerotier_id = next((n.get("id") for n in nics if n.get("type") == "zerotier"), "")
    if zerotier_id:
        view["zerotier"] = zerotier_id
    return view


# VMs ----------------------------------------------------------------------------------


def vm_item(name: str, data: dict[str, Any]) -> VMListItem:
    """A ``vm`` service as a list item."""
    return {"id": name, "status": data.get("status") or "deploying"}


def vm(name: str, data: dict[str, Any]) -> VM:
    """Every field filled here: VM updates compare this view with what they asked for."""
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


def storage_server(name: str, service: dict[str, Any]) -> tuple[str, StorageServer]:
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
    server: StorageServer = {
        "id": number,
        "ip": host,
        "port": port_number,
        "status": "error" if service.get("state") == "error" else "ready",
    }
    if container_name := data.get("container"):
        server["container"] = container_name
    return kind, server


def storage_cluster(
    data: dict[str, Any], ardbs: list[tuple[str, dict[str, Any]]]
) -> Cluster:
    """
    :param ardbs: ``(name, Service object)`` of each ardb the cluster lists.
    :returns: the cluster, its ``label`` filled (the backend reads it).
    """
    servers: dict[str, list[StorageServer]] = {"data": [], "metadata": []}
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


def vdisk_item(name: str, data: dict[str, Any]) -> VdiskListItem:
    """A ``vdisk`` service as a list item."""
    view: VdiskListItem = {
        "id": name,
        "type": data.get("type") or "boot",
        "status": data.get("status") or "halted",
    }
    if cluster := data.get("storageCluster"):
        view["storageCluster"] = cluster
    return view


def vdisk(name: str, data: dict[str, Any]) -> Vdisk:
    """A ``vdisk`` service as a ``Vdisk``."""
    view: Vdisk = {
        "id": name,
        "size": int(data.get("size") or 0),
        "blocksize": int(data.get("blocksize") or 0),
        "type": data.get("type") or "boot",
        "readOnly": bool(data.get("readOnly")),
        "status": data.get("status") or "halted",
    }
    if cluster := data.get("storageCluster"):
        view["storagecluster"] = cluster
    if tlog := data.get("tlogStoragecluster"):
        view["tlogStoragecluster"] = tlog
    return view
