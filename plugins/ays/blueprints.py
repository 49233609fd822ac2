"""
The AYS blueprints the resource pool posts, and their YAML text.

A blueprint is a mapping of ``<actor>__<instance>`` keys (the data of one
service) and an optional ``actions`` list.  The builders here take REST
request bodies (already validated, defaults filled) and return the
mapping; ``dump`` turns it into YAML with a real serializer in which every
string is a quoted YAML string, so a node id such as ``525400123456``, a
port map ``8080:80`` or a numeric-looking ZeroTier id stays a string for
whatever YAML parser AYS uses.

Only fields of the AYS templates' schemas are sent; fields the templates
compute themselves (a container's ``filesystems`` and ``bridges``, a VM's
``vdisks``, a filesystem's ``mountpoint``, a snapshot's ``path``) never
are, and a container NIC's ``hwaddr`` (not in the template) is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from plugins.ays import views
from rpoold import conventions
from rpoold.contract.wire import (
    BridgeCreate,
    ClusterCreate,
    ContainerNIC,
    CreateContainer,
    FilesystemCreate,
    NicLink,
    SnapshotCreate,
    StoragePoolCreate,
    VdiskCreate,
    VDiskLink,
    VMCreate,
    VMUpdate,
)

#: Actor (template) names, and the role each is listed and fetched under.
NODE = "node.g8os"
NODE_ROLE = "node"


@dataclass(frozen=True)
class Action:
    """One entry of a blueprint's ``actions`` block."""

    actor: str
    service: str
    action: str
    force: bool = True

    def entry(self) -> dict[str, Any]:
        return {"action": self.action, "actor": self.actor,
                "service": self.service, "force": self.force}

    def __str__(self) -> str:
        return f"{self.actor}!{self.service} {self.action}"


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing every string single-quoted."""


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")


_Dumper.add_representer(str, _quoted)


def dump(blueprint: dict[str, Any]) -> str:
    """The blueprint's YAML text."""
    return yaml.dump(blueprint, Dumper=_Dumper, default_flow_style=False,
                     sort_keys=False, allow_unicode=True, width=4096)


def service_key(actor: str, instance: str) -> str:
    return f"{actor}__{instance}"


def blueprint(services: dict[tuple[str, str], dict[str, Any]] | None = None,
              actions: list[Action] | None = None) -> dict[str, Any]:
    """
    :param services: data by ``(actor, instance)``.
    :param actions: the ``actions`` block (omitted when empty).
    """
    result: dict[str, Any] = {}
    for (actor, instance), data in (services or {}).items():
        result[service_key(actor, instance)] = data
    if actions:
        result["actions"] = [a.entry() for a in actions]
    return result


def actions_only(*actions: Action) -> dict[str, Any]:
    return blueprint(actions=list(actions))


# Per resource ----------------------------------------------------------------------------


def bridge(nodeid: str, body: BridgeCreate) -> dict[str, Any]:
    setting = body.get("setting") or {}
    data = {
        "node": nodeid,
        "hwaddr": body.get("hwaddr") or "",
        "networkMode": body["networkMode"],
        "nat": bool(body.get("nat")),
        "setting": {k: setting.get(k) or "" for k in ("cidr", "start", "end")},
    }
    return blueprint({("bridge", body["name"]): data},
                     [Action("bridge", body["name"], "install", force=False)])


def container_nic(nic: ContainerNIC) -> dict[str, Any]:
    """A REST container NIC for the template (``hwaddr`` dropped: not in its schema)."""
    return {"type": nic["type"], "id": nic.get("id") or "",
            "config": conventions.nic_config(nic.get("config"))}


def container_mounts(filesystems: list[str]) -> list[dict[str, str]]:
    """``"pool:fs"`` entries as template mounts (target ``/fs/<pool>/<fs>``)."""
    mounts = []
    for entry in filesystems:
        pool, _, name = entry.partition(":")
        mounts.append({"filesystem": name, "target": conventions.container_mount_target(pool, name)})
    return mounts


def container(nodeid: str, body: CreateContainer) -> dict[str, Any]:
    data = {
        "node": nodeid,
        "flist": body["flist"],
        "hostname": body["hostname"],
        "hostNetworking": bool(body.get("hostNetworking")),
        "storage": body.get("storage") or "",
        "ports": list(body.get("ports") or []),
        "nics": [container_nic(n) for n in body.get("nics") or []],
        "mounts": container_mounts(body.get("filesystems") or []),
        "initProcesses": [views.init_process(p) for p in body.get("initProcesses") or []],
    }
    return blueprint({("container", body["name"]): data},
                     [Action("container", body["name"], "install", force=False)])


