"""
Containers (``IContainers``), and the index every command into a container
goes through.

A container is a corex container tagged with its name; its list view,
status and flist come from ``corex.list``.  What only its creator knows
(init processes; the create body of a halted container, so it can be
started again) is a record (``node_records.CONTAINER``).  A container seen
running is recorded as of one created here, so that it stays listed
(halted) however it stops, as the original's orchestrator kept its
container services.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0 import shapes
from plugins.core0.kit import node_records
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.storage import check_filesystems
from plugins.core0.protocol import ERROR, CommandFailed, Result, check
from rpoold.contract.wire import Container, ContainerListItem, CreateContainer, PoolContainerListItem
from rpoold.errors import BadRequest, Conflict, NotFound
from rpoold.interfaces import IContainers
from rpoold.listing import PoolListing
from rpoold.nodes import ICommandClient
from rpoold.records import IRecords, StoreUnavailable

log = Logger()

#: Errors of ``corex.dispatch`` that mean the container id is stale.
STALE_CONTAINER = ("container does not exist", "invalid container id")


def _taken(name: str, owner: dict[str, Any] | None) -> Conflict:
    """The refusal of a container name another container of the pool has."""
    node = owner["node"] if owner is not None else "?"
    return Conflict(f"a container named '{name}' exists (node '{node}')")


class ContainerIndex:
    """
    The containers of each node by name: ``corex.list`` answers, the
    records of the containers made or seen here, and a name -> id cache.

    Each listing records the running containers that have no record; the
    names known to have one are kept per node, so that a listing asks the
    store only of names it has not seen (not of every record of the pool).

    :param records: the backend's records.
    :param clock: an ``IReactorTime``.
    :param cache_seconds: how long a name -> id mapping found with
        ``corex.list`` is trusted.
    """

    def __init__(self, records: IRecords, clock: Any, cache_seconds: float = 300.0) -> None:
        self.records = records
        self.clock = clock
        self.cache_seconds = cache_seconds
        #: node id -> (name -> container id, trusted until).
        self._ids: dict[str, tuple[dict[str, int], float]] = {}
        #: node id -> names of its running containers known to have a record.
        self._recorded: dict[str, set[str]] = {}

    # Listings -------------------------------------------------------------------------------

    async def listing(self, client: ICommandClient) -> dict[str, Any]:
        """``corex.list`` of a node; records what it shows running and refreshes the cache."""
        listing = await self._list(client)
        await self._remember(client.node, listing)
        return listing

    async def _list(self, client: ICommandClient) -> dict[str, Any]:
        """``corex.list`` of a node, and the name -> id cache refreshed from it."""
        listing: dict[str, Any] = await client.call("corex.list") or {}
        names: dict[str, int] = {}
        for container_id, arguments in shapes.listed_containers(listing):
            for tag in arguments.get("tags") or []:
                names.setdefault(str(tag), container_id)
        self._ids[client.node] = (names, self.clock.seconds() + self.cache_seconds)
        return listing

    async def _remember(self, nodeid: str, listing: dict[str, Any]) -> None:
        known = self._recorded.setdefault(nodeid, set())
        for name in shapes.container_names(listing):
            if name in known:
                continue
            if await self.records.get(node_records.CONTAINER, name) is None:
                found = shapes.container_tagged(listing, name)
                if found is not None:
                    # Not over a record of another daemon's, nor of another node's.
                    await self.records.add(node_records.CONTAINER, name, {
                        "node": nodeid, "spec": shapes.container_record(name, found[1])})
            known.add(name)

    def recorded(self, nodeid: str, name: str) -> None:
        """A container's record was written here (its name is known to have one)."""
        self._recorded.setdefault(nodeid, set()).add(name)

    def unrecorded(self, nodeid: str, name: str) -> None:
        """A container's record was removed here."""
        self._recorded.get(nodeid, set()).discard(name)

    def forget(self, nodeid: str) -> None:
        """Drop a node's name -> id cache (a container stopped, the node rebooted)."""
        self._ids.pop(nodeid, None)

    def forget_node(self, nodeid: str) -> None:
        """Drop everything kept of a node (it left the pool, with its records)."""
        self._ids.pop(nodeid, None)
        self._recorded.pop(nodeid, None)

    async def record(self, nodeid: str, name: str) -> dict[str, Any] | None:
        """The create body of a container of this node made or seen here."""
        record = await node_records.of_node(self.records, node_records.CONTAINER, nodeid, name)
        return record["spec"] if record is not None else None

    async def names(self, nodeid: str, listing: dict[str, Any]) -> list[str]:
        """A node's containers: recorded ones, then the others ``listing`` shows running."""
        names = [name for name, _ in await node_records.on_node(self.records, node_records.CONTAINER, nodeid)]
        names += [name for name in shapes.container_names(listing) if name not in names]
        return names

    async def view(self, nodeid: str, listing: dict[str, Any], name: str) -> Container:
        """
        A ``Container`` from its record and a ``corex.list`` answer.

        :raises NotFound: neither knows it.
        """
        record = await self.record(nodeid, name)
        running = shapes.container_tagged(listing, name)
        if running is None and record is None:
            raise NotFound(f"container '{name}' does not exist on node '{nodeid}'")
        return shapes.container_view(running[1] if running else {}, running is not None, record)

    async def missing(self, nodeid: str, name: str) -> NotFound:
        """The error for a container that is not running: halted, or unknown."""
        if await self.record(nodeid, name) is not None:
            return NotFound(f"container '{name}' is not running on node '{nodeid}'")
        return NotFound(f"container '{name}' does not exist on node '{nodeid}'")

    # Commands inside containers -------------------------------------------------------------

    async def id_of(self, client: ICommandClient, name: str, *, fresh: bool = False) -> int | None:
        """
        The id of the running container tagged ``name`` (the first one, by
        id, as the original did), from the cache when it is recent.

        :returns: the id, or ``None`` when no running container has the tag.
        """
        cached = self._ids.get(client.node)
        if not fresh and cached is not None and self.clock.seconds() < cached[1] and name in cached[0]:
            return cached[0][name]
        listing = await self._list(client)
        try:
            await self._remember(client.node, listing)
        except StoreUnavailable as e:
            # A command into a running container needs no record: it goes on
            # while the store is away (the next listing records what runs).
            log.warn("containers of node {node} not recorded: {why}", node=client.node, why=e.message)
        return self._ids[client.node][0].get(name)

    async def run(self, client: ICommandClient, name: str, command: str,
                  arguments: dict[str, Any] | None = None, *, wait: bool = True,
                  stream: bool = False) -> Any:
        """
        ``dispatch`` into the running container called ``name``; a stale
        cached id (the container was stopped or recreated) is looked up
        once more.

        :param stream: ask the agent to stream the job's output.

        :returns: the inner ``Result`` (unchecked), or its job id without ``wait``.
        :raises NotFound: no running container of this name.
        """
        for attempt in range(2):
            container = await self.id_of(client, name, fresh=attempt > 0)
            if container is None:
                raise await self.missing(client.node, name)
            try:
                if stream:
                    return await client.dispatch(container, command, arguments, wait=wait, stream=True)
                return await client.dispatch(container, command, arguments, wait=wait)
            except CommandFailed as e:
                if attempt or e.command != "corex.dispatch" or e.detail not in STALE_CONTAINER:
                    raise
                self.forget(client.node)
        raise AssertionError("unreachable")

    async def call(self, client: ICommandClient, name: str, command: str, **arguments: Any) -> Any:
        """A command inside a container; its decoded payload (``CommandFailed`` otherwise)."""
        result: Result = await self.run(client, name, command, arguments)
        return check(result, client.node).value()


