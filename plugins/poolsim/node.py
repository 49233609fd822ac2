"""
A simulated node: core0 with containers, bridges, disks and btrfs pools,
ZeroTier networks and KVM domains, and a reboot that takes it away for a
moment.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed

from plugins.core0 import shapes
from plugins.poolsim import facts
from plugins.poolsim.agent import Agent, accepted_arguments
from plugins.poolsim.container import DEFAULT_STORAGE, Container
from plugins.poolsim.jobs import DUPLICATE_ID, SUCCESS, CommandError, Job, ProgramRunner, rejected

NIC_TYPES = ("default", "bridge", "zerotier", "vlan", "vxlan")
BTRFS_PROFILES = ("raid0", "raid1", "raid5", "raid6", "raid10", "dup", "single")
DEFAULT_BRIDGE = "core0"
ZEROTIER_ID = re.compile(r"^[0-9a-fA-F]{16}$")

#: What a real node refuses, so the model refuses it too (and never makes
#: anything in proportion to a number it did not check): Linux interface
#: names are at most 15 bytes (IFNAMSIZ 16 with the NUL), hostnames 64
#: (HOST_NAME_MAX); KVM gives a VM at most 1024 vCPUs (KVM_MAX_VCPUS on
#: x86-64) and x86-64 Linux addresses 64 TiB; a PCI bus has 32 slots, one
#: per virtio nic or disk; VLAN tags are 0 to 4094, VXLAN ids 24 bits.
IFNAME_MAX = 15
HOST_NAME_MAX = 64
KVM_MAX_VCPUS = 1024
VM_MAX_MEMORY_MIB = 64 * 1024 * 1024
PCI_SLOTS = 32
VLAN_TAGS = range(0, 4095)
VXLAN_IDS = range(0, 2**24)
PORTS = range(1, 65536)

#: Commands that core0 runs as extensions (process-shaped results).
EXTENSIONS = (
    "disk.mktable", "disk.mkpart", "disk.rmpart", "disk.mount", "disk.umount",
    "zerotier.join", "zerotier.leave", "zerotier.list",
)


@dataclass
class Btrfs:
    """A btrfs filesystem made of partitions of the node's disks."""

    label: str
    uuid: str
    metadata: str
    data: str
    devices: list[str]
    mountpoint: str = ""
    used: int = 16 * 1024 * 1024
    #: subvolume path -> {"id", "quota", "created", "read_only"}
    subvolumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_subvolume: int = 256


@dataclass
class Domain:
    """A KVM domain."""

    id: int
    uuid: str
    name: str
    cpu: int
    memory: int
    state: str = "running"
    vnc: int = -1
    nics: list[dict[str, Any]] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)


def check_interface_name(name: str, what: str) -> None:
    """:raises CommandError: ``name`` is not a Linux interface name (1 to 15 bytes, no '/' or space)."""
    if not name or len(name.encode()) > IFNAME_MAX or "/" in name or any(c.isspace() for c in name):
        raise CommandError(f"{what} '{name[:IFNAME_MAX + 1]}' is not a valid interface name "
                           f"(1 to {IFNAME_MAX} bytes)")


def _number_in(text: Any, allowed: range) -> bool:
    return isinstance(text, str) and text.isascii() and text.isdigit() and int(text) in allowed


def check_nic(nic: dict[str, Any]) -> None:
    """:raises CommandError: the nic's ``id`` is not what its ``type`` needs on Linux."""
    kind, nic_id = nic.get("type"), nic.get("id") or ""
    if kind == "vlan" and not _number_in(nic_id, VLAN_TAGS):
        raise CommandError(f"invalid vlan tag '{str(nic_id)[:16]}' (0 to 4094)")
    if kind == "vxlan" and not _number_in(nic_id, VXLAN_IDS):
        raise CommandError(f"invalid vxlan id '{str(nic_id)[:16]}' (0 to {2**24 - 1})")
    if kind == "zerotier" and not ZEROTIER_ID.match(str(nic_id)):
        raise CommandError(f"invalid zerotier network id '{str(nic_id)[:32]}'")
    if kind == "bridge":
        check_interface_name(str(nic_id), "bridge")


def _bridge_mac(index: int, count: int) -> str:
    return f"02:42:{(index >> 8) & 255:02x}:{index & 255:02x}:{count:02x}:01"


