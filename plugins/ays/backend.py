"""
The AYS backend: the resource families the original server ran through the
AYS orchestrator (nodes, bridges, storage pools, filesystems, ZeroTier,
containers, VMs, storage clusters, vdisks).

Reads list or get AYS services; writes post a blueprint and wait for the
run it starts (``plugins.ays.runs``).  The backend is a Twisted service: at
start it makes sure the AYS repository exists, retrying with backoff for as
long as AYS does not answer; until then every operation answers 503 and the
families other backends serve are unaffected.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    FirstError,
    ensureDeferred,
    gatherResults,
)
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from plugins.ays import blueprints, views
from plugins.ays.blueprints import NODE, NODE_ROLE, Action
from plugins.ays.client import AysClient, RepositoryMissing
from plugins.ays.registry import AysNodeRegistry
from plugins.ays.runs import Timing, Write, Writer
from plugins.core0 import shapes
from rpoold import conventions
from rpoold.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    Conflict,
    NotFound,
    RpoolError,
    ServiceUnavailable,
)
from rpoold.interfaces import (
    IBridges,
    IContainers,
    IFilesystems,
    IHealthCheck,
    INodes,
    IStorageClusters,
    IStoragePools,
    IVdisks,
    IVMs,
    IZerotiers,
)
from rpoold.nodes import INodeRegistryProvider

log = Logger()

#: Largest value of the VM template's UInt16 ``memory`` and ``cpu``.
UINT16_MAX = 65535

#: A ZeroTier network id: 16 hexadecimal digits.
ZEROTIER_NWID = re.compile(r"^[0-9a-fA-F]{16}$")


def operation(
    f: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Deferred[Any]]:
    """
    An AYS operation: refused with 503 until AYS is ready, and a lost
    repository sends the backend back to its start-up checks.
    """

    @functools.wraps(f)
    def wrapper(self: AysBackend, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return ensureDeferred(self.guarded(f(self, *args, **kwargs)))

    return wrapper


def _same_role(a: str, b: str) -> bool:
    return a.split(".")[0] == b.split(".")[0]


def disk_in_use(disk: dict[str, Any]) -> bool:
    """A ``disk.list`` disk with a mounted or formatted partition."""
    return any(
        part.get("mountpoint") or part.get("fstype")
        for part in disk.get("children") or [] if isinstance(part, dict)
    )


@implementer(
    INodes, IBridges, IStoragePools, IFilesystems, IZerotiers, IContainers, IVMs,
    IStorageClusters, IVdisks, IHealthCheck, IService, INodeRegistryProvider,
)
class AysBackend(Service):
    """
    :param client: the AYS client (its repository is the one served).
    :param clock: the reactor.
    :param timing: run timeout and poll pacing.
    :param agents: an ``INodeAgents``: the nodes' core0 agents, asked for
        their disks (pre-checks of storage pool devices and storage
        clusters) and for the containers they run; without it the checks
        are left to AYS and container status is AYS's alone.
    :param live_status_timeout: seconds to wait for a node's container
        list before showing AYS's status instead (0: never ask).
    :param retry_interval: first pause between two start-up attempts.
    :param retry_max_interval: longest pause between them.
    :param health_timeout: seconds the health check gives AYS to answer.
    :param connections: the HTTP connection pool of ``client`` (closed
        when the service stops), if any.
    """

    name = "ays"

    def __init__(
        self,
        client: AysClient,
        clock: Any,
        timing: Timing,
        agents: Any = None,
        live_status_timeout: float = 1.0,
        retry_interval: float = 0.2,
        retry_max_interval: float = 10.0,
        registry_ttl: float = 10.0,
        health_timeout: float = 2.0,
        connections: Any = None,
    ) -> None:
        self.client = client
        self.health_timeout = health_timeout
        self.connections = connections
        self.clock = clock
        self.timing = timing
        self.writer = Writer(client, clock, timing)
        self.agents = agents
        self.live_status_timeout = live_status_timeout
        self.retry_interval = retry_interval
        self.retry_max_interval = retry_max_interval
        self.registry_ttl = registry_ttl
        self.ready = False
        self.problem = "not started yet"
        self._connecting: Deferred[None] | None = None
        self._registry: AysNodeRegistry | None = None

    def node_registry(self) -> AysNodeRegistry:
        """The core0 backend's node source: the nodes of AYS (``INodeRegistryProvider``)."""
        if self._registry is None:
            self._registry = AysNodeRegistry(self.client, self.clock, self.guarded, self.delete_node,
                                             ttl=self.registry_ttl)
        return self._registry

    # Start-up -------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._connect_soon()

    def stopService(self) -> Deferred[None]:
        """
        Stop the start-up attempts and the runs followed in the
        background, close the connections to AYS and to the nodes.

        :returns: Deferred firing once they are closed.
        """
        if self._connecting is not None:
            self._connecting.cancel()
        self.writer.stop()
        closing: list[Deferred[Any]] = []
        if self.agents is not None:
            closing.append(self.agents.close())
        if self.connections is not None:
            closing.append(self.connections.closeCachedConnections())
        super().stopService()

        def closed(_: Any) -> None:
            log.info("ays: closed the connections to AYS and the nodes")

        return DeferredList(closing, consumeErrors=True).addCallback(closed)

    def _connect_soon(self) -> None:
        if self._connecting is not None or not self.running:
            return
        self._connecting = ensureDeferred(self._connect())

        def done(result: Any) -> None:
            self._connecting = None
            if isinstance(getattr(result, "value", None), CancelledError):
                return None
            return result

        self._connecting.addBoth(done)

    async def _connect(self) -> None:
        pause = self.retry_interval
        told = ""
        while True:
            try:
                await self.client.ping()
                created = await self.client.ensure_repository()
            except RpoolError as e:
                self.problem = e.message
                if e.message != told:
                    log.warn("AYS not ready, retrying: {problem}", problem=e.message)
                    told = e.message
                await deferLater(self.clock, pause, lambda: None)
                pause = min(pause * 2, self.retry_max_interval)
                continue
            self.ready = True
            self.problem = ""
            log.info("AYS at {url} ready; repository {repo} {how}",
                     url=self.client.url, repo=self.client.repository,
                     how="created" if created else "found")
            return

    async def guarded(self, work: Coroutine[Any, Any, Any]) -> Any:
        """
        Run ``work`` (a coroutine using the client) if AYS is ready.

        :raises ServiceUnavailable: AYS is not ready yet, or it lost the
            repository (the start-up checks then run again).
        """
        if not self.ready:
            work.close()
            raise ServiceUnavailable(
                f"AYS at {self.client.url} is not ready yet ({self.problem}); "
                "rpoold keeps trying"
            )
        try:
            return await work
        except RepositoryMissing:
            self.ready = False
            self.problem = f"repository '{self.client.repository}' is missing"
            self._connect_soon()
            raise

    def check_health(self) -> Deferred[dict[str, Any]]:
        """
        Ask AYS now whether it answers and knows the repository.

        :returns: Deferred firing within ``health_timeout`` seconds (twice
            at most: two requests), never failing, with ``ok`` (AYS
            answers, the repository exists and the backend finished its
            start-up), ``ays`` (the URL), ``repository``, ``runs`` (runs
            waited for, by state) and, when not ok, ``problem``.
        """
        return ensureDeferred(self._health())

    async def _health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"ok": False, "ays": self.client.url,
                                  "repository": self.client.repository}
        report["runs"] = dict(sorted(Counter(self.writer.runs.active().values()).items()))
        try:
            await self.client.ping(timeout=self.health_timeout)
            exists = await self.client.repository_exists(timeout=self.health_timeout)
        except RpoolError as e:
            return {**report, "problem": e.message}
        except Exception:
            log.failure("ays health check failed")
            return {**report, "problem": "the health check failed"}
        if not exists:
            return {**report, "problem": f"AYS does not know repository '{self.client.repository}'"}
        if not self.ready:
            return {**report, "problem": self.problem}
        return {**report, "ok": True}

    # Lookups --------------------------------------------------------------------------

    async def _service(self, role: str, name: str) -> dict[str, Any] | None:
        return await self.client.get_service(role, name)

    async def _existing(self, role: str, name: str, what: str) -> dict[str, Any]:
        """A service that must exist (else 404)."""
        service = await self._service(role, name)
        if service is None:
            raise NotFound(f"{what} '{name}' does not exist")
        return service

    async def _node(self, nodeid: str) -> dict[str, Any]:
        return await self._existing(NODE_ROLE, nodeid, "node")

    @staticmethod
    def _is_child(service: dict[str, Any], role: str, name: str) -> bool:
        parent = views.parent_of(service)
        return parent is not None and parent[1] == name and _same_role(parent[0], role)

    async def _child(self, role: str, name: str, parent_role: str, parent: str,
                     what: str, where: str) -> dict[str, Any]:
        """A service that must exist under the given parent (else 404)."""
        service = await self._service(role, name)
        if service is None or not self._is_child(service, parent_role, parent):
            raise NotFound(f"{what} '{name}' does not exist {where}")
        return service

    async def _on_node(self, role: str, name: str, nodeid: str, what: str) -> dict[str, Any]:
        service = await self._service(role, name)
        if service is None or not self._is_child(service, NODE_ROLE, nodeid):
            await self._node(nodeid)
            raise NotFound(f"{what} '{name}' does not exist on node '{nodeid}'")
        return service

    async def _pool(self, nodeid: str, pool: str) -> dict[str, Any]:
        return await self._on_node("storagepool", pool, nodeid, "storage pool")

    async def _filesystem(self, nodeid: str, pool: str, name: str) -> dict[str, Any]:
        await self._pool(nodeid, pool)
        return await self._child("filesystem", name, "storagepool", pool,
                                 "filesystem", f"in storage pool '{pool}'")

    async def _snapshot(self, nodeid: str, pool: str, fs: str, name: str) -> dict[str, Any]:
        await self._filesystem(nodeid, pool, fs)
        return await self._child("fssnapshot", name, "filesystem", fs,
                                 "snapshot", f"of filesystem '{fs}'")

    async def _children(self, role: str, parent_actor: str, parent: str,
                        fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        items = await self.client.list_services(role, fields, (parent_actor, parent))
        return sorted(items, key=lambda i: str(i.get("name", "")))

    async def _absent(self, role: str, name: str, what: str) -> None:
        """409 when a service of this role and name exists (anywhere)."""
        service = await self._service(role, name)
        if service is not None:
            parent = views.parent_of(service)
            where = f" (on {parent[0]} '{parent[1]}')" if parent else ""
            raise Conflict(f"{what} '{name}' exists{where}")

    def _forget(self, role: str, name: str) -> Callable[[], Awaitable[Any]]:
        async def forget() -> None:
            await self.client.delete_service(role, name)

        return forget

    async def _create(self, role: str, name: str, content: dict[str, Any], what: str,
                      undo: Callable[[], Awaitable[Any]] | None = None) -> None:
        """
        A create: the blueprint installs service ``role!name``, whose name
        must be free (checked under the write lock).

        :param undo: what a failed install leaves is undone by (default:
            the service is forgotten).
        """
        async def check() -> None:
            await self._absent(role, name, what)

        write = Write(role, name, "install", content, ours=(Action(role, name, "install"),),
                      on_failure=undo or self._forget(role, name))
        await self.writer.apply(write, check)

    async def _act(self, actor: str, name: str, action: str, label: str | None = None,
                   verb: str | None = None, force: bool = True,
                   then_forget: str | None = None) -> None:
        """Run one action of one service and wait for it."""
        step = Action(actor, name, action, force=force)
        write = Write(label or actor.split(".")[0], name, verb or action,
                      blueprints.actions_only(step), ours=(step,))
        if then_forget is not None:
            write.on_success = self._forget(then_forget, name)
        await self.writer.apply(write)

    async def _disks(self, nodeid: str, node: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """A node's whole disks by ``/dev/<kname>``, or ``None`` without a core0 client."""
        if self.agents is None:
            return None
        listing = await self.agents.disk_list(nodeid, node.get("data") or {})
        return shapes.block_devices(listing)

    async def _running(self, nodeid: str, node: dict[str, Any] | None = None) -> set[str] | None:
        """
        The containers the node really runs, or ``None`` when it cannot say
        quickly (then AYS's status stands).

        :param node: the node's service, when already fetched.
        """
        if self.agents is None or self.live_status_timeout <= 0:
            return None
        if node is None:
            node = await self._node(nodeid)
        try:
            return set(await self.agents.running_containers(
                nodeid, node.get("data") or {}, self.live_status_timeout))
        except (BackendUnavailable, BackendTimeout) as e:
            log.debug("node {node} did not list its containers: {error}", node=nodeid,
                      error=e.message)
            return None

    async def _check_devices(self, node: dict[str, Any], nodeid: str, devices: list[str]) -> None:
        disks = await self._disks(nodeid, node)
        if disks is None:
            return
        for device in devices:
            disk = disks.get(device)
            if disk is None:
                raise BadRequest(f"device '{device}' is not a disk of node '{nodeid}'")
            if disk_in_use(disk):
                raise BadRequest(f"device '{device}' is in use")

    # Nodes --------------------------------------------------------------------------------

    @operation
    async def list_nodes(self) -> list[dict[str, Any]]:
        items = await self.client.list_services(
            NODE, ("hostname", "status", "id", "redisAddr"))
        return [views.node(str(i["name"]), i.get("data") or {})
                for i in sorted(items, key=lambda i: str(i.get("name", "")))]

    @operation
    async def get_node(self, nodeid: str) -> dict[str, Any]:
        return views.node(nodeid, (await self._node(nodeid)).get("data") or {})

    @operation
    async def delete_node(self, nodeid: str) -> None:
        await self._node(nodeid)
        await self._act(NODE, nodeid, "uninstall", then_forget=NODE)
        if self._registry is not None:
            self._registry.dropped(nodeid)

    @operation
    async def reboot_node(self, nodeid: str) -> None:
        await self._node(nodeid)
        step = Action(NODE, nodeid, "reboot")
        write = Write("node", nodeid, "reboot", blueprints.actions_only(step), ours=(step,))
        self.writer.watch(await self.writer.post_alone(write), write)

    # Bridges ------------------------------------------------------------------------------

    @operation
    async def create_bridge(self, nodeid: str, body: dict[str, Any]) -> None:
        await self._node(nodeid)
        await self._create("bridge", body["name"], blueprints.bridge(nodeid, body), "bridge")

    @operation
    async def list_bridges(self, nodeid: str) -> list[dict[str, Any]]:
        await self._node(nodeid)
        items = await self._children("bridge", NODE, nodeid, ("setting", "status"))
        return [views.bridge(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def get_bridge(self, nodeid: str, bridgeid: str) -> dict[str, Any]:
        service = await self._on_node("bridge", bridgeid, nodeid, "bridge")
        return views.bridge(bridgeid, service.get("data") or {})

    @operation
    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None:
        await self._on_node("bridge", bridgeid, nodeid, "bridge")
        await self._act("bridge", bridgeid, "delete", then_forget="bridge")

    # Storage pools ----------------------------------------------------------------------------

    @operation
    async def list_storage_pools(self, nodeid: str) -> list[dict[str, Any]]:
        await self._node(nodeid)
        items = await self._children("storagepool", NODE, nodeid, ("status", "freeCapacity"))
        return [views.storage_pool_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def create_storage_pool(self, nodeid: str, body: dict[str, Any]) -> None:
        node = await self._node(nodeid)
        await self._check_devices(node, nodeid, list(dict.fromkeys(body["devices"])))
        await self._create("storagepool", body["name"], blueprints.storage_pool(nodeid, body),
                           "storage pool")

    @operation
    async def get_storage_pool_info(self, nodeid: str, storagepoolname: str) -> dict[str, Any]:
        service = await self._pool(nodeid, storagepoolname)
        return views.storage_pool(storagepoolname, service.get("data") or {})

    @operation
    async def delete_storage_pool(self, nodeid: str, storagepoolname: str) -> None:
        await self._pool(nodeid, storagepoolname)
        await self._act("storagepool", storagepoolname, "delete", then_forget="storagepool")

    @operation
    async def list_storage_pool_devices(self, nodeid: str, storagepoolname: str) -> list[dict[str, Any]]:
        service = await self._pool(nodeid, storagepoolname)
        return [views.storage_pool_device(d) for d in views.pool_devices(service.get("data") or {})]

    async def _post_devices(self, pool: str, devices: list[dict[str, str]], verb: str) -> None:
        await self.writer.post_alone(
            Write("storagepool", pool, verb, blueprints.storage_pool_devices(pool, devices)))

    @operation
    async def create_storage_pool_devices(self, nodeid: str, storagepoolname: str,
                                          body: list[str]) -> None:
        node = await self._node(nodeid)
        service = await self._pool(nodeid, storagepoolname)
        current = views.pool_devices(service.get("data") or {})
        present = {d.get("device") for d in current}
        new = [d for d in dict.fromkeys(body) if d not in present]
        if not new:
            return
        await self._check_devices(node, nodeid, new)
        devices = current + [{"device": d, "partUUID": ""} for d in new]
        await self._post_devices(storagepoolname, devices, "addDevices")

        def applied(data: dict[str, Any]) -> bool:
            known = {d.get("device"): d for d in views.pool_devices(data)}
            return all(d in known and known[d].get("partUUID") for d in new)

        await self.writer.wait_for_data(
            "storagepool", storagepoolname, applied,
            f"adding {', '.join(new)} to storage pool '{storagepoolname}'")

    @operation
    async def get_storage_pool_device_info(self, nodeid: str, storagepoolname: str,
                                           deviceuuid: str) -> dict[str, Any]:
        service = await self._pool(nodeid, storagepoolname)
        for device in views.pool_devices(service.get("data") or {}):
            if device.get("partUUID") == deviceuuid:
                return views.storage_pool_device(device)
        raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")

    @operation
    async def delete_storage_pool_device(self, nodeid: str, storagepoolname: str,
                                         deviceuuid: str) -> None:
        service = await self._pool(nodeid, storagepoolname)
        current = views.pool_devices(service.get("data") or {})
        kept = [{"device": d.get("device") or "", "partUUID": d.get("partUUID") or ""}
                for d in current if d.get("partUUID") != deviceuuid]
        if len(kept) == len(current):
            raise NotFound(f"storage pool has no device with uuid '{deviceuuid}'")
        if not kept:
            raise BadRequest(
                f"device '{deviceuuid}' is the last device of storage pool "
                f"'{storagepoolname}'; delete the pool instead")
        await self._post_devices(storagepoolname, kept, "removeDevices")

        def applied(data: dict[str, Any]) -> bool:
            return all(d.get("partUUID") != deviceuuid for d in views.pool_devices(data))

        await self.writer.wait_for_data(
            "storagepool", storagepoolname, applied,
            f"removing device '{deviceuuid}' from storage pool '{storagepoolname}'")

    # Filesystems and snapshots -----------------------------------------------------------------

    @operation
    async def list_filesystems(self, nodeid: str, storagepoolname: str) -> list[str]:
        await self._pool(nodeid, storagepoolname)
        items = await self._children("filesystem", "storagepool", storagepoolname)
        return [str(i["name"]) for i in items]

    @operation
    async def create_filesystem(self, nodeid: str, storagepoolname: str,
                                body: dict[str, Any]) -> None:
        await self._pool(nodeid, storagepoolname)
        await self._create("filesystem", body["name"], blueprints.filesystem(storagepoolname, body),
                           "filesystem")

    @operation
    async def get_filesystem_info(self, nodeid: str, storagepoolname: str,
                                  filesystemname: str) -> dict[str, Any]:
        service = await self._filesystem(nodeid, storagepoolname, filesystemname)
        return views.filesystem(filesystemname, storagepoolname, service.get("data") or {})

    @operation
    async def delete_filesystem(self, nodeid: str, storagepoolname: str,
                                filesystemname: str) -> None:
        await self._filesystem(nodeid, storagepoolname, filesystemname)
        await self._act("filesystem", filesystemname, "delete", then_forget="filesystem")

    @operation
    async def list_filesystem_snapshots(self, nodeid: str, storagepoolname: str,
                                        filesystemname: str) -> list[str]:
        await self._filesystem(nodeid, storagepoolname, filesystemname)
        items = await self._children("fssnapshot", "filesystem", filesystemname)
        return [str(i["name"]) for i in items]

    @operation
    async def create_snapshot(self, nodeid: str, storagepoolname: str, filesystemname: str,
                              body: dict[str, Any]) -> None:
        await self._filesystem(nodeid, storagepoolname, filesystemname)
        await self._create("fssnapshot", body["name"], blueprints.snapshot(filesystemname, body),
                           "snapshot")

    @operation
    async def get_filesystem_snapshot_info(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> dict[str, Any]:
        service = await self._snapshot(nodeid, storagepoolname, filesystemname, snapshotname)
        return views.snapshot(snapshotname, service.get("data") or {})

    @operation
    async def delete_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                         filesystemname: str, snapshotname: str) -> None:
        await self._snapshot(nodeid, storagepoolname, filesystemname, snapshotname)
        await self._act("fssnapshot", snapshotname, "delete", then_forget="fssnapshot")

    @operation
    async def rollback_filesystem_snapshot(self, nodeid: str, storagepoolname: str,
                                           filesystemname: str, snapshotname: str) -> None:
        await self._snapshot(nodeid, storagepoolname, filesystemname, snapshotname)
        await self._act("fssnapshot", snapshotname, "rollback", label="snapshot")

    # ZeroTier ---------------------------------------------------------------------------------

    @operation
    async def list_zerotiers(self, nodeid: str) -> list[dict[str, Any]]:
        await self._node(nodeid)
        items = await self._children("zerotier", NODE, nodeid, ("nwid", "status", "type"))
        return [views.zerotier_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def join_zerotier(self, nodeid: str, body: dict[str, Any]) -> None:
        await self._node(nodeid)
        nwid = body["nwid"]
        if not ZEROTIER_NWID.match(nwid):
            raise BadRequest(f"nwid '{nwid}' is not a ZeroTier network id (16 hexadecimal digits)")
        instance = blueprints.zerotier_instance(nodeid, nwid)
        write = Write("zerotier", nwid, "join", blueprints.zerotier(nodeid, nwid),
                      ours=(Action("zerotier", instance, "install"),))
        write.on_failure = self._forget("zerotier", instance)

        async def not_joined() -> None:
            if await self._service("zerotier", instance) is not None:
                raise Conflict(f"node '{nodeid}' is already in zerotier network '{nwid}'")

        await self.writer.apply(write, not_joined)

    async def _zerotier(self, nodeid: str, nwid: str) -> dict[str, Any]:
        service = await self._service("zerotier", blueprints.zerotier_instance(nodeid, nwid))
        if service is None:
            await self._node(nodeid)
            raise NotFound(f"node '{nodeid}' is not in zerotier network '{nwid}'")
        return service

    @operation
    async def get_zerotier(self, nodeid: str, zerotierid: str) -> dict[str, Any]:
        service = await self._zerotier(nodeid, zerotierid)
        return views.zerotier(service.get("data") or {})

    @operation
    async def exit_zerotier(self, nodeid: str, zerotierid: str) -> None:
        await self._zerotier(nodeid, zerotierid)
        instance = blueprints.zerotier_instance(nodeid, zerotierid)
        await self._act("zerotier", instance, "delete", then_forget="zerotier")

    # Containers ------------------------------------------------------------------------------

    @staticmethod
    def _live(view: dict[str, Any], name: str, running: set[str] | None) -> dict[str, Any]:
        """The view with the status the node reports, when it reported."""
        if running is not None:
            view["status"] = "running" if name in running else "halted"
        return view

    @operation
    async def list_containers(self, nodeid: str) -> list[dict[str, Any]]:
        node = await self._node(nodeid)
        items = await self._children("container", NODE, nodeid, ("flist", "hostname", "status"))
        running = await self._running(nodeid, node) if items else None
        return [self._live(views.container_item(str(i["name"]), i.get("data") or {}),
                           str(i["name"]), running) for i in items]

    async def _check_filesystems(self, nodeid: str, entries: list[str]) -> None:
        for entry in entries:
            pool, _, name = entry.partition(":")
            pool_service = await self._service("storagepool", pool)
            if pool_service is None or not self._is_child(pool_service, NODE_ROLE, nodeid):
                raise BadRequest(f"storage pool '{pool}' does not exist on node '{nodeid}'")
            fs = await self._service("filesystem", name)
            if fs is None or not self._is_child(fs, "storagepool", pool):
                raise BadRequest(f"filesystem '{name}' does not exist in storage pool '{pool}'")

    @operation
    async def create_container(self, nodeid: str, body: dict[str, Any]) -> None:
        await self._node(nodeid)
        await self._check_filesystems(nodeid, list(body.get("filesystems") or []))
        await self._create("container", body["name"], blueprints.container(nodeid, body),
                           "container")

    @operation
    async def delete_container(self, nodeid: str, containername: str) -> None:
        await self._on_node("container", containername, nodeid, "container")
        await self._act("container", containername, "stop", verb="delete",
                        then_forget="container")

    @operation
    async def get_container(self, nodeid: str, containername: str) -> dict[str, Any]:
        service = await self._on_node("container", containername, nodeid, "container")
        view = views.container(service.get("data") or {})
        return self._live(view, containername, await self._running(nodeid))

    @operation
    async def start_container(self, nodeid: str, containername: str) -> None:
        await self._on_node("container", containername, nodeid, "container")
        await self._act("container", containername, "start")

    @operation
    async def stop_container(self, nodeid: str, containername: str) -> None:
        await self._on_node("container", containername, nodeid, "container")
        await self._act("container", containername, "stop")

    # VMs ------------------------------------------------------------------------------------------

    @staticmethod
    def _check_sizes(body: dict[str, Any]) -> None:
        for key in ("memory", "cpu"):
            if int(body[key]) > UINT16_MAX:
                raise BadRequest(f"field '{key}' must be at most {UINT16_MAX} (AYS vm template)")

    @operation
    async def list_vms(self, nodeid: str) -> list[dict[str, Any]]:
        await self._node(nodeid)
        items = await self._children("vm", NODE, nodeid, ("status",))
        return [views.vm_item(str(i["name"]), i.get("data") or {}) for i in items]

    @operation
    async def create_vm(self, nodeid: str, body: dict[str, Any]) -> None:
        self._check_sizes(body)
        await self._node(nodeid)
        await self._create("vm", body["id"], blueprints.vm(nodeid, body), "a vm with id")

    async def _vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        return await self._on_node("vm", vmid, nodeid, "vm")

    @operation
    async def delete_vm(self, nodeid: str, vmid: str) -> None:
        await self._vm(nodeid, vmid)
        await self._act("vm", vmid, "stop", verb="delete", then_forget="vm")

    @operation
    async def get_vm(self, nodeid: str, vmid: str) -> dict[str, Any]:
        return views.vm(vmid, (await self._vm(nodeid, vmid)).get("data") or {})

    @operation
    async def update_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        self._check_sizes(body)
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
        await self._act("vm", vmid, action)

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
    async def migrate_vm(self, nodeid: str, vmid: str, body: dict[str, Any]) -> None:
        await self._vm(nodeid, vmid)
        target = body["nodeid"]
        await self._node(target)
        if target == nodeid:
            return
        write = Write("vm", vmid, "migrate", blueprints.vm_migrate(vmid, target))
        await self.writer.post_alone(write)

        def arrived(service: dict[str, Any]) -> bool:
            status = (service.get("data") or {}).get("status")
            return self._is_child(service, NODE_ROLE, target) and status != "migrating"

        await self.writer.wait_for_service(
            "vm", vmid, arrived, f"the migration of vm '{vmid}' to node '{target}'")

    # Storage clusters ---------------------------------------------------------------------------

    async def _check_cluster_disks(self, nodes: list[tuple[str, dict[str, Any]]],
                                   drive_type: str, per_node: int) -> None:
        for nodeid, node in nodes:
            disks = await self._disks(nodeid, node)
            if disks is None:
                return
            free = [d for d in disks.values()
                    if conventions.disk_type(d) == drive_type and not d.get("children")]
            if len(free) < per_node:
                raise BadRequest(
                    f"node '{nodeid}' has {len(free)} free {drive_type} disk(s), "
                    f"{per_node} needed")

    @operation
    async def deploy_new_cluster(self, body: dict[str, Any]) -> None:
        label = body["label"]
        node_ids = list(dict.fromkeys(body["nodes"]))
        if int(body["servers"]) % len(node_ids):
            raise BadRequest(
                f"servers ({body['servers']}) must be a multiple of the number of "
                f"nodes ({len(node_ids)})")
        nodes = [(n, await self._node(n)) for n in node_ids]
        await self._check_cluster_disks(nodes, body["driveType"],
                                        int(body["servers"]) // len(node_ids))
        await self._create("storage_cluster", label, blueprints.storage_cluster(body, node_ids),
                           "storage cluster", undo=self._undeploy(label))

    def _undeploy(self, label: str) -> Callable[[], Awaitable[Any]]:
        """Undo a failed deployment: what the cluster made goes with it."""
        async def undeploy() -> None:
            if await self._service("storage_cluster", label) is None:
                return
            try:
                await self._act("storage_cluster", label, "delete", force=True)
            finally:
                await self.client.delete_service("storage_cluster", label)

        return undeploy

    @operation
    async def list_all_clusters(self) -> list[str]:
        items = await self.client.list_services("storage_cluster", ("label",))
        return sorted(str((i.get("data") or {}).get("label") or i.get("name")) for i in items)

    async def _cluster(self, label: str) -> dict[str, Any]:
        return await self._existing("storage_cluster", label, "storage cluster")

    @operation
    async def get_cluster_info(self, label: str) -> dict[str, Any]:
        data = (await self._cluster(label)).get("data") or {}
        names = [str(n) for n in data.get("ardbs") or []]
        try:
            services = await gatherResults(
                [ensureDeferred(self._service("ardb", n)) for n in names], consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
        ardbs = [(n, s) for n, s in zip(names, services, strict=True) if s is not None]
        view = views.storage_cluster(data, ardbs)
        view["label"] = view["label"] or label
        return view

    @operation
    async def kill_cluster(self, label: str) -> None:
        await self._cluster(label)
        await self._act("storage_cluster", label, "delete", then_forget="storage_cluster")

    # Vdisks ---------------------------------------------------------------------------------------

    @operation
    async def list_vdisks(self) -> list[dict[str, Any]]:
        items = await self.client.list_services("vdisk", ("storageCluster", "type", "status"))
        return [views.vdisk_item(str(i["name"]), i.get("data") or {})
                for i in sorted(items, key=lambda i: str(i.get("name", "")))]

    @operation
    async def create_new_vdisk(self, body: dict[str, Any]) -> None:
        for key in ("storagecluster", "tlogStoragecluster"):
            if body.get(key) and await self._service("storage_cluster", body[key]) is None:
                raise NotFound(f"storage cluster '{body[key]}' ({key}) does not exist")
        template = body.get("templatevdisk") or ""
        if (template and not template.startswith("ardb://")
                and await self._service("vdisk", template) is None):
            raise NotFound(f"template vdisk '{template}' does not exist")
        await self._create("vdisk", body["id"], blueprints.vdisk(body), "vdisk")

    async def _vdisk(self, vdiskid: str) -> dict[str, Any]:
        return await self._existing("vdisk", vdiskid, "vdisk")

    @operation
    async def get_vdisk_info(self, vdiskid: str) -> dict[str, Any]:
        return views.vdisk(vdiskid, (await self._vdisk(vdiskid)).get("data") or {})

    @operation
    async def delete_vdisk(self, vdiskid: str) -> None:
        await self._vdisk(vdiskid)
        # The vdisk template has no delete action: nothing to run on the cluster.
        if not await self.client.delete_service("vdisk", vdiskid):
            raise NotFound(f"vdisk '{vdiskid}' does not exist")

    @operation
    async def resize_vdisk(self, vdiskid: str, body: dict[str, Any]) -> None:
        data = (await self._vdisk(vdiskid)).get("data") or {}
        size, new_size = int(data.get("size") or 0), int(body["newSize"])
        if new_size < size:
            raise BadRequest(f"newSize {new_size} is smaller than the current size {size}")
        if new_size == size:
            return
        write = Write("vdisk", vdiskid, "resize", blueprints.vdisk_resize(vdiskid, new_size))
        await self.writer.post_alone(write)
        await self.writer.wait_for_data(
            "vdisk", vdiskid, lambda now: int(now.get("size") or 0) >= new_size,
            f"the resize of vdisk '{vdiskid}' to {new_size} GiB")

    @operation
    async def rollback_vdisk(self, vdiskid: str, body: dict[str, Any]) -> None:
        await self._vdisk(vdiskid)
        await self._act("vdisk", vdiskid, "rollback")


def from_options(options: dict[str, Any], context: Any) -> AysBackend:
    """
    Build the backend from its ``[backends.<name>]`` options (see the
    ``ays`` dropin for their schema).
    """
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from plugins.ays.node_agents import NodeAgents

    reactor = context.reactor
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 8
    http = HTTPClient(Agent(reactor, pool=pool))
    client = AysClient(
        options["url"], options["repository"], http, reactor,
        request_timeout=float(options["request_timeout"]),
    )
    timing = Timing(
        run_timeout=float(options["run_timeout"]),
        poll_interval=float(options["poll_interval"]),
        poll_max_interval=float(options["poll_max_interval"]),
        follow_timeout=float(options["follow_timeout"]),
    )
    return AysBackend(
        client, reactor, timing,
        health_timeout=float(options["health_timeout"]),
        connections=pool,
        agents=NodeAgents(reactor, float(options["core0_timeout"])),
        live_status_timeout=float(options["live_status_timeout"]),
        retry_interval=float(options["startup_retry_interval"]),
        retry_max_interval=float(options["startup_retry_max_interval"]),
        registry_ttl=float(options["registry_ttl"]),
    )