@implementer(IContainers)
class Containers:
    """
    ``IContainers`` on core0 commands.

    :param nodes: the nodes and their clients.
    :param index: the containers by name.
    :param node_timeout: seconds each node has to answer its part of the
        pool-wide list.
    """

    def __init__(self, nodes: NodeDirectory[Any], index: ContainerIndex,
                 node_timeout: float = float("inf")) -> None:
        self.nodes = nodes
        self.index = index
        self.records = index.records
        self.node_timeout = node_timeout

    async def _start(self, client: ICommandClient, record: Mapping[str, Any]) -> None:
        mounts = shapes.container_mounts(record["filesystems"])
        try:
            container = await client.call("corex.create", shapes.container_arguments(record, mounts))
        except CommandFailed as e:
            if e.state != ERROR:
                raise
            raise BadRequest(f"container '{record['name']}' cannot start: {e.detail}") from None
        self.index.forget(client.node)
        for process in record.get("initProcesses") or []:
            await client.dispatch(int(container), "core.system", shapes.system_arguments(process),
                                  wait=False)

    async def _running(self, nodeid: str, name: str) -> tuple[ICommandClient, int | None]:
        """
        The node's client and the id of the container running as ``name``
        (``None`` when it is halted).

        :raises NotFound: the container is neither running nor recorded.
        """
        client = await self.nodes.client(nodeid)
        listing = await self.index.listing(client)
        await self.index.view(nodeid, listing, name)
        running = shapes.container_tagged(listing, name)
        return client, None if running is None else running[0]

    async def _stop(self, nodeid: str, name: str) -> None:
        # Listing the containers has recorded this one, so it stays listed (halted).
        client, running = await self._running(nodeid, name)
        if running is not None:
            await client.call("corex.terminate", {"container": running})
            self.index.forget(nodeid)

    async def list_containers(self, nodeid: str) -> list[ContainerListItem]:
        client = await self.nodes.client(nodeid)
        listing = await self.index.listing(client)
        return [shapes.container_list_item(name, await self.index.view(nodeid, listing, name))
                for name in await self.index.names(nodeid, listing)]

    async def list_pool_containers(self, node: str) -> PoolListing[PoolContainerListItem]:
        async def of_node(nodeid: str) -> list[PoolContainerListItem]:
            return [{"node": nodeid, **item} for item in await self.list_containers(nodeid)]

        return await self.nodes.fan_out(node, of_node, self.index.clock, self.node_timeout)

    async def create_container(self, nodeid: str, body: CreateContainer) -> None:
        client = await self.nodes.client(nodeid)
        name = body["name"]
        owner = await self.records.get(node_records.CONTAINER, name)
        if owner is not None:
            raise _taken(name, owner)
        # No record anywhere (asked above): a container of that name may still run here.
        if name in shapes.container_names(await self.index.listing(client)):
            raise Conflict(f"a container named '{name}' exists (node '{nodeid}')")
        await check_filesystems(client, nodeid, body["filesystems"])
        # The name is claimed (atomically, whoever else creates one) with the
        # whole spec, before the container starts: if it cannot start, the
        # claim goes; if this daemon dies meanwhile, a halted container stays.
        record = {"node": nodeid, "spec": body}
        if not await self.records.add(node_records.CONTAINER, name, record):
            raise _taken(name, await self.records.get(node_records.CONTAINER, name))
        self.index.recorded(nodeid, name)
        try:
            await self._start(client, body)
        except BaseException:
            self.index.unrecorded(nodeid, name)
            await self.records.replace(node_records.CONTAINER, name, record, None)
            raise


    async def delete_container(self, nodeid: str, containername: str) -> None:
        await self._stop(nodeid, containername)
        record = await node_records.of_node(self.records, node_records.CONTAINER, nodeid, containername)
        if record is not None:
            self.index.unrecorded(nodeid, containername)
            await self.records.replace(node_records.CONTAINER, containername, record, None)

    async def get_container(self, nodeid: str, containername: str) -> Container:
        client = await self.nodes.client(nodeid)
        return await self.index.view(nodeid, await self.index.listing(client), containername)

    async def start_container(self, nodeid: str, containername: str) -> None:
        client, running = await self._running(nodeid, containername)
        if running is None:
            record = await self.index.record(nodeid, containername)
            assert record is not None  # _running found a record or a running container
            await self._start(client, record)

    async def stop_container(self, nodeid: str, containername: str) -> None:
        await self._stop(nodeid, containername)