class Node(Agent):
    """
    :ivar node_id: the node's id (management MAC without colons).
    :ivar status: ``running``, or ``halted`` while it reboots.
    :ivar address: what the pool shows as the node's ``ipaddress``.
    """

    def __init__(
        self,
        clock: Any,
        index: int,
        node_id: str,
        hostname: str,
        runner: ProgramRunner | None = None,
        reboot_seconds: float = 1.0,
        first_container_id: int = 1,
    ) -> None:
        super().__init__(clock, hostname, runner=runner)
        self.index = index
        self.node_id = node_id
        self.node_key = node_id
        self.address = facts.address(index)
        self.status = "running"
        self.reboot_seconds = reboot_seconds
        self._cpus = facts.cpus(index)
        self._mem = facts.mem(index)
        self._nics = facts.nics(node_id, index)
        self.next_pid = 100
        self.containers: dict[int, Container] = {}
        self.next_container_id = first_container_id
        self.bridges: dict[str, dict[str, Any]] = {DEFAULT_BRIDGE: {"name": DEFAULT_BRIDGE}}
        self.disks: list[dict[str, Any]] = facts.disks(index)
        self.btrfs: dict[str, Btrfs] = {}
        self.mounts: dict[str, tuple[str, str]] = {"/dev/sda1": ("/var/cache", "rw,relatime")}
        self.zerotiers: dict[str, dict[str, Any]] = {}
        self.domains: dict[str, Domain] = {}
        self.next_domain_id = 1
        self._waiting: list[Deferred[None]] = []
        #: Called when the node has rebooted (caches of containers must go).
        self.reboot_listeners: list[Callable[[Node], None]] = []
        for path in ("/etc", "/var/cache/containers", "/mnt", "/tmp"):
            self.files.mkdir(path)
        self.files.put("/etc/hostname", (hostname + "\n").encode())
        redis = Job(self, "redis.public", "core.system",
                    {"name": "redis-server", "args": ["0.0.0.0:6379"]}, protected=True)
        redis.process = self.spawn("redis-server", "redis-server 0.0.0.0:6379", job=redis)
        self.jobs[redis.id] = redis

    # Availability ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.status == "running"

    def when_running(self) -> Deferred[None]:
        """Fires once the node runs (at once unless it is rebooting)."""
        if self.running:
            return succeed(None)
        d: Deferred[None] = Deferred(lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d

    def reboot(self) -> None:
        """
        Go down for ``reboot_seconds``: the node's own jobs are killed;
        containers, pools, bridges, networks and VMs come back as they were
        (in the original the orchestrator restores them).
        """
        if not self.running:
            return
        self.status = "halted"
        for job in list(self.jobs.values()):
            if not job.protected and not job.id.startswith("core-"):
                job.finish("KILLED", publish=job.command != "core.reboot")
        self.clock.callLater(self.reboot_seconds, self._booted)

    def _booted(self) -> None:
        self.status = "running"
        self.boot_time = int(self.clock.seconds())
        for listener in list(self.reboot_listeners):
            listener(self)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    # Commands ------------------------------------------------------------------

    def builtins(self) -> dict[str, Callable[..., Any]]:
        commands = super().builtins()
        commands.update({
            "corex.create": self.corex_create,
            "corex.list": self.corex_list,
            "corex.find": self.corex_find,
            "corex.terminate": self.corex_terminate,
            "corex.dispatch": self.corex_dispatch,
            "bridge.create": self.bridge_create,
            "bridge.list": self.bridge_list,
            "bridge.delete": self.bridge_delete,
            "disk.list": self.disk_list,
            "disk.getinfo": self.disk_getinfo,
            "disk.mktable": self.disk_mktable,
            "disk.mkpart": self.disk_mkpart,
            "disk.rmpart": self.disk_rmpart,
            "disk.mount": self.disk_mount,
            "disk.umount": self.disk_umount,
            "btrfs.create": self.btrfs_create,
            "btrfs.list": self.btrfs_list,
            "btrfs.info": self.btrfs_info,
            "btrfs.device_add": self.btrfs_device_add,
            "btrfs.device_remove": self.btrfs_device_remove,
            "btrfs.subvol_create": self.btrfs_subvol_create,
            "btrfs.subvol_delete": self.btrfs_subvol_delete,
            "btrfs.subvol_list": self.btrfs_subvol_list,
            "btrfs.subvol_quota": self.btrfs_subvol_quota,
            "btrfs.subvol_snapshot": self.btrfs_subvol_snapshot,
            "zerotier.join": self.zerotier_join,
            "zerotier.leave": self.zerotier_leave,
            "zerotier.list": self.zerotier_list,
            "kvm.create": self.kvm_create,
            "kvm.destroy": self.kvm_destroy,
            "kvm.shutdown": self.kvm_shutdown,
            "kvm.reboot": self.kvm_reboot,
            "kvm.reset": self.kvm_reboot,
            "kvm.pause": self.kvm_pause,
            "kvm.resume": self.kvm_resume,
            "kvm.info": self.kvm_info,
            "kvm.infops": self.kvm_infops,
            "kvm.list": self.kvm_list,
            "kvm.attach_disk": self.kvm_attach_disk,
            "kvm.detach_disk": self.kvm_detach_disk,
            "kvm.add_nic": self.kvm_add_nic,
            "kvm.remove_nic": self.kvm_remove_nic,
            "kvm.limit_disk_io": self.kvm_limit_disk_io,
            "kvm.migrate": self.kvm_migrate,
        })
        return commands

    def execute(self, command: str, arguments: dict[str, Any] | None,
                job_id: str | None = None, queue: str = "", tags: str = "",
                max_time: int = 0, stream: bool = False) -> Job:
        if command not in EXTENSIONS and command != "core.reboot":
            return super().execute(command, arguments, job_id, queue, tags, max_time, stream)
        job_id = job_id or str(uuid.uuid4())
        if job_id in self.jobs:
            return rejected(self, job_id, command, DUPLICATE_ID, "duplicate job id", tags)
        job = Job(self, job_id, command, arguments or {}, tags=tags)
        self.job_started(job)
        if command == "core.reboot":
            # The job runs until the reboot kills it; core0 never answers it.
            self.clock.callLater(0, self.reboot)
        else:
            self._extension(job)
        return job

    def _extension(self, job: Job) -> None:
        """Run an extension command: a process-shaped result."""
        try:
            function = self.commands[job.command]
            value = function(**accepted_arguments(function, job.arguments))
        except (CommandError, TypeError) as e:
            job.write(2, f"{e}\n")
            job.finish("ERROR")
        else:
            if job.command == "zerotier.list":
                job.finish(SUCCESS, "\n" + json.dumps(value), level=20)
            else:
                job.finish(SUCCESS)

    def info_disk(self) -> list[dict[str, Any]]:
        mounts = super().info_disk()
        for device, (target, opts) in sorted(self.mounts.items(), key=lambda m: m[1][0]):
            mounts.append({"device": device, "mountpoint": target, "fstype": "btrfs", "opts": opts})
        return mounts

    # Containers --------------------------------------------------------------------

    def corex_create(
        self,
        root: str = "",
        mount: dict[str, str] | None = None,
        host_network: bool = False,
        nics: list[dict[str, Any]] | None = None,
        port: dict[str, int] | None = None,
        privileged: bool = False,
        hostname: str = "",
        storage: str = "",
        tags: list[str] | None = None,
        network: dict[str, Any] | None = None,
    ) -> int:
        if not root:
            raise CommandError("root plist is required")
        for source, target in (mount or {}).items():
            if not source.startswith(("http://", "https://")) and not self.files.exists(source):
                raise CommandError(f"host path '{source}' does not exist")
            if not str(target).startswith("/"):
                raise CommandError(f"mount target '{target}' must be absolute")
        if len((hostname or "").encode()) > HOST_NAME_MAX:
            raise CommandError(f"hostname is longer than {HOST_NAME_MAX} bytes")
        if nics is None and network:
            nics = self._legacy_nics(network)
        defaults = 0
        bridges: set[str] = set()
        for nic in nics or []:
            kind = nic.get("type")
            if kind not in NIC_TYPES:
                raise CommandError(f"unsupported network type '{kind}'")
            check_nic(nic)
            if kind == "default":
                defaults += 1
            if kind == "bridge":
                name = nic.get("id") or ""
                if name == DEFAULT_BRIDGE:
                    raise CommandError("cannot use the default bridge 'core0'")
                if name not in self.bridges:
                    raise CommandError(f"bridge '{name}' does not exist")
                if name in bridges:
                    raise CommandError(f"bridge '{name}' used more than once")
                bridges.add(name)
        if defaults > 1:
            raise CommandError("only one default network is allowed")
        for host_port, guest_port in (port or {}).items():
            if not (_number_in(str(host_port), PORTS) and _number_in(str(guest_port), PORTS)):
                raise CommandError(f"invalid port mapping {str(host_port)[:8]}:{str(guest_port)[:8]}")
        arguments = {
            "root": root,
            "mount": mount,
            "host_network": bool(host_network),
            "nics": [self._full_nic(n) for n in nics] if nics is not None else None,
            "port": port,
            "privileged": bool(privileged),
            "hostname": hostname,
            "storage": storage or DEFAULT_STORAGE,
            "tags": tags,
        }
        container_id = self.next_container_id
        self.next_container_id += 1
        container = Container(self, container_id, arguments)
        self.containers[container_id] = container
        self.jobs[container.runner_job.id] = container.runner_job

        def stopped(result: dict[str, Any]) -> dict[str, Any]:
            # After the container's own callback: its jobs are killed by then.
            self.container_stopped(container)
            return result

        container.runner_job.done.addCallback(stopped)
        return container_id

    @staticmethod
    def _full_nic(nic: dict[str, Any]) -> dict[str, Any]:
        config = nic.get("config") or {}
        return {
            "type": nic.get("type", ""),
            "id": nic.get("id", ""),
            "hwaddr": nic.get("hwaddr", ""),
            "config": {
                "dhcp": bool(config.get("dhcp", False)),
                "cidr": config.get("cidr", ""),
                "gateway": config.get("gateway", ""),
                "dns": config.get("dns"),
            },
        }

    @staticmethod
    def _legacy_nics(network: dict[str, Any]) -> list[dict[str, Any]]:
        """Map the older agent's ``network`` argument (g8core 1.0.0) to nics."""
        nics: list[dict[str, Any]] = []
        if network.get("zerotier"):
            nics.append({"type": "zerotier", "id": network["zerotier"]})
        for pair in network.get("bridge") or []:
            name, setting = ([*list(pair), "none"])[:2]
            config: dict[str, Any] = {"dhcp": setting == "dhcp"}
            if setting not in ("none", "dhcp"):
                config["cidr"] = setting
            nics.append({"type": "bridge", "id": name, "config": config})
        return nics

    def container(self, container_id: int) -> Container:
        try:
            return self.containers[int(container_id)]
        except (KeyError, ValueError, TypeError):
            raise CommandError("container does not exist") from None

    def container_stopped(self, container: Container) -> None:
        self.containers.pop(container.container_id, None)

    def corex_list(self) -> dict[str, Any]:
        return {str(cid): c.corex_entry() for cid, c in sorted(self.containers.items())}

    def corex_find(self, tags: list[str] | None = None) -> dict[str, Any]:
        wanted = set(tags or [])
        return {
            str(cid): c.corex_entry()
            for cid, c in sorted(self.containers.items())
            if wanted <= set(c.tags)
        }

    def corex_terminate(self, container: int) -> None:
        if int(container) not in self.containers:
            raise CommandError(f"no container with id '{container}'")
        self.containers[int(container)].terminate()

    def corex_dispatch(self, container: int, command: dict[str, Any]) -> str:
        if not container:
            raise CommandError("invalid container id")
        target = self.container(container)
        if not isinstance(command, dict):
            raise CommandError("invalid command")
        job = target.execute(
            str(command.get("command", "")),
            command.get("arguments"),
            job_id=str(uuid.uuid4()),
            queue=command.get("queue") or "",
            tags=command.get("tags") or "",
            max_time=command.get("max_time") or 0,
            stream=command.get("stream") is True,
        )
        return job.id

    # Bridges -------------------------------------------------------------------------

    def bridge_create(self, name: str, hwaddr: str = "", network: dict[str, Any] | None = None) -> None:
        if not name:
            raise CommandError("bridge name is required")
        check_interface_name(name, "bridge name")
        if name in self.bridges:
            raise CommandError(f"bridge with name '{name}' already exists")
        network = network or {}
        mode = network.get("mode") or ""
        if mode not in ("", "none", "static", "dnsmasq"):
            raise CommandError(f"unknown network mode '{mode}'")
        self.bridges[name] = {
            "name": name,
            "hwaddr": hwaddr or _bridge_mac(self.index, len(self.bridges)),
            "network": copy.deepcopy(network),
        }

    def bridge_list(self) -> list[str]:
        return sorted(self.bridges)

    def bridge_delete(self, name: str) -> None:
        if name == DEFAULT_BRIDGE or name not in self.bridges:
            raise CommandError(f"bridge '{name}' does not exist")
        del self.bridges[name]

    # Disks and btrfs -------------------------------------------------------------

    def disk_list(self) -> dict[str, Any]:
        return {"blockdevices": copy.deepcopy(self.disks)}

    def _disk(self, name: str) -> dict[str, Any]:
        """
        A whole disk by its bare name (``sda``, as core0's backends send it)
        or its device path (``/dev/sda``, as g8core 1.0.0 documents it):
        parted takes either.
        """
        bare = name[len("/dev/"):] if name.startswith("/dev/") else name
        for disk in self.disks:
            if disk["name"] == bare:
                return disk
        raise CommandError(f"disk '{name}' not found")

    def block_device(self, path: str) -> dict[str, Any] | None:
        """The disk or partition at ``/dev/<kname>``, if any (the model's own entry)."""
        return shapes.block_device({"blockdevices": self.disks}, path)

    def disk_getinfo(self, disk: str, part: str = "") -> dict[str, Any]:
        entry = self._disk(disk)
        if part:
            parts = [p for p in entry.get("children") or [] if p["name"] == part]
            if not parts:
                raise CommandError(f"partition '{part}' not found")
            entry = parts[0]
        info = copy.deepcopy(entry)
        size = int(entry["size"])
        free = [] if entry.get("children") else [{"start": 1048576, "end": size, "size": size - 1048576}]
        info.update(start=0, end=size, size=size, blocksize=512, table="gpt", free=free)
        return info

    def _in_use(self, device_path: str) -> bool:
        return device_path in self.mounts or any(device_path in fs.devices for fs in self.btrfs.values())

    def disk_mktable(self, disk: str, table_type: str = "gpt") -> None:
        entry = self._disk(disk)
        for part in entry.get("children") or []:
            path = f"/dev/{part['kname']}"
            if path in self.mounts:
                raise CommandError(f"device {path} is busy")
        for part in entry.get("children") or []:
            self._drop_device(f"/dev/{part['kname']}")
        entry.pop("children", None)

    def _drop_device(self, path: str) -> None:
        for label, fs in list(self.btrfs.items()):
            if path in fs.devices:
                fs.devices.remove(path)
                if not fs.devices:
                    del self.btrfs[label]

    def disk_mkpart(
        self, disk: str, start: Any = "1m", end: Any = "100%", part_type: str = "primary"
    ) -> None:
        entry = self._disk(disk)
        if entry.get("children"):
            raise CommandError(f"disk '{disk}' has no free space")
        entry["children"] = [facts.partition(entry, str(uuid.uuid4()), None)]

    def disk_rmpart(self, disk: str, number: int = 1) -> None:
        entry = self._disk(disk)
        children = entry.get("children") or []
        if not 1 <= int(number) <= len(children):
            raise CommandError(f"partition {number} not found")
        part = children.pop(int(number) - 1)
        self._drop_device(f"/dev/{part['kname']}")
        if not children:
            entry.pop("children", None)

    def disk_mount(self, source: str, target: str, options: str = "") -> None:
        if self.block_device(source) is None:
            raise CommandError(f"special device {source} does not exist")
        if source in self.mounts:
            raise CommandError(f"{source} is already mounted")
        self.files.mkdir(target)
        self.mounts[source] = (target, options or "rw,relatime")
        for fs in self.btrfs.values():
            if source in fs.devices:
                for device in fs.devices:
                    self.mounts[device] = (target, options or "rw,relatime")
                fs.mountpoint = target
        self._set_partition("mountpoint", source, target)

    def disk_umount(self, source: str) -> None:
        mount = self.mounts.get(source)
        if mount is None:
            raise CommandError(f"{source}: not mounted")
        target = mount[0]
        for device, (t, _) in list(self.mounts.items()):
            if t == target:
                del self.mounts[device]
                self._set_partition("mountpoint", device, None)
        for fs in self.btrfs.values():
            if fs.mountpoint == target:
                fs.mountpoint = ""

    def _set_partition(self, key: str, device: str, value: Any) -> None:
        entry = self.block_device(device)
        if entry is not None:
            entry[key] = value

    def btrfs_create(self, label: str, devices: list[str], metadata: str = "single",
                     data: str = "single", overwrite: bool = False) -> None:
        if not devices:
            raise CommandError("no devices given")
        # An empty profile (g8core 1.0.0's default) leaves it to mkfs.btrfs.
        metadata = metadata or ("dup" if len(devices) == 1 else "raid1")
        data = data or "single"
        for profile in (metadata, data):
            if profile not in BTRFS_PROFILES:
                raise CommandError(f"unknown profile '{profile}'")
        if label in self.btrfs:
            raise CommandError(f"a btrfs filesystem labelled '{label}' exists")
        for path in devices:
            if self.block_device(path) is None:
                raise CommandError(f"device {path} does not exist")
            if self._in_use(path):
                raise CommandError(f"device {path} is in use")
        self.btrfs[label] = Btrfs(label, str(uuid.uuid4()), metadata, data, list(devices))
        for path in devices:
            self._set_partition("fstype", path, "btrfs")
            self._set_partition("label", path, label)

    def _device_size(self, path: str) -> int:
        entry = self.block_device(path)
        return int(entry["size"]) if entry else 0

    def _btrfs_entry(self, fs: Btrfs) -> dict[str, Any]:
        share = fs.used // max(1, len(fs.devices))
        return {
            "label": fs.label,
            "uuid": fs.uuid,
            "total_devices": len(fs.devices),
            "used": fs.used,
            "devices": [
                {"dev_id": n + 1, "size": self._device_size(path), "used": share, "path": path}
                for n, path in enumerate(fs.devices)
            ],
        }

    def btrfs_list(self) -> list[dict[str, Any]]:
        return [self._btrfs_entry(fs) for fs in self.btrfs.values()]

    def _mounted(self, mountpoint: str) -> Btrfs:
        for fs in self.btrfs.values():
            if fs.mountpoint and fs.mountpoint == mountpoint.rstrip("/"):
                return fs
        raise CommandError(f"no btrfs filesystem mounted at '{mountpoint}'")

    def btrfs_info(self, mountpoint: str) -> dict[str, Any]:
        fs = self._mounted(mountpoint)
        entry = self._btrfs_entry(fs)
        total = sum(self._device_size(p) for p in fs.devices)
        entry.update(
            data={"profile": fs.data, "total": total, "used": fs.used},
            system={"profile": fs.metadata, "total": 8 * 1024 * 1024, "used": 16384},
            metadata={"profile": fs.metadata, "total": 256 * 1024 * 1024, "used": 114688},
            globalreserve={"profile": "single", "total": 16 * 1024 * 1024, "used": 0},
        )
        return entry

    def btrfs_device_add(self, mountpoint: str, devices: list[str]) -> None:
        fs = self._mounted(mountpoint)
        for path in devices:
            if self.block_device(path) is None:
                raise CommandError(f"device {path} does not exist")
            if self._in_use(path):
                raise CommandError(f"device {path} is in use")
        for path in devices:
            fs.devices.append(path)
            self.mounts[path] = (fs.mountpoint, "rw,relatime")
            self._set_partition("fstype", path, "btrfs")

    def btrfs_device_remove(self, mountpoint: str, devices: list[str]) -> None:
        fs = self._mounted(mountpoint)
        for path in devices:
            if path not in fs.devices:
                raise CommandError(f"device {path} is not part of the filesystem")
        if len(fs.devices) <= len(devices):
            raise CommandError("cannot remove every device of a filesystem")
        for path in devices:
            fs.devices.remove(path)
            self.mounts.pop(path, None)
            self._set_partition("fstype", path, None)

    def _subvolume_fs(self, path: str) -> Btrfs:
        path = posixpath.normpath(path)
        for fs in self.btrfs.values():
            if fs.mountpoint and path.startswith(fs.mountpoint + "/"):
                return fs
        raise CommandError(f"'{path}' is not inside a mounted btrfs filesystem")

    def btrfs_subvol_create(self, path: str) -> None:
        fs = self._subvolume_fs(path)
        if path in fs.subvolumes or self.files.exists(path):
            raise CommandError(f"target path '{path}' already exists")
        if not self.files.exists(posixpath.dirname(path)):
            raise CommandError(f"parent of '{path}' does not exist")
        fs.subvolumes[path] = {"id": fs.next_subvolume, "quota": 0,
                               "created": int(self.clock.seconds()), "read_only": False}
        fs.next_subvolume += 1
        self.files.mkdir(path)

    def btrfs_subvol_delete(self, path: str) -> None:
        fs = self._subvolume_fs(path)
        if path not in fs.subvolumes:
            raise CommandError(f"'{path}' is not a subvolume")
        del fs.subvolumes[path]
        self.files.remove(path)

    def btrfs_subvol_list(self, path: str) -> list[dict[str, Any]]:
        fs = self._mounted(path)
        return [
            {"ID": sv["id"], "Gen": sv["id"] + 10, "TopLevel": 5,
             "Path": posixpath.relpath(p, fs.mountpoint)}
            for p, sv in sorted(fs.subvolumes.items())
        ]

    def btrfs_subvol_quota(self, path: str, limit: Any) -> None:
        fs = self._subvolume_fs(path)
        if path not in fs.subvolumes:
            raise CommandError(f"'{path}' is not a subvolume")
        fs.subvolumes[path]["quota"] = limit

    def btrfs_subvol_snapshot(self, source: str, destination: str, read_only: bool = False) -> None:
        fs = self._subvolume_fs(source)
        if source not in fs.subvolumes:
            raise CommandError(f"'{source}' is not a subvolume")
        if destination in fs.subvolumes or self.files.exists(destination):
            raise CommandError(f"target path '{destination}' already exists")
        self.files.mkdir(posixpath.dirname(destination))
        fs.subvolumes[destination] = {"id": fs.next_subvolume, "quota": 0,
                                      "created": int(self.clock.seconds()), "read_only": read_only}
        fs.next_subvolume += 1
        self.files.mkdir(destination)
        prefix = source.rstrip("/") + "/"
        for path, content in list(self.files.files.items()):
            if path.startswith(prefix):
                self.files.put(destination + path[len(source):], bytes(content))

    # ZeroTier ---------------------------------------------------------------------

    def zerotier_join(self, network: str) -> None:
        if not ZEROTIER_ID.match(network or ""):
            raise CommandError(f"invalid network id '{network}'")
        if network in self.zerotiers:
            return
        n = len(self.zerotiers) + 1
        self.zerotiers[network] = {
            "allowDefault": False,
            "allowGlobal": False,
            "allowManaged": True,
            "assignedAddresses": [f"10.147.{self.index % 250}.{n}/16"],
            "bridge": False,
            "broadcastEnabled": True,
            "dhcp": False,
            "id": network,
            "mac": f"ee:{self.index % 256:02x}:00:00:{n:02x}:01",
            "mtu": 2800,
            "name": f"net-{network[-6:]}",
            "netconfRevision": 3,
            "nwid": network,
            "portDeviceName": f"zt{n}",
            "portError": 0,
            "routes": [{"flags": 0, "metric": 0, "target": "10.147.0.0/16", "via": None}],
            "status": "OK",
            "type": "PRIVATE",
        }

    def zerotier_leave(self, network: str) -> None:
        if network not in self.zerotiers:
            raise CommandError(f"not a member of network '{network}'")
        del self.zerotiers[network]

    def zerotier_list(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(n) for n in self.zerotiers.values()]

    # KVM ------------------------------------------------------------------------------

    def domain(self, uuid_: str) -> Domain:
        for d in self.domains.values():
            if d.uuid == uuid_:
                return d
        raise CommandError(f"no domain with uuid '{uuid_}'")

    def kvm_create(self, name: str, media: list[dict[str, Any]] | None = None, cpu: int = 1,
                   memory: int = 128, nics: list[dict[str, Any]] | None = None,
                   port: dict[str, int] | None = None, bridge: list[str] | None = None) -> str:
        if not name:
            raise CommandError("domain name is required")
        if name in self.domains:
            raise CommandError(f"domain '{name}' already exists")
        if nics is None and bridge:
            # g8core 1.0.0 names extra bridges, the older agent's argument.
            nics = [{"type": "bridge", "id": b} for b in bridge]
        if not isinstance(cpu, int) or not 1 <= cpu <= KVM_MAX_VCPUS:
            raise CommandError(f"invalid number of vcpus (1 to {KVM_MAX_VCPUS})")
        if not isinstance(memory, int) or not 1 <= memory <= VM_MAX_MEMORY_MIB:
            raise CommandError(f"invalid memory size (1 to {VM_MAX_MEMORY_MIB} MiB)")
        if len(nics or []) > PCI_SLOTS or len(media or []) > PCI_SLOTS:
            raise CommandError(f"no more available PCI slots (at most {PCI_SLOTS} nics, {PCI_SLOTS} disks)")
        for nic in nics or []:
            check_nic(nic)
        domain = Domain(self.next_domain_id, str(uuid.uuid4()), name, int(cpu), int(memory),
                        vnc=5900 + self.next_domain_id, nics=list(nics or []), media=list(media or []))
        self.next_domain_id += 1
        self.domains[name] = domain
        return domain.uuid

    def kvm_destroy(self, uuid: str = "", name: str = "") -> None:
        """
        Destroy a domain by ``uuid`` (core0's backends) or by ``name`` (g8core
        1.0.0, written for the older agent, sends only the name).
        """
        if not uuid and name:
            if name not in self.domains:
                raise CommandError(f"no domain named '{name}'")
            uuid = self.domains[name].uuid
        domain = self.domain(uuid)
        del self.domains[domain.name]

    def kvm_shutdown(self, uuid: str) -> None:
        self.kvm_destroy(uuid)

    def kvm_reboot(self, uuid: str) -> None:
        self.domain(uuid).state = "running"

    def kvm_pause(self, uuid: str) -> None:
        domain = self.domain(uuid)
        if domain.state != "running":
            raise CommandError(f"domain '{domain.name}' is not running")
        domain.state = "paused"

    def kvm_resume(self, uuid: str) -> None:
        domain = self.domain(uuid)
        if domain.state != "paused":
            raise CommandError(f"domain '{domain.name}' is not paused")
        domain.state = "running"

    def kvm_info(self, uuid: str) -> dict[str, Any]:
        domain = self.domain(uuid)
        return {"uuid": domain.uuid, "name": domain.name, "state": domain.state,
                "cpu": domain.cpu, "memory": domain.memory, "nics": domain.nics, "media": domain.media}

    def kvm_infops(self, uuid: str) -> dict[str, Any]:
        domain = self.domain(uuid)
        seconds = max(1, int(self.clock.seconds()) % 100000)
        return {
            "vcpu": {str(n): {"time": seconds * (n + 1) * 1000, "state": 1} for n in range(domain.cpu)},
            "net": {str(n): {"rxbytes": seconds * 1500, "rxpkts": seconds, "txbytes": seconds * 900,
                             "txpkts": seconds // 2 + 1} for n in range(max(1, len(domain.nics)))},
            "block": {str(n): {"rdbytes": seconds * 4096, "rdtimes": seconds * 2,
                               "wrbytes": seconds * 2048, "wrtimes": seconds}
                      for n in range(len(domain.media))},
        }

    def kvm_list(self) -> list[dict[str, Any]]:
        return [{"id": d.id, "uuid": d.uuid, "name": d.name, "state": d.state, "vnc": d.vnc}
                for d in self.domains.values()]

    def kvm_attach_disk(self, uuid: str, media: dict[str, Any]) -> None:
        domain = self.domain(uuid)
        if len(domain.media) >= PCI_SLOTS:
            raise CommandError("no more available PCI slots")
        domain.media.append(media)

    def kvm_detach_disk(self, uuid: str, media: dict[str, Any]) -> None:
        domain = self.domain(uuid)
        if media not in domain.media:
            raise CommandError("disk is not attached")
        domain.media.remove(media)

    def kvm_add_nic(self, uuid: str, type: str, id: str = "", hwaddr: str = "") -> None:  # noqa: A002
        domain = self.domain(uuid)
        if len(domain.nics) >= PCI_SLOTS:
            raise CommandError("no more available PCI slots")
        nic = {"type": type, "id": id, "hwaddr": hwaddr}
        check_nic(nic)
        domain.nics.append(nic)

    def kvm_remove_nic(self, uuid: str, type: str, id: str = "", hwaddr: str = "") -> None:  # noqa: A002
        domain = self.domain(uuid)
        for nic in domain.nics:
            if nic.get("type") == type and nic.get("id", "") == id:
                domain.nics.remove(nic)
                return
        raise CommandError("nic not found")

    def kvm_limit_disk_io(self, uuid: str, media: dict[str, Any], iops: int = 0, **_: Any) -> None:
        self.domain(uuid)

    def kvm_migrate(self, uuid: str, desturi: str) -> None:
        domain = self.domain(uuid)
        if self.pool is None:
            raise CommandError("migration target unknown")
        target = self.pool.node_by_uri(desturi)
        if target is None or target is self:
            raise CommandError(f"cannot migrate to '{desturi}'")
        del self.domains[domain.name]
        target.domains[domain.name] = domain

    pool: Any = None
