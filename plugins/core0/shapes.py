"""
How core0's data becomes the REST contract's shapes, and how REST
requests become core0 arguments.

Every backend that reads core0 data (the mock, in process; the core0
backend, over Redis; the AYS simulator's actions) uses these functions, so
they answer alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from rpoold.contract.wire import (
    Bridge,
    Container,
    ContainerListItem,
    ContainerNIC,
    ContainerNICConfig,
    CreateContainer,
    DiskInfo,
    JobListItem,
    JobResult,
    NicInfo,
    StoragePoolDevice,
    VMInfo,
    Zerotier,
    ZerotierListItem,
)
from rpoold.conventions import GIB, container_mount_target, disk_type, nic_config, zerotier_name

#: Where a storage pool is mounted, and how its btrfs filesystem is labelled.
POOL_MOUNT = "/mnt/storagepools/{name}"
POOL_LABEL = "sp_{name}"


def pool_label(name: str) -> str:
    return POOL_LABEL.format(name=name)


def pool_of_label(label: str | None) -> str | None:
    """The storage pool a btrfs label names, or ``None`` for other filesystems."""
    prefix = POOL_LABEL.format(name="")
    if label and label.startswith(prefix) and len(label) > len(prefix):
        return label[len(prefix):]
    return None


def pool_mount(name: str) -> str:
    return POOL_MOUNT.format(name=name)


def filesystem_path(pool: str, name: str) -> str:
    return f"{pool_mount(pool)}/filesystems/{name}"


def snapshot_path(pool: str, filesystem: str, name: str) -> str:
    return f"{pool_mount(pool)}/snapshots/{filesystem}/{name}"


def container_mounts(filesystems: list[str]) -> dict[str, str]:
    """A container's ``<pool>:<fs>`` entries as ``corex.create`` mounts (subvolume -> target)."""
    mounts = {}
    for entry in filesystems:
        pool, _, filesystem = entry.partition(":")
        mounts[filesystem_path(pool, filesystem)] = container_mount_target(pool, filesystem)
    return mounts


def filesystems_from_mounts(mount: dict[str, Any] | None) -> list[str]:
    """``corex.create`` mounts of pool filesystems back to ``<pool>:<fs>`` entries."""
    entries = []
    for source in sorted(mount or {}):
        parts = str(source).split("/")
        # /mnt/storagepools/<pool>/filesystems/<fs>
        if (len(parts) == 6 and pool_mount(parts[3]) == "/".join(parts[:4])
                and parts[4] == "filesystems" and parts[5]):
            entries.append(f"{parts[3]}:{parts[5]}")
    return entries


# Jobs -----------------------------------------------------------------------------


def job_state(core0_state: str) -> str:
    """core0's state spelling to the contract's (lower case, one spelling)."""
    state = core0_state.lower()
    return "duplicate_id" if state == "dupilicate_id" else state


def job_list_item(entry: dict[str, Any]) -> JobListItem:
    """A ``job.list`` entry as a ``JobListItem``."""
    return {"id": entry["cmd"]["id"], "startTime": entry["starttime"]}


def running_job(entry: dict[str, Any]) -> JobResult:
    """A ``job.list`` entry as the ``JobResult`` of a running job."""
    return {
        "id": entry["cmd"]["id"],
        "name": entry["cmd"]["command"],
        "startTime": entry["starttime"],
        "state": "running",
    }


def finished_job(result: dict[str, Any]) -> JobResult:
    """A core0 result object as a ``JobResult``."""
    streams = result.get("streams") or ["", ""]
    return {
        "id": result["id"],
        "name": result.get("command", ""),
        "level": result.get("level", 0),
        "startTime": result.get("starttime", 0),
        "stdout": streams[0] if streams else "",
        "stderr": streams[1] if len(streams) > 1 else "",
        "state": job_state(result.get("state", "")),
        "data": result.get("data", ""),
    }


# Node facts --------------------------------------------------------------------


def disk_infos(disk_list: dict[str, Any], mounts: list[dict[str, Any]]) -> list[DiskInfo]:
    """``disk.list`` plus ``info.disk`` as ``DiskInfo`` items."""
    result: list[DiskInfo] = []
    for disk in disk_list.get("blockdevices") or []:
        device = f"/dev/{disk['name']}"
        mount = next((m for m in mounts if str(m.get("device", "")).startswith(device)), {})
        result.append({
            "device": device,
            "size": int(disk.get("size") or 0) // GIB,
            "type": disk_type(disk),
            "mountpoint": mount.get("mountpoint", ""),
            "opts": mount.get("opts", ""),
            "fstype": mount.get("fstype", ""),
        })
    return result


def container_disk_infos(mounts: list[dict[str, Any]]) -> list[DiskInfo]:
    """A container's ``info.disk`` as ``DiskInfo`` items (no block devices)."""
    return [
        {"device": m.get("device", ""), "size": 0, "type": "ssd",
         "mountpoint": m.get("mountpoint", ""), "opts": m.get("opts", ""),
         "fstype": m.get("fstype", "")}
        for m in mounts
    ]


