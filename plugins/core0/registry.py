"""
Which nodes the core0 backend knows, and how to reach each one's Redis.

A *node registry* is anything providing ``INodeRegistry``.  The built-in
one, ``ConfiguredRegistry``, lists the nodes of one of two sources:

- the ``nodes`` list of the backend's configuration;
- a ``NodeFile``: a TOML file with ``[[nodes]]`` tables that another
  process writes (the core0 simulator does, with ``--config-out``); it is
  read again whenever it changes on disk.

A third source plugs in through configuration: ``registry =
"<kind>:<instance>"`` names another backend instance (for example
``"ays:ays"``) that provides ``INodeRegistryProvider``; the core0 backend
then asks its registry for nodes and addresses (see ``resolve``).

"Forgetting" a node (``DELETE /nodes/{id}``) of a configured registry is a
record (``ForgottenNodes``); with the in-memory records, a node from
configuration or from the file is known again after a restart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from rpoold.config import ConfigError, check, key_path, read_file
from rpoold.errors import NotFound
from rpoold.names import PATH_PARAMETERS
from rpoold.nodes import DEFAULT_PORT, INodeRegistry, INodeRegistryProvider, NodeAddress
from rpoold.records import IRecords

log = Logger()

#: JSON Schema of one node entry, in configuration and in a node file.
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "host"],
    "properties": {
        "id": {"type": "string", "pattern": PATH_PARAMETERS["nodeid"]},
        "host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": DEFAULT_PORT},
        "password": {"type": "string", "default": ""},
        "db": {"type": "integer", "minimum": 0, "default": 0},
        "hostname": {"type": "string", "default": ""},
    },
}

NODES_SCHEMA: dict[str, Any] = {"type": "array", "items": NODE_SCHEMA}


def parse_nodes(entries: Any, where: str, prefix: list[Any]) -> list[NodeAddress]:
    """
    Check node entries and build their addresses.

    :param where: the file, for messages; empty for the backend's own
        options (the configuration loader names file and table then).
    :param prefix: key path of the list, for messages.
    :raises ConfigError: one line per problem (key path named), also for
        duplicate ids.
    """
    problems = check(NODES_SCHEMA, entries, prefix, where) if where else []
    if problems:
        raise ConfigError(problems)
    nodes: list[NodeAddress] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry["id"] in seen:
            at = key_path([*prefix, index, "id"])
            problems.append(f"{where} at '{at}': duplicate node id '{entry['id']}'" if where
                            else f"duplicate node id '{entry['id']}' at '{at}'")
            continue
        seen.add(entry["id"])
        nodes.append(NodeAddress(
            id=entry["id"], host=entry["host"], port=entry.get("port", DEFAULT_PORT),
            password=entry.get("password", ""), db=entry.get("db", 0),
            hostname=entry.get("hostname", ""),
        ))
    if problems:
        raise ConfigError(problems)
    return nodes


FORGOTTEN = "forgotten_node"


class ForgottenNodes:
    """
    The nodes an operator deleted from a configured pool (``DELETE
    /nodes/{id}``): records of kind ``forgotten_node``, with a copy in
    memory for the synchronous lookups, read again whenever the store says
    the kind changed (another daemon sharing the store forgot a node); the
    node the store names is gone from the copy at once.  While the store is
    away the copy stays as it was.  Nothing deletes these records: a node
    comes back only when an operator removes its record from the store and
    restarts the daemons.

    :param records: the backend's records.
    """

    def __init__(self, records: IRecords) -> None:
        self.records = records
        self.ids: set[str] = set()
        records.watch(FORGOTTEN, self._changed)

    async def load(self) -> None:
        """
        Read the records (at start, and when they changed).  What is read
        is added to what is known: a node is only ever forgotten, and a
        read that started before a node was forgotten may answer after
        the change was heard.
        """
        self.ids |= {key for key, _ in await self.records.list(FORGOTTEN)}

    def _changed(self, key: str | None) -> None:
        # A node is only ever forgotten (nothing deletes these records): the
        # key heard is a node gone, at once, before the records are read
        # again; so a request that reaches this daemon right after another
        # daemon answered the delete finds the node gone, however late the
        # read again answers.
        if key is not None:
            self.ids.add(key)

        def kept(failure: Failure) -> None:
            log.warn("forgotten nodes not read again ({why}); keeping what was known",
                     why=failure.getErrorMessage())

        ensureDeferred(self.load()).addErrback(kept)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self.ids

    async def add(self, nodeid: str) -> None:
        await self.records.put(FORGOTTEN, nodeid, {})
        self.ids.add(nodeid)


@implementer(INodeRegistry)
class ConfiguredRegistry:
    """
    The nodes of a list (configuration, a node file), minus the forgotten.

    :param source: the list, by node id, as it is now (a node file
        answers from memory and rereads itself when it changed).
    :param recent: the list as it was lately (a node file looked at once
        per reactor turn), for the lookups of single nodes; default
        ``source``.  A node it lacks is looked up in ``source``.
    :param forgotten: the nodes deleted from the pool.
    """

    def __init__(self, source: Callable[[], dict[str, NodeAddress]], forgotten: ForgottenNodes,
                 recent: Callable[[], dict[str, NodeAddress]] | None = None) -> None:
        self.source = source
        self.recent = recent or source
        self.forgotten = forgotten

    def list_nodes(self) -> Deferred[list[NodeAddress]]:
        return succeed([n for n in self.source().values() if n.id not in self.forgotten])

    def lookup(self, nodeid: str) -> NodeAddress:
        """
        The synchronous form of ``get_node`` (every request to a node asks it).

        :raises NotFound: unknown node.
        """
        node = self.recent().get(nodeid)
        if node is None:
            node = self.source().get(nodeid)
        if node is None or nodeid in self.forgotten:
            raise NotFound(f"node '{nodeid}' does not exist")
        return node

    def get_node(self, nodeid: str) -> Deferred[NodeAddress]:
        try:
            return succeed(self.lookup(nodeid))
        except NotFound as e:
            return fail(e)

    def forget_node(self, nodeid: str) -> Deferred[None]:
        try:
            self.lookup(nodeid)
        except NotFound as e:
            return fail(e)
        return ensureDeferred(self.forgotten.add(nodeid))


class NodeFile:
    """
    The nodes of a TOML file (``[[nodes]]`` tables), read again when the
    file changes (size, modification time or inode).  A file that is
    missing or broken after start keeps the last good list (and is logged);
    a missing file at start is an empty list until it appears.

    :meth:`nodes_now` looks at the file each time (a listing of the
    pool); :meth:`nodes_lately` once per reactor turn (the lookup of a
    node, on every request: an ``os.stat`` each was 4 % of a request under
    load, where one turn serves many requests).  A request never sees the
    file as it was before the turn it runs in.

    :param path: absolute path of the file.
    :param reactor: an ``IReactorTime`` whose turns ``nodes_lately``
        counts; ``None``: it looks each time, as ``nodes_now``.
    """

    def __init__(self, path: str, reactor: Any = None) -> None:
        self.path = path
        self.reactor = reactor
        self.nodes: dict[str, NodeAddress] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._reported: tuple[int, int, int] | None = None
        #: The turn of the last look has not ended yet.
        self._looked = False

    def load(self) -> None:
        """
        Read the file now (used at start).

        :raises ConfigError: the file exists but is not a valid node list.
        """
        stamp = self._stat()
        if stamp is None:
            log.warn("node file {path} does not exist (yet): no nodes", path=self.path)
            return
        self.nodes = self._read()
        self._stamp = stamp

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> dict[str, NodeAddress]:
        where = f"node file '{self.path}' (nodes_file)"
        data = read_file(self.path, where)
        problems = check({"type": "object", "properties": {"nodes": {"type": "array"}}},
                         data, [], where)
        if problems:
            raise ConfigError(problems)
        return {n.id: n for n in parse_nodes(data.get("nodes", []), where, ["nodes"])}

    def nodes_lately(self) -> dict[str, NodeAddress]:
        """The nodes, the file looked at first unless it was in this reactor turn."""
        if self._looked:
            return self.nodes
        if self.reactor is not None:
            self._looked = True
            self.reactor.callLater(0, self._turn_ended)
        return self.nodes_now()

    def _turn_ended(self) -> None:
        self._looked = False

    def nodes_now(self) -> dict[str, NodeAddress]:
        """The nodes, the file read again first if it changed."""
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self.nodes = self._read()
            except ConfigError as e:
                if stamp != self._reported:
                    self._reported = stamp
                    for line in e.problems:
                        log.error("{problem}; keeping the previous node list", problem=line)
            else:
                self._stamp = stamp
                log.info("read {count} node(s) from {path}", count=len(self.nodes), path=self.path)
        return self.nodes


def resolve(options: dict[str, Any], context: Any, forgotten: ForgottenNodes) -> INodeRegistry:
    """
    Build the registry the backend options ask for: exactly one of
    ``nodes``, ``nodes_file`` or ``registry``.

    :param context: the ``IBackendContext`` (``config_dir`` for a relative
        ``nodes_file``; ``backend()`` for ``registry``).
    :param forgotten: the nodes deleted from a configured pool (``nodes``,
        ``nodes_file``); another backend's registry keeps its own.
    :raises ConfigError: none or several sources, a bad node file, or a
        ``registry`` instance that does not provide ``INodeRegistryProvider``
        (messages are relative to the backend's table).
    """
    given = [k for k in ("nodes", "nodes_file", "registry") if k in options]
    if len(given) != 1:
        what = "none" if not given else ", ".join(given)
        raise ConfigError([f"give exactly one node source: 'nodes', 'nodes_file' or 'registry' (got {what})"])
    if "nodes" in options:
        # The options schema has checked the entries already.
        nodes = {n.id: n for n in parse_nodes(options["nodes"], "", ["nodes"])}
        return ConfiguredRegistry(lambda: nodes, forgotten)
    if "nodes_file" in options:
        path = os.path.join(str(context.config_dir), os.path.expanduser(options["nodes_file"]))
        node_file = NodeFile(os.path.normpath(path), context.reactor)
        node_file.load()
        return ConfiguredRegistry(node_file.nodes_now, forgotten, recent=node_file.nodes_lately)
    kind, _, instance = str(options["registry"]).partition(":")
    backend = context.backend(instance)
    if not INodeRegistryProvider.providedBy(backend):
        raise ConfigError([
            f"'registry': backend instance '{instance}' does not provide "
            f"INodeRegistry, so it cannot be a '{kind}' node source"
        ])
    registry: INodeRegistry = backend.node_registry()
    return registry
