"""
Virtual machines (``IVMs``, ``IVMInfo``), here and in the mock (which runs
the commands on its model): a VM record (what was asked: cpu, memory,
nics, disks, cloud-init, and the status with its passing states) in
memory, and on the node a KVM domain named after the VM id while it runs
(``kvm.*`` commands).  Records are lost when rpoold restarts; the domains
stay on their nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from plugins.core0 import shapes
from plugins.core0.access import CommandClient, CommandFamilies, deferred
from plugins.core0.protocol import CommandFailed, refused_as_bad_request
from rpoold.errors import BadRequest, Conflict, NotFound

log = Logger()


class VMFamilies(CommandFamilies):
    """VMs and their statistics."""

    # Lookups ------------------------------------------------------------------------------------

    def _vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        vm = self.vms.get((nodeid, vmid))
        if vm is None:
            raise NotFound(f"vm '{vmid}' does not exist on node '{nodeid}'")
        return vm

    @staticmethod
    async def _domain(client: CommandClient, name: str) -> dict[str, Any] | None:
        for domain in await client.call("kvm.list") or []:
            if domain.get("name") == name:
                result: dict[str, Any] = domain
                return result
        return None

    def _later(self, f: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
        def run() -> None:
            outcome = f()
            if outcome is not None:
                ensureDeferred(outcome).addErrback(
                    lambda failure: log.failure("vm transition failed", failure))

        self.reactor.callLater(self.transition_seconds, run)

    async def _boot(self, client: CommandClient, vm: dict[str, Any]) -> None:
        """Create the domain; the vm is ``running`` after a moment."""
        if await self._domain(client, vm["id"]) is None:
            await client.call("kvm.create", {
                "name": vm["id"], "media": shapes.vm_media(vm["disks"]), "cpu": vm["cpu"],
                "memory": vm["memory"], "nics": shapes.vm_nics(vm["nics"])})

        def settle() -> None:
            if vm["status"] in ("deploying", "starting", "migrating"):
                vm["status"] = "running"

        self._later(settle)

    async def _halt(self, client: CommandClient, vm: dict[str, Any], command: str = "kvm.destroy") -> None:
        domain = await self._domain(client, vm["id"])
        if domain is not None:
            await client.call(command, {"uuid": domain["uuid"]})
        vm["status"] = "halted"

    # VMs ------------------------------------------------------------------------------------------

    @deferred
    async def list_vms(self, nodeid: str) -> list[dict[str, Any]]:
        await self.client(nodeid)
        return [{"id": vmid, "status": vm["status"]} for (n, vmid), vm in self.vms.items() if n == nodeid]

    @deferred
    async def create_vm(self, nodeid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        for (_, vmid) in self.vms:
            if vmid == body["id"]:
                raise Conflict(f"a vm with id '{vmid}' exists")
        vm = {k: body[k] for k in ("id", "cpu", "memory", "nics", "disks")}
        vm.update(status="deploying", userCloudInit=body["userCloudInit"],
                  systemCloudInit=body["systemCloudInit"])
        self.vms[(nodeid, body["id"])] = vm
        try:
            await self._boot(client, vm)
        except CommandFailed as e:
            del self.vms[(nodeid, body["id"])]
            raise refused_as_bad_request(e) from None
        except BaseException:
            self.vms.pop((nodeid, body["id"]), None)
            raise

    @deferred
    async def delete_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        await self._halt(client, self._vm(nodeid, vmid))
        del self.vms[(nodeid, vmid)]

    @deferred
    async def get_vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        domain = await self._domain(client, vmid)
        vnc = int(domain.get("vnc", -1)) if domain is not None and vm["status"] != "halted" else -1
        return {**{k: vm[k] for k in ("id", "status", "cpu", "memory", "nics", "disks")}, "vnc": vnc}

    @deferred
    async def update_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        if (body["cpu"], body["memory"]) != (vm["cpu"], vm["memory"]) and vm["status"] != "halted":
            raise BadRequest(f"vm '{vmid}' must be halted to change cpu or memory")
        vm.update({k: body[k] for k in ("cpu", "memory", "nics", "disks")})
        domain = await self._domain(client, vmid)
        if domain is None:
            return
        uuid = domain["uuid"]
        info = await client.call("kvm.info", {"uuid": uuid}) or {}
        media, nics = shapes.vm_media(vm["disks"]), shapes.vm_nics(vm["nics"])
        for old in info.get("media") or []:
            if old not in media:
                await client.call("kvm.detach_disk", {"uuid": uuid, "media": old})
        for new in media:
            if new not in (info.get("media") or []):
                await client.call("kvm.attach_disk", {"uuid": uuid, "media": new})
        for old in info.get("nics") or []:
            if old not in nics:
                await client.call("kvm.remove_nic", {"uuid": uuid, **old})
        for new in nics:
            if new not in (info.get("nics") or []):
                await client.call("kvm.add_nic", {"uuid": uuid, **new})

    @deferred
    async def start_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        if vm["status"] in ("halted", "error"):
            vm["status"] = "starting"
            await self._boot(client, vm)

    @deferred
    async def stop_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        await self._halt(client, self._vm(nodeid, vmid))

    async def _domain_uuid(self, client: CommandClient, vmid: str) -> str:
        domain = await self._domain(client, vmid)
        if domain is None:
            raise NotFound(f"no running vm '{vmid}' on node '{client.node}'")
        return str(domain["uuid"])

    @deferred
    async def pause_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        if vm["status"] != "running":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not running")
        await client.call("kvm.pause", {"uuid": await self._domain_uuid(client, vmid)})
        vm["status"] = "paused"

    @deferred
    async def resume_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        if vm["status"] != "paused":
            raise BadRequest(f"vm '{vmid}' is {vm['status']}, not paused")
        await client.call("kvm.resume", {"uuid": await self._domain_uuid(client, vmid)})
        vm["status"] = "running"

    @deferred
    async def shutdown_vm(self, nodeid: str, vmid: str) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        if vm["status"] in ("running", "paused"):
            vm["status"] = "halting"

            async def halt() -> None:
                if vm["status"] == "halting":
                    await self._halt(client, vm, "kvm.shutdown")

            self._later(halt)

    @deferred
    async def migrate_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        client = await self.client(nodeid)
        vm = self._vm(nodeid, vmid)
        target = await self.client(body["nodeid"])
        if target.node == client.node:
            return
        domain = await self._domain(client, vmid)
        if domain is not None:
            _, address = await self.node_facts(target)
            await client.call("kvm.migrate", {"uuid": domain["uuid"],
                                              "desturi": f"qemu+ssh://{address}/system"})
        del self.vms[(nodeid, vmid)]
        self.vms[(target.node, vmid)] = vm
        if domain is not None:
            vm["status"] = "migrating"

            def settle() -> None:
                if vm["status"] == "migrating":
                    vm["status"] = "running"

            self._later(settle)

    @deferred
    async def get_vm_info(self, nodeid: str, vmid: str) -> dict[str, Any]:
        client = await self.client(nodeid)
        uuid = await self._domain_uuid(client, vmid)
        return shapes.vm_info(await client.call("kvm.infops", {"uuid": uuid}) or {})