def nic_infos(nics: list[dict[str, Any]]) -> list[NicInfo]:
    """``info.nic`` (its keys are ``NicInfo``'s) with ``addrs`` flattened to strings."""
    return [
        cast(NicInfo, {**nic, "addrs": [a["addr"] if isinstance(a, dict) else a
                                        for a in nic.get("addrs") or []]})
        for nic in nics
    ]


def block_devices(disk_list: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Whole disks of ``disk.list`` by ``/dev/<kname>``."""
    return {f"/dev/{d['kname']}": d for d in disk_list.get("blockdevices") or []}


def block_device(disk_list: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The disk or partition of ``disk.list`` at ``/dev/<kname>``, if any."""
    for disk in disk_list.get("blockdevices") or []:
        if f"/dev/{disk['kname']}" == path:
            return disk
        for part in disk.get("children") or []:
            if f"/dev/{part['kname']}" == path:
                return part
    return None


def pool_device(disk_list: dict[str, Any], path: str) -> StoragePoolDevice:
    """A storage pool's partition as a ``StoragePoolDevice`` (named by its disk)."""
    part = block_device(disk_list, path) or {}
    disk = f"/dev/{part.get('pkname')}" if part.get("pkname") else path
    return {"deviceName": disk, "uuid": part.get("partuuid") or "", "status": "healthy"}


def first_address(nics: list[dict[str, Any]]) -> str:
    """The first IPv4 address of a non-loopback nic of ``info.nic``, without prefix."""
    for nic in nics:
        if "loopback" in (nic.get("flags") or []):
            continue
        for entry in nic.get("addrs") or []:
            addr = str(entry["addr"] if isinstance(entry, dict) else entry).split("/")[0]
            if addr.count(".") == 3:
                return addr
    return ""


# Processes --------------------------------------------------------------------


def environment(entries: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings to core0's env object (split at the first ``=``)."""
    env = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def system_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ``CoreSystem`` body as ``core.system`` arguments."""
    return {
        "name": body["name"],
        "args": list(body.get("args") or []),
        "dir": body.get("pwd") or "",
        "stdin": body.get("stdin") or "",
        "env": environment(body.get("environment") or []) or None,
    }


# Containers ------------------------------------------------------------------


def ports_to_map(ports: list[str]) -> dict[str, int] | None:
    """``["8080:80"]`` to core0's ``{"8080": 80}``."""
    mapping = {}
    for entry in ports:
        host, _, guest = entry.partition(":")
        mapping[host] = int(guest)
    return mapping or None


def ports_from_map(port: dict[str, Any] | None) -> list[str]:
    return [f"{host}:{guest}" for host, guest in sorted((port or {}).items())]


def nic_arguments(nics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REST ``ContainerNIC`` items as ``corex.create`` nics."""
    return [
        {"type": nic["type"], "id": nic.get("id") or "", "hwaddr": nic.get("hwaddr") or "",
         "config": nic_config(nic.get("config"))}
        for nic in nics
    ]


def nics_from_arguments(nics: list[dict[str, Any]] | None) -> list[ContainerNIC]:
    """``corex.create`` nics back to REST ``ContainerNIC`` items."""
    result = []
    for nic in nics or []:
        config = cast(ContainerNICConfig, nic.get("config") or {})
        item: ContainerNIC = {"type": nic.get("type", ""), "config": config}
        if nic.get("id"):
            item["id"] = nic["id"]
        if nic.get("hwaddr"):
            item["hwaddr"] = nic["hwaddr"]
        result.append(item)
    return result


def container_arguments(body: Mapping[str, Any], mounts: dict[str, str]) -> dict[str, Any]:
    """A ``CreateContainer`` body as ``corex.create`` arguments, tagged with its name."""
    return {
        "root": body["flist"],
        "mount": mounts or None,
        "host_network": bool(body.get("hostNetworking")),
        "nics": nic_arguments(body.get("nics") or []),
        "port": ports_to_map(body.get("ports") or []),
        "privileged": False,
        "hostname": body["hostname"],
        "storage": body.get("storage") or "",
        "tags": [body["name"]],
    }


def container_view(arguments: dict[str, Any], running: bool, record: Mapping[str, Any] | None) -> Container:
    """
    A ``Container`` from what the node reports (``corex.list`` arguments),
    completed by what only the creator knew (``record``: the create body).
    Without a record, the filesystems are read back from the mounts.
    """
    if record is None:
        record = {"filesystems": filesystems_from_mounts(arguments.get("mount"))}
    view: Container = {
        "status": "running" if running else "halted",
        "hostname": arguments.get("hostname") or record.get("hostname", ""),
        "flist": arguments.get("root") or record.get("flist", ""),
        "initprocesses": record.get("initProcesses", []),
        "filesystems": record.get("filesystems", []),
        "nics": nics_from_arguments(arguments["nics"]) if "nics" in arguments else record.get("nics", []),
        "hostNetworking": bool(arguments.get("host_network", record.get("hostNetworking", False))),
        "ports": ports_from_map(arguments["port"]) if "port" in arguments else record.get("ports", []),
        "storage": arguments.get("storage") or record.get("storage", ""),
    }
    zerotier = next((n.get("id") for n in arguments.get("nics") or [] if n.get("type") == "zerotier"), "")
    if zerotier:
        view["zerotier"] = zerotier
    return view


def container_list_item(name: str, view: Container) -> ContainerListItem:
    return {"name": name, "hostname": view["hostname"], "flist": view["flist"], "status": view["status"]}


def container_record(name: str, arguments: dict[str, Any]) -> CreateContainer:
    """A create body for a running container nobody here created (the seed)."""
    view = container_view(arguments, True, None)
    return {"name": name, "hostname": view["hostname"], "flist": view["flist"],
            "initProcesses": [], "filesystems": view["filesystems"], "nics": view["nics"],
            "hostNetworking": view["hostNetworking"], "ports": view["ports"],
            "storage": view["storage"]}


def listed_containers(listing: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The running containers of a ``corex.list`` answer by id: each id and its create arguments."""
    found = [(int(key), ((entry or {}).get("container") or {}).get("arguments") or {})
             for key, entry in listing.items()]
    return sorted(found, key=lambda item: item[0])


def container_tagged(listing: dict[str, Any], name: str) -> tuple[int, dict[str, Any]] | None:
    """
    The running container of a ``corex.list`` answer tagged ``name`` (the
    first by id, as the original picked it): its id and create arguments.
    """
    for container_id, arguments in listed_containers(listing):
        if name in (arguments.get("tags") or []):
            return container_id, arguments
    return None


def container_names(listing: dict[str, Any]) -> list[str]:
    """The name (first tag) of each running container of a ``corex.list`` answer."""
    names: list[str] = []
    for _, arguments in listed_containers(listing):
        for tag in (arguments.get("tags") or [])[:1]:
            if tag not in names:
                names.append(tag)
    return names


# Bridges ---------------------------------------------------------------------------


def bridge_network(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ``BridgeCreate`` body as ``bridge.create``'s ``network`` argument."""
    return {"mode": "" if body["networkMode"] == "none" else body["networkMode"],
            "nat": body["nat"], "settings": body["setting"]}


def bridge_view(name: str, network: dict[str, Any] | None) -> Bridge:
    """A ``Bridge``: its name and the settings it was created with (empty when unknown)."""
    settings = (network or {}).get("settings") or {}
    return {"name": name, "status": "up",
            "setting": {"cidr": settings.get("cidr", ""), "start": settings.get("start", ""),
                        "end": settings.get("end", "")}}


# ZeroTier ---------------------------------------------------------------------------


def zerotier_list_item(nodeid: str, network: dict[str, Any]) -> ZerotierListItem:
    """A ``zerotier.list`` entry as a ``ZerotierListItem``."""
    return {"name": zerotier_name(nodeid, network["nwid"]), "nwid": network["nwid"],
            "status": network.get("status", ""), "type": str(network.get("type", "")).lower()}


def zerotier_view(network: dict[str, Any]) -> Zerotier:
    """A ``zerotier.list`` entry (its keys are ``Zerotier``'s, and ``id``) as a ``Zerotier``."""
    view = cast(Zerotier, {k: v for k, v in network.items() if k != "id"})
    view["type"] = str(network.get("type", "")).lower()
    view["routes"] = [
        {**route, "via": route.get("via") or ""} for route in network.get("routes") or []
    ]
    return view


def parse_zerotier_list(data: str) -> list[dict[str, Any]]:
    """``zerotier.list`` data (JSON after a leading newline) to a list."""
    text = data.strip()
    return json.loads(text) if text else []


# VMs ---------------------------------------------------------------------------------


def vm_info(infops: dict[str, Any]) -> VMInfo:
    """``kvm.infops`` statistics as a ``VMInfo``."""
    def ordered(group: str) -> list[dict[str, Any]]:
        values = infops.get(group) or {}
        return [values[k] for k in sorted(values, key=lambda k: int(k))]

    return {
        "cpu": [float(v.get("time", 0)) for v in ordered("vcpu")],
        "disks": [
            {"readIops": v.get("rdtimes", 0), "writeIops": v.get("wrtimes", 0),
             "readThroughput": v.get("rdbytes", 0), "writeThroughput": v.get("wrbytes", 0)}
            for v in ordered("block")
        ],
        "nics": [
            {"receivedPackets": v.get("rxpkts", 0), "transmittedPackets": v.get("txpkts", 0),
             "receivedThroughput": v.get("rxbytes", 0), "transmittedThroughput": v.get("txbytes", 0)}
            for v in ordered("net")
        ],
    }


def vm_media(disks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """VM disks (vdisk links) as ``kvm.create`` media."""
    return [{"url": f"nbd+unix:///{d['vdiskid']}?socket=/server.socket.{d['vdiskid']}",
             "iotune": {"totaliopssec": d.get("maxIOps", 0)}} for d in disks]


def vm_nics(nics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": n["type"], "id": n.get("id") or "", "hwaddr": n.get("macaddress") or ""} for n in nics]
