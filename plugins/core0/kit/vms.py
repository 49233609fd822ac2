"""
Virtual machines (``IVMs``, ``IVMInfo``): a VM record (what was asked:
cpu, memory, nics, disks, cloud-init, and the status with its passing
states, ``node_records.VM``), and on the node a KVM domain named after the
VM id while it runs (``kvm.*`` commands).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit import node_records
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
from rpoold.contract.wire import VM, PoolVMListItem, VMCreate, VMInfo, VMListItem, VMMigrate, VMUpdate
from rpoold.errors import BadRequest, Conflict, NotFound
from rpoold.interfaces import IVMInfo, IVMs
from rpoold.listing import PoolListing
from rpoold.nodes import ICommandClient
from rpoold.records import IRecords

log = Logger()

#: Passing states that end in ``running``.
COMING_UP = ("deploying", "starting", "migrating")


@implementer(IVMs, IVMInfo)
class VMs:
    """
    ``IVMs`` and ``IVMInfo`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param records: the backend's records (the VMs).
    :param clock: an ``IReactorTime``.
    :param transition_seconds: how long a VM stays in a passing state
        such as ``halting``.
    :param node_timeout: seconds each node has to answer its part of the
        pool-wide list.
    """

    def __init__(self, nodes: NodeDirectory[Any], records: IRecords, clock: Any,
                 transition_seconds: float, node_timeout: float = float("inf")) -> None:
        self.nodes = nodes
        self.records = records
        self.clock = clock
        self.transition_seconds = transition_seconds
        self.node_timeout = node_timeout

    # Records -------------------------------------------------------------------------------

    async def _vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        vm = await node_records.of_node(self.records, node_records.VM, nodeid, vmid)
        if vm is None:
            raise NotFound(f"vm '{vmid}' does not exist on node '{nodeid}'")
        return vm

    async def _save(self, vm: dict[str, Any]) -> None:
        await self.records.put(node_records.VM, vm["id"], vm)

    async def _set_status(self, vm: dict[str, Any], status: str) -> None:
        vm["status"] = status
        await self._save(vm)

    def _later(self, vm: dict[str, Any], states: tuple[str, ...],
               then: Callable[[dict[str, Any]], Coroutine[Any, Any, None]]) -> None:
        """
        After ``transition_seconds``, ``then(vm)`` if the same VM (not one
        made since under its id) is still in one of ``states``.
        """
        instance = vm["instance"]

        async def run() -> None:
            now = await self.records.get(node_records.VM, vm["id"])
            if now is not None and now.get("instance") == instance and now["status"] in states:
                await then(now)

        def fire() -> None:
            ensureDeferred(run()).addErrback(lambda failure: log.failure("vm transition failed", failure))

        self.clock.callLater(self.transition_seconds, fire)

    def _settle(self, vm: dict[str, Any], states: tuple[str, ...]) -> None:
        """
        The VM is ``running`` after a moment, if it is still in one of
        ``states`` (and nothing else changed it meanwhile: compare and set).
        """
        async def running(now: dict[str, Any]) -> None:
            await self.records.replace(node_records.VM, now["id"], now, {**now, "status": "running"})

        self._later(vm, states, running)

    async def resume(self) -> None:
        """
        At start: the VMs whose record is in a passing state (the daemon
        stopped, or died, before the moment passed) go on to the state they
        were passing to, after ``transition_seconds``, as if nothing had
        happened: ``running`` after ``deploying``, ``starting`` and
        ``migrating``, ``halted`` after ``halting``.  Where daemons share the
        store, what another one finishes first is left alone (the state is
        compared again before it changes).
        """
        for _, vm in await self.records.list(node_records.VM):
            if vm.get("status") in COMING_UP:
                self._settle(vm, (vm["status"],))
            elif vm.get("status") == "halting":
                self._later(vm, ("halting",), self._shut_down)

    # Domains --------------------------------------------------------------------------------

    @staticmethod
    async def _domain(client: ICommandClient, name: str) -> dict[str, Any] | None:
        for domain in await client.call("kvm.list") or []:
            if domain.get("name") == name:
                result: dict[str, Any] = domain
                return result
        return None

    async def _domain_uuid(self, client: ICommandClient, vmid: str) -> str:
        domain = await self._domain(client, vmid)
        if domain is None:
            raise NotFound(f"no running vm '{vmid}' on node '{client.node}'")
        return str(domain["uuid"])

    async def _boot(self, client: ICommandClient, vm: dict[str, Any]) -> None:
        """Create the domain; the vm is ``running`` after a moment."""
        if await self._domain(client, vm["id"]) is None:
            await client.call("kvm.create", {
                "name": vm["id"], "media": shapes.vm_media(vm["disks"]), "cpu": vm["cpu"],
                "memory": vm["memory"], "nics": shapes.vm_nics(vm["nics"])})
        self._settle(vm, COMING_UP)

    async def _halt(self, client: ICommandClient, vm: dict[str, Any], command: str = "kvm.destroy") -> None:
        domain = await self._domain(client, vm["id"])
        if domain is not None:
            await client.call(command, {"uuid": domain["uuid"]})
        await self._set_status(vm, "halted")

    # VMs ----------------------------------------------------------------------------------------

    async def list_vms(self, nodeid: str) -> list[VMListItem]:
        await self.nodes.client(nodeid)
        return [{"id": vm["id"], "status": vm["status"]}
                for _, vm in await node_records.on_node(self.records, node_records.VM, nodeid)]

    async def list_pool_vms(self, node: str) -> PoolListing[PoolVMListItem]:
        async def of_node(nodeid: str) -> list[PoolVMListItem]:
            return [{"node": nodeid, **item} for item in await self.list_vms(nodeid)]

        return await self.nodes.fan_out(node, of_node, self.clock, self.node_timeout)

    async def create_vm(self, nodeid: str, body: VMCreate) -> None:
        client = await self.nodes.client(nodeid)
        vm: dict[str, Any] = {
            "id": body["id"], "node": nodeid, "cpu": body["cpu"], "memory": body["memory"],
            "nics": body["nics"], "disks": body["disks"], "status": "deploying",
            "userCloudInit": body["userCloudInit"], "systemCloudInit": body["systemCloudInit"],
            "instance": uuid.uuid4().hex}
        # VM ids are unique in the pool: claimed atomically with the whole record.
        if not await self.records.add(node_records.VM, body["id"], vm):
            raise Conflict(f"a vm with id '{body['id']}' exists")
        try:
            await self._boot(client, vm)
        except CommandFailed as e:
            await self.records.delete(node_records.VM, body["id"])
            raise refused_as_bad_request(e) from None
        except BaseException:
            await self.records.delete(node_records.VM, body["id"])
            raise

    async def delete_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.nodes.client(nodeid)
        await self._halt(client, await self._vm(nodeid, vmid))
        await self.records.delete(node_records.VM, vmid)

    async def get_vm(self, nodeid: str, vmid: str) -> VM:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        domain = await self._domain(client, vmid)
        vnc = int(domain.get("vnc", -1)) if domain is not None and vm["status"] != "halted" else -1
        return {"id": vm["id"], "status": vm["status"], "cpu": vm["cpu"], "memory": vm["memory"],
                "nics": vm["nics"], "disks": vm["disks"], "vnc": vnc}

    async def update_vm(self, nodeid: str, vmid: str, body: VMUpdate) -> None:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        if (body["cpu"], body["memory"]) != (vm["cpu"], vm["memory"]) and vm["status"] != "halted":
            raise BadRequest(f"vm '{vmid}' must be halted to change cpu or memory")
        vm.update({k: body[k] for k in ("cpu", "memory", "nics", "disks")})
        await self._save(vm)
        domain = await self._domain(client, vmid)
        if domain is None:
            return
        uuid_ = domain["uuid"]
        info = await client.call("kvm.info", {"uuid": uuid_}) or {}
        media, nics = shapes.vm_media(vm["disks"]), shapes.vm_nics(vm["nics"])
        for old in info.get("media") or []:
            if old not in media:
                await client.call("kvm.detach_disk", {"uuid": uuid_, "media": old})
        for new in media:
            if new not in (info.get("media") or []):
                await client.call("kvm.attach_disk", {"uuid": uuid_, "media": new})
        for old in info.get("nics") or []:
            if old not in nics:
                await client.call("kvm.remove_nic", {"uuid": uuid_, **old})
        for new in nics:
            if new not in (info.get("nics") or []):
                await client.call("kvm.add_nic", {"uuid": uuid_, **new})

    async def start_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        if vm["status"] in ("halted", "error"):
            await self._set_status(vm, "starting")
            await self._boot(client, vm)

    async def stop_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.nodes.client(nodeid)
        await self._halt(client, await self._vm(nodeid, vmid))

    async def pause_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        if vm["status"] != "running":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not running")
        await client.call("kvm.pause", {"uuid": await self._domain_uuid(client, vmid)})
        await self._set_status(vm, "paused")

    async def resume_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        if vm["status"] != "paused":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not paused")
        await client.call("kvm.resume", {"uuid": await self._domain_uuid(client, vmid)})
        await self._set_status(vm, "running")

    async def shutdown_vm(self, nodeid: str, vmid: str) -> None:
        await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        if vm["status"] in ("running", "paused"):
            await self._set_status(vm, "halting")
            self._later(vm, ("halting",), self._shut_down)

    async def _shut_down(self, vm: dict[str, Any]) -> None:
        """The end of ``halting``: the domain shut down, the VM ``halted``."""
        await self._halt(await self.nodes.client(vm["node"]), vm, "kvm.shutdown")

    async def migrate_vm(self, nodeid: str, vmid: str, body: VMMigrate) -> None:
        client = await self.nodes.client(nodeid)
        vm = await self._vm(nodeid, vmid)
        target = await self.nodes.client(body["nodeid"])
        if target.node == client.node:
            return
        domain = await self._domain(client, vmid)
        if domain is not None:
            _, address = await self.nodes.facts(target)
            await client.call("kvm.migrate", {"uuid": domain["uuid"],
                                              "desturi": f"qemu+ssh://{address}/system"})
            vm["status"] = "migrating"
        vm["node"] = target.node
        await self._save(vm)
        if domain is not None:
            self._settle(vm, ("migrating",))

    async def get_vm_info(self, nodeid: str, vmid: str) -> VMInfo:
        client = await self.nodes.client(nodeid)
        uuid_ = await self._domain_uuid(client, vmid)
        return shapes.vm_info(await client.call("kvm.infops", {"uuid": uuid_}) or {})