def storage_pool(nodeid: str, body: StoragePoolCreate) -> dict[str, Any]:
    data = {
        "node": nodeid,
        "dataProfile": body["dataProfile"],
        "metadataProfile": body["metadataProfile"],
        "devices": [{"device": d, "partUUID": ""} for d in dict.fromkeys(body["devices"])],
    }
    return blueprint({("storagepool", body["name"]): data},
                     [Action("storagepool", body["name"], "install", force=False)])


def storage_pool_devices(pool: str, devices: list[dict[str, str]]) -> dict[str, Any]:
    """Re-post of a pool with its complete new device list (no actions)."""
    return blueprint({("storagepool", pool): {
        "devices": [{"device": d["device"], "partUUID": d.get("partUUID") or ""} for d in devices],
    }})


def filesystem(pool: str, body: FilesystemCreate) -> dict[str, Any]:
    data = {
        "storagePool": pool,
        "name": body["name"],
        "quota": int(body.get("quota") or 0),
        "readOnly": bool(body.get("readOnly")),
    }
    return blueprint({("filesystem", body["name"]): data},
                     [Action("filesystem", body["name"], "install", force=False)])


def snapshot(filesystem_name: str, body: SnapshotCreate) -> dict[str, Any]:
    data = {"filesystem": filesystem_name, "name": body["name"]}
    return blueprint({("fssnapshot", body["name"]): data},
                     [Action("fssnapshot", body["name"], "install", force=False)])


def zerotier_instance(nodeid: str, nwid: str) -> str:
    return conventions.zerotier_name(nodeid, nwid)


def zerotier(nodeid: str, nwid: str) -> dict[str, Any]:
    instance = zerotier_instance(nodeid, nwid)
    return blueprint({("zerotier", instance): {"node": nodeid, "nwid": nwid}},
                     [Action("zerotier", instance, "install", force=True)])


def vm_nic(nic: NicLink) -> dict[str, Any]:
    return {"id": nic.get("id") or "", "type": nic["type"],
            "macaddress": nic.get("macaddress") or ""}


def vm_disk(disk: VDiskLink) -> dict[str, Any]:
    return {"vdiskid": disk["vdiskid"], "maxIOps": int(disk["maxIOps"])}


def cloud_init(value: Any) -> str:
    """A cloud-init value as the JSON text the template stores (``null`` when absent)."""
    return json.dumps(value, sort_keys=True)


def vm(nodeid: str, body: VMCreate) -> dict[str, Any]:
    data = {
        "node": nodeid,
        **vm_settings(body),
        "userCloudInit": cloud_init(body.get("userCloudInit")),
        "systemCloudInit": cloud_init(body.get("systemCloudInit")),
    }
    return blueprint({("vm", body["id"]): data},
                     [Action("vm", body["id"], "install", force=False)])


def vm_update(vmid: str, body: VMUpdate) -> dict[str, Any]:
    """Re-post of a VM's sizing and links (no actions)."""
    return blueprint({("vm", vmid): vm_settings(body)})


def vm_settings(body: VMCreate | VMUpdate) -> dict[str, Any]:
    return {
        "memory": int(body["memory"]),
        "cpu": int(body["cpu"]),
        "nics": [vm_nic(n) for n in body.get("nics") or []],
        "disks": [vm_disk(d) for d in body.get("disks") or []],
    }


def vm_migrate(vmid: str, target: str) -> dict[str, Any]:
    """
    The VM's new node, without a ``migrate`` action: AYS's ``processChange``
    migrates on a changed node, and scheduling ``migrate`` as well would
    migrate twice (Q12).
    """
    return blueprint({("vm", vmid): {"node": target}})


def storage_cluster(body: ClusterCreate, nodes: list[str]) -> dict[str, Any]:
    data = {
        "label": body["label"],
        "nrServer": int(body["servers"]),
        "diskType": body["driveType"],
        "nodes": list(nodes),
    }
    return blueprint({("storage_cluster", body["label"]): data},
                     [Action("storage_cluster", body["label"], "install", force=False)])


def vdisk(body: VdiskCreate) -> dict[str, Any]:
    data: dict[str, Any] = {
        "size": int(body["size"]),
        "blocksize": int(body["blocksize"]),
        "type": body["type"],
        "readOnly": bool(body.get("readOnly")),
        "templateVdisk": body.get("templatevdisk") or "",
        "storageCluster": body["storagecluster"],
    }
    if body.get("tlogStoragecluster"):
        data["tlogStoragecluster"] = body["tlogStoragecluster"]
    return blueprint({("vdisk", body["id"]): data},
                     [Action("vdisk", body["id"], "install", force=False)])


def vdisk_resize(vdiskid: str, size: int) -> dict[str, Any]:
    return blueprint({("vdisk", vdiskid): {"size": int(size)}})
