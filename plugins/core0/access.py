"""
What the families of the core0 backend share.

``CommandFamilies`` is the base of every family: the clock, what the
nodes cannot tell (kept in memory, lost when rpoold restarts), and the
lookups made of commands alone.  The families made of node commands only
(storage, networks, VMs) need nothing else but a node's
``CommandClient``: the core0 backend (``NodeAccess``: the node registry
and one ``NodeClient`` per node) sends the commands over Redis, the mock
runs them on its model in process, so that both answer alike.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, FirstError, ensureDeferred, fail, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.core0 import shapes
from plugins.core0.client import NodeClient
from plugins.core0.protocol import Result, check
from plugins.core0.registry import resolve
from rpoold.errors import BadRequest, NotFound
from rpoold.nodes import INodeRegistry, NodeAddress

log = Logger()


def deferred(f: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Deferred[Any]]:
    """
    Make an ``async def`` method return a Deferred, as the interfaces say;
    the backend's ``counted`` sees it.
    """
    @functools.wraps(f)
    def wrapper(self: CommandFamilies, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self.counted(f.__name__, ensureDeferred(f(self, *args, **kwargs)))

    return wrapper


def gather(*ds: Deferred[Any]) -> Deferred[list[Any]]:
    """All results, or the first failure (the others are consumed)."""
    def first(failure: Failure) -> Failure:
        error = failure.value
        return error.subFailure if isinstance(error, FirstError) else failure

    return gatherResults(list(ds), consumeErrors=True).addErrback(first)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class CommandClient(Protocol):
    """A node as the families made of commands see it."""

    #: The node's id.
    node: str

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        """
        Run a core0 command on the node.

        :returns: Deferred firing with its decoded payload.
        :raises CommandFailed: the command ended in another state than
            ``SUCCESS``.
        """


class CommandFamilies:
    """
    :param options: the backend's options; ``transition_seconds`` is how
        long a VM stays in a passing state such as ``halting``.
    :param context: the ``IBackendContext``.
    """

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        self.reactor = context.reactor
        self.transition_seconds = float(options.get("transition_seconds", 0.1))
        # What the nodes cannot tell, kept in memory (lost when rpoold restarts):
        #: (node id, container name) -> the CreateContainer body of containers made here.
        self.container_records: dict[tuple[str, str], dict[str, Any]] = {}
        #: (node id, bridge name) -> the ``network`` it was created with.
        self.bridge_networks: dict[tuple[str, str], dict[str, Any]] = {}
        #: (node id, subvolume path) -> {"quota", "readOnly", "created"} of filesystems
        #: and snapshots made here.
        self.subvolume_records: dict[tuple[str, str], dict[str, Any]] = {}
        #: (node id, vm id) -> VM record.
        self.vms: dict[tuple[str, str], dict[str, Any]] = {}

    async def client(self, nodeid: str) -> CommandClient:
        """
        :raises NotFound: unknown node.
        """
        raise NotImplementedError

    async def node_facts(self, client: Any) -> tuple[str, str]:
        """:returns: the node's hostname and address, as ``GET /nodes`` shows them."""
        raise NotImplementedError

    def counted(self, method: str, d: Deferred[Any]) -> Deferred[Any]:
        """
        Called with each interface method's Deferred (for metrics).

        :returns: ``d``.
        """
        return d

    def forget_node_records(self, nodeid: str) -> None:
        """Drop what the backend keeps about a node's containers, bridges, ..."""
        for records in (self.container_records, self.bridge_networks, self.subvolume_records, self.vms):
            for key in [k for k in records if k[0] == nodeid]:
                del records[key]

    # Container records (containers are tagged with their name) ----------------------------

    def remember_containers(self, nodeid: str, listing: dict[str, Any]) -> None:
        """
        Keep a record of every container seen running, as of one created
        here, so that it stays listed (halted) however it stops (as the
        original's orchestrator kept its container services).
        """
        for name in shapes.container_names(listing):
            if (nodeid, name) not in self.container_records:
                found = shapes.container_tagged(listing, name)
                if found is not None:
                    self.container_records[(nodeid, name)] = shapes.container_record(name, found[1])

    def container_names(self, nodeid: str, listing: dict[str, Any]) -> list[str]:
        """The containers of a node: recorded ones, then the others a ``corex.list`` answer shows."""
        names = [name for (n, name) in self.container_records if n == nodeid]
        names += [name for name in shapes.container_names(listing) if name not in names]
        return names

    def container_view(self, nodeid: str, listing: dict[str, Any], name: str) -> dict[str, Any]:
        """
        A ``Container`` from its record and a ``corex.list`` answer.

        :raises NotFound: neither knows it.
        """
        record = self.container_records.get((nodeid, name))
        running = shapes.container_tagged(listing, name)
        if running is None and record is None:
            raise NotFound(f"container '{name}' does not exist on node '{nodeid}'")
        return shapes.container_view(running[1] if running else {}, running is not None, record)

    def missing_container(self, nodeid: str, name: str) -> NotFound:
        if (nodeid, name) in self.container_records:
            return NotFound(f"container '{name}' is not running on node '{nodeid}'")
        return NotFound(f"container '{name}' does not exist on node '{nodeid}'")

    # Storage pools (containers mount their filesystems) -----------------------------------------

    async def storage_pool(self, client: CommandClient, name: str) -> dict[str, Any] | None:
        """The ``btrfs.list`` entry of the pool labelled for ``name``, if any."""
        for entry in await client.call("btrfs.list") or []:
            if entry.get("label") == shapes.pool_label(name):
                result: dict[str, Any] = entry
                return result
        return None

    async def subvolumes(self, client: CommandClient, pool: str) -> list[str]:
        """Absolute paths of the subvolumes of a pool (mounted where pools are)."""
        mount = shapes.pool_mount(pool)
        entries = await client.call("btrfs.subvol_list", {"path": mount}) or []
        return sorted(f"{mount}/{e['Path']}" for e in entries)

    async def check_filesystems(self, client: CommandClient, nodeid: str, entries: list[str]) -> None:
        """
        :param entries: a container's ``pool:filesystem`` mounts.
        :raises BadRequest: one names a pool or a filesystem the node lacks.
        """
        for entry in entries:
            pool, _, filesystem = entry.partition(":")
            if await self.storage_pool(client, pool) is None:
                raise BadRequest(f"storage pool '{pool}' does not exist on node '{nodeid}'")
            if shapes.filesystem_path(pool, filesystem) not in await self.subvolumes(client, pool):
                raise BadRequest(f"filesystem '{filesystem}' does not exist in storage pool '{pool}'")


