"""
The VMs family on AYS: a node's ``vm`` services; updates and migrations
are judged by the service, which AYS changes outside its runs.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE, NODE_ROLE
from plugins.ays.changes import Changes
from plugins.ays.lookups import Lookups, is_child
from plugins.ays.readiness import Guard, operation
from plugins.ays.runs import Write, Writer
from rpoold.contract.wire import VM, VMCreate, VMListItem, VMMigrate, VMUpdate
from rpoold.errors import BadRequest
from rpoold.interfaces import IVMs

#: Largest value of the VM template's UInt16 ``memory`` and ``cpu``.
UINT16_MAX = 65535

#: The VM template holds ``memory`` (MiB) in a UInt16: at most 64 GiB, less
#: than the contract allows (``cpu`` fits: KVM's limit is lower).
REQUEST_BOUNDS: dict[str, dict[str, int]] = {
    "VMCreate.memory": {"maximum": UINT16_MAX},
    "VMUpdate.memory": {"maximum": UINT16_MAX},
}


def check_sizes(body: VMCreate | VMUpdate) -> None:
    """
    :raises BadRequest: ``memory`` or ``cpu`` beyond what the template holds.
    """
    for key in ("memory", "cpu"):
        if int(body[key]) > UINT16_MAX:
            raise BadRequest(f"field '{key}' must be at most {UINT16_MAX} (AYS vm template)")


@implementer(IVMs)
class VMs:
    """
    ``IVMs``' operations.

    :param guarded: the readiness guard.
    :param lookups: the service lookups.
    :param changes: the shared writes.
    :param writer: the write sequence (updates and migrations).
    """

    def __init__(self, guarded: Guard, lookups: Lookups, changes: Changes, writer: Writer) -> None:
        self.guarded = guarded
        self.lookups = lookups
        self.changes = changes
        self.writer = writer

    async def _vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        return await self.lookups.on_node("vm", vmid, nodeid, "vm")

    @operation
    async def list_vms(self, nodeid: str) -> list[VMListItem]:
        await self.lookups.node(nodeid)
        items = await self.lookups.children("vm", NODE, nodeid, ("status",))
        return [views.vm_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def create_vm(self, nodeid: str, body: VMCreate) -> None:
        check_sizes(body)
        await self.lookups.node(nodeid)
        await self.changes.create("vm", body["id"], blueprints.vm(nodeid, body), "a vm with id")

    @operation
    async def delete_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm(nodeid, vmid)
        await self.changes.act("vm", vmid, "stop", verb="delete", then_forget="vm")

    @operation
    async def get_vm(self, nodeid: str, vmid: str) -> VM:
        return views.vm(vmid, (await self._vm(nodeid, vmid)).get("data") or {})

    @operation
    async def update_vm(self, nodeid: str, vmid: str, body: VMUpdate) -> None:
        check_sizes(body)
        data = (await self._vm(nodeid, vmid)).get("data") or {}
        current = views.vm(vmid, data)
        wanted = blueprints.vm_settings(body)
        if ((wanted["cpu"], wanted["memory"]) != (current["cpu"], current["memory"])
                and current["status"] != "halted"):
            raise BadRequest(f"vm '{vmid}' must be halted to change cpu or memory")
        if all(current[k] == wanted[k] for k in ("cpu", "memory", "nics", "disks")):
            return
        write = Write("vm", vmid, "update", blueprints.vm_update(vmid, body))
        await self.writer.post_alone(write)

        def applied(now: dict[str, Any]) -> bool:
            view = views.vm(vmid, now)
            return all(view[k] == wanted[k] for k in ("cpu", "memory", "nics", "disks"))

        await self.writer.wait_for_data("vm", vmid, applied, f"the update of vm '{vmid}'")

    async def _vm_action(self, nodeid: str, vmid: str, action: str,
                         needs: str | None = None) -> None:
        data = (await self._vm(nodeid, vmid)).get("data") or {}
        status = data.get("status") or ""
        if needs is not None and status != needs:
            raise BadRequest(f"vm '{vmid}' is {status}, not {needs}")
        await self.changes.act("vm", vmid, action)

    @operation
    async def start_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm_action(nodeid, vmid, "start")

    @operation
    async def stop_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm_action(nodeid, vmid, "stop")

    @operation
    async def pause_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm_action(nodeid, vmid, "pause", needs="running")

    @operation
    async def resume_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm_action(nodeid, vmid, "resume", needs="paused")

    @operation
    async def shutdown_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm_action(nodeid, vmid, "shutdown")

    @operation
    async def migrate_vm(self, nodeid: str, vmid: str, body: VMMigrate) -> None:
        await self._vm(nodeid, vmid)
        target = body["nodeid"]
        await self.lookups.node(target)
        if target == nodeid:
            return
        write = Write("vm", vmid, "migrate", blueprints.vm_migrate(vmid, target))
        await self.writer.post_alone(write)

        def arrived(service: dict[str, Any]) -> bool:
            status = (service.get("data") or {}).get("status")
            return is_child(service, NODE_ROLE, target) and status != "migrating"

        await self.writer.wait_for_service(
            "vm", vmid, arrived, f"the migration of vm '{vmid}' to node '{target}'")
