"""
Hardware and OS facts of a simulated node, in core0's shapes.

Facts are derived from the node's index so that every run builds the
same pool; node 0 carries the values of the seed document's examples.
"""

from __future__ import annotations

from typing import Any

GIB = 1024**3

#: info.mem of the seed document's node (its memory example).
SEED_MEM = {
    "active": 197136384,
    "available": 1454743552,
    "buffers": 0,
    "cached": 372428800,
    "free": 1521983488,
    "inactive": 323203072,
    "total": 2102710272,
    "used": 647966720,
    "usedPercent": 30.815787064362617,
    "wired": 0,
}

LSBLK_KEYS = (
    "name", "kname", "maj:min", "fstype", "mountpoint", "label", "uuid",
    "parttype", "partlabel", "partuuid", "partflags", "ra", "ro", "rm",
    "hotplug", "model", "serial", "size", "state", "owner", "group", "mode",
    "alignment", "min-io", "opt-io", "phy-sec", "log-sec", "rota", "sched",
    "rq-size", "type", "disc-aln", "disc-gran", "disc-max", "disc-zero",
    "wsame", "wwn", "rand", "pkname", "hctl", "tran", "subsystems", "rev",
    "vendor",
)


def node_id(index: int) -> str:
    """The id (management MAC without colons) of the node at ``index``."""
    return f"525400{0x123456 + index:06x}"


def mac(node: str) -> str:
    return ":".join(node[i : i + 2] for i in range(0, 12, 2))


def address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{(index & 255) + 1}"


def cpus(index: int) -> list[dict[str, Any]]:
    count = 2 + index % 3
    return [
        {
            "cpu": n,
            "vendorId": "GenuineIntel",
            "family": "6",
            "model": "61",
            "stepping": 4,
            "physicalId": "0",
            "coreId": str(n),
            "cores": 1,
            "modelName": "Intel(R) Xeon(R) CPU E5-2630 v3 @ 2.40GHz",
            "mhz": 2399.998,
            "cacheSize": 20480,
            "flags": ["fpu", "vme", "sse2", "vmx", "aes"],
            "microcode": "0x1",
        }
        for n in range(count)
    ]


def mem(index: int) -> dict[str, Any]:
    if index == 0:
        base = dict(SEED_MEM)
    else:
        total = (4 + index % 4) * GIB
        used = total // (3 + index % 5)
        free = total - used - 300 * 1024**2
        base = {
            "active": used // 2,
            "available": total - used,
            "buffers": 0,
            "cached": 300 * 1024**2,
            "free": free,
            "inactive": used // 3,
            "total": total,
            "used": used,
            "usedPercent": used * 100 / total,
            "wired": 0,
        }
    base.update(
        writeback=0, dirty=4096, writebacktmp=0, shared=1208320,
        slab=61440000, pagetables=3276800, swapcached=0,
    )
    return base


def nics(node: str, index: int) -> list[dict[str, Any]]:
    return [
        {
            "mtu": 65536,
            "name": "lo",
            "hardwareaddr": "",
            "flags": ["up", "loopback"],
            "addrs": [{"addr": "127.0.0.1/8"}, {"addr": "::1/128"}],
            "speed": 0,
        },
        {
            "mtu": 1500,
            "name": "eth0",
            "hardwareaddr": mac(node),
            "flags": ["up", "broadcast", "multicast"],
            "addrs": [{"addr": f"{address(index)}/16"}],
            "speed": 1000,
        },
    ]


def os_info(hostname: str, node: str, boot_time: int, now: int, procs: int) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "uptime": max(0, now - boot_time),
        "bootTime": boot_time,
        "procs": procs,
        "os": "linux",
        "platform": "g8os",
        "platformFamily": "",
        "platformVersion": "1.1.0",
        "kernelVersion": "4.9.22",
        "virtualizationSystem": "kvm",
        "virtualizationRole": "guest",
        "hostid": f"8f3e0c6a-0000-4000-8000-{node}",
    }


def _lsblk(name: str, **values: Any) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(LSBLK_KEYS)
    entry.update(
        {
            "name": name, "kname": name, "ra": "128", "ro": "0", "rm": "0",
            "hotplug": "0", "model": None, "serial": None, "owner": "root",
            "group": "disk", "mode": "brw-rw----", "alignment": "0",
            "min-io": "512", "opt-io": "0", "phy-sec": "512", "log-sec": "512",
            "rq-size": "128", "disc-aln": "0", "disc-gran": "0B",
            "disc-max": "0B", "disc-zero": "0", "wsame": "0B", "rand": "1",
            "tran": None, "subsystems": "block:scsi:pci",
        }
    )
    entry.update(values)
    return entry


def disks(index: int) -> list[dict[str, Any]]:
    """
    Block devices, lsblk style (every value a string or null).  ``sda``
    holds the node's cache filesystem; the others are free for storage
    pools: two SSDs, one HDD and, on even nodes, an NVMe drive.
    """
    major = 8
    devices = [
        _lsblk(
            "sda", **{"maj:min": f"{major}:0", "size": str(20 * GIB), "rota": "0",
                      "type": "disk", "model": "QEMU HARDDISK", "tran": "ata"},
            children=[
                _lsblk(
                    "sda1",
                    **{"maj:min": f"{major}:1", "size": str(20 * GIB - 1048576),
                       "rota": "0", "type": "part", "fstype": "btrfs",
                       "mountpoint": "/var/cache", "pkname": "sda",
                       "partuuid": f"00000000-0000-4000-8000-{index:012x}"},
                )
            ],
        ),
        _lsblk("sdb", **{"maj:min": f"{major}:16", "size": str(100 * GIB), "rota": "0",
                         "type": "disk", "model": "QEMU SSD", "tran": "ata"}),
        _lsblk("sdc", **{"maj:min": f"{major}:32", "size": str(100 * GIB), "rota": "0",
                         "type": "disk", "model": "QEMU SSD", "tran": "ata"}),
        _lsblk("sdd", **{"maj:min": f"{major}:48", "size": str(2000 * GIB), "rota": "1",
                         "type": "disk", "model": "QEMU HDD", "tran": "ata"}),
    ]
    if index % 2 == 0:
        devices.append(
            _lsblk("nvme0n1", **{"maj:min": "259:0", "size": str(400 * GIB), "rota": "0",
                                 "type": "disk", "model": "QEMU NVMe", "tran": "nvme"})
        )
    return devices


def partition(disk: dict[str, Any], part_uuid: str, fstype: str | None) -> dict[str, Any]:
    """The single partition a storage pool puts on ``disk``."""
    name = disk["name"] + ("p1" if disk["name"].startswith("nvme") else "1")
    major, minor = disk["maj:min"].split(":")
    return _lsblk(
        name,
        **{"maj:min": f"{major}:{int(minor) + 1}", "size": str(int(disk["size"]) - 1048576),
           "rota": disk["rota"], "type": "part", "fstype": fstype,
           "partuuid": part_uuid, "pkname": disk["name"]},
    )
