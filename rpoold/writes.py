"""
What each write of the contract changes: the resource it acts on, the
events a success makes, and whether its operation goes on after the
backend call (a target state ``rpoold.followers`` follows).

The writes are the contract's operations (``types.json``); this module
only says, by operation name, which event each makes and which end each
waits for.  ``tests/test_operations.py`` checks that every write is named
here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rpoold.contract import Operation

#: The event type a write's success makes, by operation name (``None``: none,
#: its change is not one of the pool's: a signal, a file, a process).
EVENT_OF_WRITE: dict[str, str | None] = {
    "DeleteNode": "node.status",
    "RebootNode": None,  # the node's own node.status events tell it (away, back)
    "KillAllNodeJobs": "job.ended",
    "KillNodeJob": "job.ended",
    "KillNodeProcess": None,
    "CreateBridge": "bridge.created",
    "DeleteBridge": "bridge.deleted",
    "CreateStoragePool": "storagepool.created",
    "DeleteStoragePool": "storagepool.deleted",
    "CreateStoragePoolDevices": "storagepool.changed",
    "DeleteStoragePoolDevice": "storagepool.changed",
    "CreateFilesystem": "filesystem.created",
    "DeleteFilesystem": "filesystem.deleted",
    "CreateSnapshot": "snapshot.created",
    "DeleteFilesystemSnapshot": "snapshot.deleted",
    "RollbackFilesystemSnapshot": "filesystem.changed",
    "JoinZerotier": "zerotier.created",
    "ExitZerotier": "zerotier.deleted",
    "CreateContainer": "container.created",
    "DeleteContainer": "container.deleted",
    "StartContainer": "container.started",
    "StopContainer": "container.stopped",
    "KillAllContainerJobs": "job.ended",
    "SendSignalToJob": None,
    "KillContainerJob": "job.ended",
    "StartContainerProcess": "job.started",
    "KillContainerProcess": None,
    "SendSignalToProcess": None,
    "FileUpload": None,
    "FileDelete": None,
    "CreateVM": None,  # vm.state, as the follower sees the states
    "DeleteVM": "vm.state",
    "UpdateVM": "vm.state",
    "StartVM": None,
    "StopVM": None,
    "PauseVM": None,
    "ResumeVM": None,
    "ShutdownVM": None,
    "MigrateVM": None,
    "DeployNewCluster": "storagecluster.created",
    "KillCluster": "storagecluster.deleted",
    "CreateNewVdisk": "vdisk.created",
    "DeleteVdisk": "vdisk.deleted",
    "ResizeVdisk": "vdisk.changed",
    "RollbackVdisk": "vdisk.changed",
}

#: The state a VM's write ends in (its operation follows the VM until then).
VM_TARGET: dict[str, str] = {
    "CreateVM": "running",
    "StartVM": "running",
    "StopVM": "halted",
    "ShutdownVM": "halted",
    "PauseVM": "paused",
    "ResumeVM": "running",
    "MigrateVM": "running",
}


def _fill(template: str, params: Mapping[str, str], body: Any) -> str | None:
    """A path template with its parameters (and ``{body.x}``), or ``None`` if one is unknown."""
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        key = match.group(1)
        if key.startswith("body."):
            if isinstance(body, Mapping) and key[5:] in body:
                return str(body[key[5:]])
        elif key in params:
            return str(params[key])
        missing = True
        return ""

    filled = re.sub(r"{([^}]+)}", substitute, template)
    return None if missing else filled


def resource_of(op: Operation, params: Mapping[str, str], body: Any) -> str:
    """
    The path of the resource a write acts on: what it creates (its
    ``Location``, when the request says it), else its path without an
    action's last word (``/start``, ``/reboot``, ``/devices``, ...).
    """
    if op.location is not None:
        created = _fill(op.location, params, body)
        if created is not None:
            return created
    path = _fill(op.path, params, body) or op.path
    last = op.path.rsplit("/", 1)[-1]
    if op.method == "POST" and not last.startswith("{") and path.count("/") > 1:
        return path.rsplit("/", 1)[0]
    return path


def change_events(op: Operation, params: Mapping[str, str], body: Any, resource: str,
                  location: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    """:returns: ``(type, resource, data)`` of each event a success of ``op`` makes."""
    kind = EVENT_OF_WRITE.get(op.name)
    if kind is None:
        return []
    data: dict[str, Any] = {}
    if op.name == "DeleteNode":
        data["status"] = "deleted"
    elif op.name in ("KillNodeJob", "KillContainerJob"):
        data["state"] = "killed"
    elif op.name in ("KillAllNodeJobs", "KillAllContainerJobs"):
        data["state"] = "killed"
        data["all"] = True
    elif op.name == "StartContainerProcess":
        resource = location or resource
        data["state"] = "running"
    elif op.name == "DeleteVM":
        data["state"] = "deleted"
    elif op.name == "UpdateVM":
        data["state"] = "updated"
    elif op.name == "RollbackFilesystemSnapshot":
        data["snapshot"] = params.get("snapshotname", "")
        resource = resource.rsplit("/snapshots/", 1)[0]
    elif op.name == "DeployNewCluster" and isinstance(body, Mapping):
        data["nodes"] = list(body.get("nodes") or [])
    return [(kind, resource, data)]


def target_of(op: Operation, params: Mapping[str, str], body: Any,
              location: str | None) -> dict[str, Any] | None:
    """
    The end a write's operation waits for after its backend call (a spec
    for ``rpoold.followers.Followers``), or ``None`` when the call is the
    end.
    """
    if op.name in VM_TARGET:
        nodeid, vmid = params.get("nodeid", ""), params.get("vmid", "")
        spec: dict[str, Any] = {"kind": "vm", "nodeid": nodeid, "target": VM_TARGET[op.name]}
        if op.name == "CreateVM" and isinstance(body, Mapping):
            vmid = str(body.get("id", ""))
        if op.name == "MigrateVM" and isinstance(body, Mapping):
            spec["from"] = nodeid
            spec["nodeid"] = str(body.get("nodeid", nodeid))
        spec["vmid"] = vmid
        return spec
    if op.name == "RebootNode":
        return {"kind": "reboot", "nodeid": params.get("nodeid", "")}
    if op.name == "DeployNewCluster" and isinstance(body, Mapping):
        return {"kind": "cluster", "label": str(body.get("label", ""))}
    if op.name == "StartContainerProcess" and location:
        return {"kind": "job", "nodeid": params.get("nodeid", ""),
                "containername": params.get("containername", ""), "jobid": location.rsplit("/", 1)[-1]}
    return None
