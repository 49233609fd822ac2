"""
The AYS service templates the resource pool uses, as data.

Each template (an *actor*) has a role, a schema of data fields with
types, enum values and defaults, a parent link, consume links, a
dependency table between its actions and the set of actions it defines.
Values given in a blueprint are checked against the schema here; what the
actions do lives in ``plugins.ayssim.handlers``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

UNBOUNDED = 1_000_000

#: Actions every service has (empty unless a handler says otherwise).
DEFAULT_ACTIONS = (
    "input", "init", "install", "start", "stop", "monitor", "halt", "uninstall",
    "check_up", "check_down", "check_requirements", "cleanup", "data_export",
    "data_import", "removedata", "consume",
)

#: Which actions of the same service must have run before an action.
DEFAULT_DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "init": (),
    "install": ("init",),
    "start": ("install",),
    "monitor": ("start",),
    "stop": (),
    "uninstall": ("stop",),
    "delete": ("uninstall",),
}

#: Actions ordered against consumers (they go first); every other action
#: is ordered against producers (they go first).
TEARDOWN_ACTIONS = frozenset({"stop", "uninstall", "delete", "destroy"})


class SchemaError(Exception):
    """A value does not fit the template's schema."""


@dataclass(frozen=True)
class FieldType:
    """
    A capnp-like type: ``text``, ``bool``, ``int`` (with bounds), ``enum``
    (with values), ``list`` (with an item type) or ``struct`` (with fields).
    """

    kind: str
    name: str
    low: int = 0
    high: int = 0
    values: tuple[str, ...] = ()
    item: FieldType | None = None
    fields: tuple[Field, ...] = ()

    def zero(self) -> Any:
        """The default value of this type."""
        if self.kind == "text":
            return ""
        if self.kind == "bool":
            return False
        if self.kind == "int":
            return 0
        if self.kind == "enum":
            return self.values[0]
        if self.kind == "list":
            return []
        return {f.name: f.initial() for f in self.fields}

    def check(self, value: Any, where: str) -> Any:
        """
        :returns: ``value`` as stored (a fresh copy).
        :raises SchemaError: when it does not fit.
        """
        if value is None:
            return self.zero()
        if self.kind == "text":
            if not isinstance(value, str):
                raise SchemaError(f"{where}: expected text, got {_kind(value)} {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SchemaError(f"{where}: expected a boolean, got {_kind(value)} {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(f"{where}: expected {self.name}, got {_kind(value)} {value!r}")
            if not self.low <= value <= self.high:
                raise SchemaError(f"{where}: {value} is out of range for {self.name}")
            return value
        if self.kind == "enum":
            if not isinstance(value, str) or value not in self.values:
                raise SchemaError(
                    f"{where}: {value!r} is not one of {', '.join(self.values)}")
            return value
        if self.kind == "list":
            if not isinstance(value, list):
                raise SchemaError(f"{where}: expected a list, got {_kind(value)}")
            assert self.item is not None
            return [self.item.check(v, f"{where}[{n}]") for n, v in enumerate(value)]
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: expected a mapping, got {_kind(value)}")
        known = {f.name: f for f in self.fields}
        for key in value:
            if key not in known:
                raise SchemaError(f"{where}: no field {key!r} in {self.name}")
        return {name: f.type.check(value[name], f"{where}.{name}") if name in value else f.initial()
                for name, f in known.items()}


def _kind(value: Any) -> str:
    return type(value).__name__


@dataclass(frozen=True)
class Field:
    """A data field of a template (or of a struct)."""

    name: str
    type: FieldType
    default: Any = None

    def initial(self) -> Any:
        return copy.deepcopy(self.default) if self.default is not None else self.type.zero()


def _int(name: str, low: int, high: int) -> FieldType:
    return FieldType("int", name, low=low, high=high)


TEXT = FieldType("text", "Text")
BOOL = FieldType("bool", "Bool")
UINT16 = _int("UInt16", 0, 2**16 - 1)
UINT32 = _int("UInt32", 0, 2**32 - 1)
UINT64 = _int("UInt64", 0, 2**64 - 1)
INT32 = _int("Int32", -(2**31), 2**31 - 1)


def enum(*values: str) -> FieldType:
    return FieldType("enum", "enum", values=values)


def list_of(item: FieldType) -> FieldType:
    return FieldType("list", f"List({item.name})", item=item)


def struct(type_name: str, **fields: FieldType) -> FieldType:
    return FieldType("struct", type_name, fields=tuple(Field(k, v) for k, v in fields.items()))


@dataclass(frozen=True)
class Link:
    """
    A parent or consume link: services of ``role`` named by data ``field``
    (text or list of text), at least ``low`` and at most ``high`` of them.
    """

    role: str
    field: str
    low: int = 0
    high: int = UNBOUNDED


@dataclass(frozen=True)
class Template:
    """One actor."""

    actor: str
    fields: tuple[Field, ...]
    parent: Link | None = None
    consumes: tuple[Link, ...] = ()
    own_actions: frozenset[str] = frozenset()
    dependencies: Mapping[str, tuple[str, ...]] = dataclass_field(
        default_factory=lambda: DEFAULT_DEPENDENCIES)

    @property
    def role(self) -> str:
        """The actor name up to its first dot."""
        return self.actor.split(".", 1)[0]

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action a service of this actor has."""
        return DEFAULT_ACTIONS + tuple(sorted(self.own_actions - set(DEFAULT_ACTIONS)))

    def schema_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def initial_data(self) -> dict[str, Any]:
        return {f.name: f.initial() for f in self.fields}

    def check(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """
        The data of a new service: every field, given ones checked.

        :raises SchemaError: for an unknown field or a value that does not fit.
        """
        data = self.initial_data()
        for name, value in arguments.items():
            f = self.schema_field(name)
            if f is None:
                raise SchemaError(f"argument {name!r} is not in the schema of {self.actor}")
            data[name] = f.type.check(value, name) if value is not None else f.initial()
        return data

    def prerequisites(self, action: str) -> tuple[str, ...]:
        return tuple(self.dependencies.get(action, ()))

    def matches(self, role: str) -> bool:
        """Whether the path role ``role`` names this actor."""
        return self.actor == role or self.actor.startswith(role + ".")


def _template(actor: str, fields: Iterable[tuple[str, FieldType] | Field], **kw: Any) -> Template:
    built = tuple(f if isinstance(f, Field) else Field(*f) for f in fields)
    return Template(actor, built, **kw)


PROCESS = struct(
    "Process", name=TEXT, pwd=TEXT, args=list_of(TEXT), environment=list_of(TEXT), stdin=TEXT)
NIC_CONFIG = struct("NicConfig", dhcp=BOOL, cidr=TEXT, gateway=TEXT, dns=list_of(TEXT))
CONTAINER_NIC = struct(
    "Nic", type=enum("default", "zerotier", "vlan", "vxlan", "bridge"), id=TEXT, config=NIC_CONFIG)
MOUNT = struct("Mount", filesystem=TEXT, target=TEXT)
BRIDGE_SETTING = struct("Setting", cidr=TEXT, start=TEXT, end=TEXT)
PROFILE = enum("raid0", "raid1", "raid5", "raid6", "raid10", "dup", "single")
PARTITION = struct(
    "PartitionMap", device=TEXT, partUUID=TEXT,
    status=enum("healthy", "degraded", "removing", "unknown"))
ROUTE = struct("Route", flags=UINT64, metric=UINT64, target=TEXT, via=TEXT)
VM_NIC = struct("VmNic", id=TEXT, type=enum("default", "vlan", "vxlan", "bridge"), macaddress=TEXT)
VM_DISK = struct("VmDisk", vdiskid=TEXT, maxIOps=UINT32)

NODE = Link("node", "node", 1, 1)

TEMPLATES: tuple[Template, ...] = (
    _template(
        "node.g8os",
        [("id", TEXT), ("status", enum("running", "halted")), ("hostname", TEXT),
         ("networks", list_of(TEXT)), ("redisAddr", TEXT), Field("redisPort", UINT32, 6379),
         ("redisPassword", TEXT)],
        consumes=(Link("network", "networks", 0, 9999),),
        own_actions=frozenset({"reboot"}),
    ),
    _template(
        "container",
        [("node", TEXT), ("status", enum("halted", "running")), ("hostname", TEXT), ("flist", TEXT),
         ("initProcesses", list_of(PROCESS)), ("filesystems", list_of(TEXT)),
         ("bridges", list_of(TEXT)), ("nics", list_of(CONTAINER_NIC)), ("hostNetworking", BOOL),
         ("ports", list_of(TEXT)), ("storage", TEXT), ("mounts", list_of(MOUNT))],
        parent=NODE,
        consumes=(Link("filesystem", "filesystems"), Link("bridge", "bridges")),
    ),
    _template(
        "bridge",
        [("hwaddr", TEXT), ("networkMode", enum("none", "static", "dnsmasq")), ("nat", BOOL),
         ("setting", BRIDGE_SETTING), ("status", enum("up", "down")), ("node", TEXT)],
        parent=NODE,
        own_actions=frozenset({"delete"}),
    ),
    _template(
        "storagepool",
        [("status", enum("healthy", "degraded", "error", "unknown")), ("totalCapacity", UINT64),
         ("freeCapacity", UINT64), ("metadataProfile", PROFILE), ("dataProfile", PROFILE),
         ("mountpoint", TEXT), ("devices", list_of(PARTITION)), ("node", TEXT)],
        parent=NODE,
        own_actions=frozenset({"delete", "processChange"}),
    ),
    _template(
        "filesystem",
        [("storagePool", TEXT), ("name", TEXT), ("sizeOnDisk", UINT32), ("readOnly", BOOL),
         ("quota", UINT32), ("mountpoint", TEXT)],
        parent=Link("storagepool", "storagePool", 1, 1),
        own_actions=frozenset({"delete"}),
    ),
    _template(
        "fssnapshot",
        [("filesystem", TEXT), ("name", TEXT), ("path", TEXT), ("sizeOnDisk", UINT32),
         ("timestamp", UINT32)],
        parent=Link("filesystem", "filesystem", 1, 1),
        own_actions=frozenset({"delete", "rollback"}),
        dependencies={"init": (), "install": ("init",), "delete": ()},
    ),
    _template(
        "zerotier",
        [("nwid", TEXT), ("node", TEXT), ("mac", TEXT), ("name", TEXT), ("portDeviceName", TEXT),
         ("status", TEXT), ("allowDefault", BOOL), ("allowGlobal", BOOL), ("allowManaged", BOOL),
         ("bridge", BOOL), ("broadcastEnabled", BOOL), ("dhcp", BOOL),
         ("assignedAddresses", list_of(TEXT)), ("mtu", UINT64), ("netconfRevision", UINT64),
         ("portError", UINT64), ("routes", list_of(ROUTE)), ("type", enum("private", "public"))],
        parent=NODE,
        own_actions=frozenset({"delete"}),
    ),
    _template(
        "vm",
        [("node", TEXT),
         ("status", enum("deploying", "error", "halted", "running", "paused", "halting",
                         "migrating", "starting")),
         ("id", TEXT), ("memory", UINT16), ("cpu", UINT16), ("nics", list_of(VM_NIC)),
         ("disks", list_of(VM_DISK)), ("vdisks", list_of(TEXT)), ("userCloudInit", TEXT),
         ("systemCloudInit", TEXT), Field("vnc", INT32, -1)],
        parent=NODE,
        consumes=(Link("vdisk", "vdisks"),),
        own_actions=frozenset({"pause", "resume", "shutdown", "migrate", "processChange"}),
    ),
    _template(
        "vdisk",
        [("size", UINT64), ("blocksize", UINT32), ("type", enum("boot", "db", "cache", "tmp")),
         ("templateVdisk", TEXT), ("readOnly", BOOL),
         ("status", enum("halted", "running", "rollingback")), ("storageCluster", TEXT),
         ("tlogStoragecluster", TEXT)],
        consumes=(Link("storage_cluster", "storageCluster", 1, 1),
                  Link("storage_cluster", "tlogStoragecluster", 1, 1)),
        own_actions=frozenset({"pause", "rollback", "resize", "processChange"}),
    ),
    _template(
        "storage_cluster",
        [("label", TEXT), ("status", enum("empty", "deploying", "ready", "error")),
         Field("nrServer", UINT32, 256), Field("diskType", enum("nvme", "ssd", "hdd", "archive"), "ssd"),
         ("filesystems", list_of(TEXT)), ("ardbs", list_of(TEXT)), ("nodes", list_of(TEXT))],
        consumes=(Link("node", "nodes", 1), Link("ardb", "ardbs", 0, 257),
                  Link("filesystem", "filesystems", 0, 257)),
        own_actions=frozenset({"delete"}),
    ),
    _template(
        "ardb",
        [("homeDir", TEXT), ("bind", TEXT), ("master", TEXT), ("container", TEXT)],
        parent=Link("container", "container", 1, 1),
        consumes=(Link("ardb", "master", 0, 1),),
    ),
    _template(
        "nbdserver",
        [("backendControllerUrl", TEXT), ("vdiskControllerUrl", TEXT), ("socketPath", TEXT),
         ("container", TEXT)],
        parent=Link("container", "container", 1, 1),
    ),
    _template(
        "bootstrap.g8os",
        [("zerotierNetID", TEXT), ("zerotierToken", TEXT), ("networks", list_of(TEXT))],
        consumes=(Link("network", "networks"),),
        own_actions=frozenset({"bootstrap", "delete_node", "processChange"}),
    ),
    _template(
        "network.g8os", [("vlanTag", UINT16), ("cidr", TEXT)],
        own_actions=frozenset({"configure", "getAddresses"}),
    ),
    _template("network.publicstorage", [], own_actions=frozenset({"configure"})),
    _template("grid_config", [("id", TEXT), ("apiURL", TEXT)]),
)


class Catalogue:
    """The templates by actor name."""

    def __init__(self, templates: Iterable[Template] = TEMPLATES) -> None:
        self.templates = {t.actor: t for t in templates}

    def get(self, actor: str) -> Template | None:
        return self.templates.get(actor)