class NodeAccess(CommandFamilies):
    """
    The nodes of the registry, each reached over Redis by its ``NodeClient``.

    :param options: the backend's options (see ``plugins.backend_core0``).
    :param context: the ``IBackendContext``.
    """

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        super().__init__(options, context)
        self.registry: INodeRegistry = resolve(options, context)
        self._lookup: Callable[[str], NodeAddress] | None = getattr(self.registry, "lookup", None)
        self.pool_size = int(options.get("pool_size", 8))
        self.timeout = float(options.get("timeout", 10.0))
        self.ping_timeout = float(options.get("ping_timeout", 1.0))
        self.health_timeout = float(options.get("health_timeout", 2.0))
        self.container_cache_seconds = float(options.get("container_cache_seconds", 300.0))
        self.clients: dict[str, NodeClient] = {}
        #: node id -> (hostname, ip address) as the node reported them.
        self._facts: dict[str, tuple[str, str]] = {}

    # Nodes and their clients -------------------------------------------------------------

    def client_of(self, address: NodeAddress) -> NodeClient:
        client = self.clients.get(address.id)
        if client is not None and client.address == address:
            return client
        if client is not None:
            client.close()
            self._facts.pop(address.id, None)
        client = self.clients[address.id] = NodeClient(
            address, pool_size=self.pool_size, timeout=self.timeout, reactor=self.reactor,
            container_cache_seconds=self.container_cache_seconds)
        client.listing_observer = lambda listing: self.remember_containers(address.id, listing)
        return client

    async def client(self, nodeid: str) -> NodeClient:
        """
        :raises NotFound: the registry does not know the node.
        """
        if self._lookup is not None:
            address = self._lookup(nodeid)
        else:
            address = await self.registry.get_node(nodeid)
        return self.client_of(address)

    def call(self, nodeid: str, command: str, **arguments: Any) -> Deferred[Any]:
        """
        Run a command on a node.

        :returns: Deferred firing with its decoded payload.
        :raises NotFound: unknown node.
        :raises CommandFailed: the command failed.
        """
        if self._lookup is None:
            return ensureDeferred(self._call_later(nodeid, command, arguments))
        try:
            client = self.client_of(self._lookup(nodeid))
        except NotFound as e:
            return fail(e)
        return client.call(command, arguments)

    async def _call_later(self, nodeid: str, command: str, arguments: dict[str, Any]) -> Any:
        return await (await self.client(nodeid)).call(command, arguments)

    def drop_client(self, nodeid: str) -> None:
        client = self.clients.pop(nodeid, None)
        if client is not None:
            client.close()
        self._facts.pop(nodeid, None)

    async def node_facts(self, client: NodeClient) -> tuple[str, str]:
        """
        What ``GET /nodes`` shows of a node besides its status: the
        hostname (from the registry, else ``info.os``) and the address
        (the registry's host, unless it is a loopback address as with a
        local simulator: then the node's first IPv4 address, ``info.nic``).
        Asked once per node and kept; the registry's values when the node
        does not answer.
        """
        address = client.address
        known = self._facts.get(address.id)
        if known is not None:
            return known
        hostname, ip = address.hostname, address.host
        asks: dict[str, Deferred[Any]] = {}
        if not hostname:
            asks["os"] = client.call("info.os", timeout=self.ping_timeout)
        if is_loopback(ip):
            asks["nic"] = client.call("info.nic", timeout=self.ping_timeout)
        if not asks:
            self._facts[address.id] = (hostname, ip)
            return hostname, ip
        answers = await DeferredList(list(asks.values()), consumeErrors=True)
        got = dict(zip(asks, answers, strict=True))
        complete = all(ok for ok, _ in answers)
        if "os" in got and got["os"][0]:
            hostname = str((got["os"][1] or {}).get("hostname") or "")
        if "nic" in got and got["nic"][0]:
            ip = shapes.first_address(got["nic"][1] or []) or ip
        if complete:
            self._facts[address.id] = (hostname, ip)
        return hostname, ip

    # Containers ------------------------------------------------------------------------------

    async def in_container(self, nodeid: str, name: str, command: str,
                           arguments: dict[str, Any] | None = None, *, wait: bool = True) -> Any:
        """
        ``dispatch`` into a running container found by name.

        :returns: the inner ``Result`` (unchecked), or its job id without ``wait``.
        :raises NotFound: unknown node, or no running container of this name.
        """
        client = await self.client(nodeid)
        try:
            return await client.in_container(name, command, arguments, wait=wait)
        except LookupError:
            raise self.missing_container(nodeid, name) from None

    async def container_call(self, nodeid: str, name: str, command: str, **arguments: Any) -> Any:
        """A command inside a container; its decoded payload (``CommandFailed`` otherwise)."""
        result: Result = await self.in_container(nodeid, name, command, arguments)
        return check(result, nodeid).value()
