"""
The blueprints the AYS backend posts: shapes of section 3 of the AYS
reference, and YAML in which every string stays a string.
"""

from __future__ import annotations

from typing import Any

import yaml

from plugins.ays import blueprints
from plugins.ays.blueprints import Action


def roundtrip(content: dict[str, Any]) -> Any:
    return yaml.safe_load(blueprints.dump(content))


def test_every_string_is_quoted_so_numeric_ids_stay_strings() -> None:
    content = blueprints.zerotier("525400123456", "8056000001")
    text = blueprints.dump(content)
    assert "'525400123456'" in text
    assert "'8056000001'" in text
    assert roundtrip(content) == {
        "zerotier__525400123456_8056000001": {"node": "525400123456", "nwid": "8056000001"},
        "actions": [{"action": "install", "actor": "zerotier",
                     "service": "525400123456_8056000001", "force": True}],
    }


def test_strings_that_yaml_would_read_as_other_types_survive() -> None:
    tricky = ["8080:80", "10:20:30", "1e3", "0x1F", "yes", "no", "null", "~", "true",
              "2017-05-16", "0777", ".inf", "", " lead", "a: b", "- x", "#c", "'q'", '"d"']
    content = {"container__c": {"ports": tricky, "hostname": "123"}}
    assert roundtrip(content) == content
    # YAML 1.1 parsers (as AYS used) read these plain scalars as non-strings;
    # the single-quoted style keeps them strings for any parser.
    for value in ("8080:80", "yes", "525400123456"):
        assert f"'{value}'" in blueprints.dump({"x": value})


def test_container_blueprint() -> None:
    body = {
        "name": "web1", "hostname": "web1", "flist": "https://hub/ubuntu.flist",
        "hostNetworking": False, "storage": "", "ports": ["8080:80"],
        "filesystems": ["pool1:fs1"],
        "nics": [{"type": "bridge", "id": "br0", "hwaddr": "52:54:00:00:00:01",
                  "config": {"dhcp": True, "cidr": "", "gateway": "", "dns": []}}],
        "initProcesses": [{"name": "/bin/sleep", "args": ["3600"], "environment": ["A=1"],
                           "pwd": "", "stdin": ""}],
    }
    assert roundtrip(blueprints.container("525400123456", body)) == {
        "container__web1": {
            "node": "525400123456",
            "flist": "https://hub/ubuntu.flist",
            "hostname": "web1",
            "hostNetworking": False,
            "storage": "",
            "ports": ["8080:80"],
            "nics": [{"type": "bridge", "id": "br0",
                      "config": {"dhcp": True, "cidr": "", "gateway": "", "dns": []}}],
            "mounts": [{"filesystem": "fs1", "target": "/fs/pool1/fs1"}],
            "initProcesses": [{"name": "/bin/sleep", "pwd": "", "args": ["3600"],
                               "environment": ["A=1"], "stdin": ""}],
        },
        "actions": [{"action": "install", "actor": "container", "service": "web1",
                     "force": False}],
    }


def test_container_nic_hwaddr_is_dropped() -> None:
    content = blueprints.container("n1", {
        "name": "c", "hostname": "c", "flist": "f",
        "nics": [{"type": "default", "hwaddr": "52:54:00:00:00:01"}]})
    assert "hwaddr" not in blueprints.dump(content)
    assert "filesystems" not in content["container__c"]
    assert "bridges" not in content["container__c"]


def test_bridge_blueprint() -> None:
    body = {"name": "br0", "hwaddr": "", "networkMode": "dnsmasq", "nat": True,
            "setting": {"cidr": "10.10.0.1/24", "start": "10.10.0.10", "end": "10.10.0.100"}}
    assert roundtrip(blueprints.bridge("525400123456", body)) == {
        "bridge__br0": {"node": "525400123456", "hwaddr": "", "networkMode": "dnsmasq",
                        "nat": True, "setting": {"cidr": "10.10.0.1/24", "start": "10.10.0.10",
                                                 "end": "10.10.0.100"}},
        "actions": [{"action": "install", "actor": "bridge", "service": "br0", "force": False}],
    }


def test_storage_pool_and_device_change_blueprints() -> None:
    body = {"name": "pool1", "dataProfile": "raid1", "metadataProfile": "raid1",
            "devices": ["/dev/sdb", "/dev/sdc", "/dev/sdb"]}
    created = roundtrip(blueprints.storage_pool("525400123456", body))
    assert created["storagepool__pool1"] == {
        "node": "525400123456", "dataProfile": "raid1", "metadataProfile": "raid1",
        "devices": [{"device": "/dev/sdb", "partUUID": ""}, {"device": "/dev/sdc", "partUUID": ""}],
    }
    changed = roundtrip(blueprints.storage_pool_devices("pool1", [
        {"device": "/dev/sdb", "partUUID": "u1", "status": "healthy"},
        {"device": "/dev/sdd"}]))
    assert changed == {"storagepool__pool1": {"devices": [
        {"device": "/dev/sdb", "partUUID": "u1"}, {"device": "/dev/sdd", "partUUID": ""}]}}


def test_filesystem_and_snapshot_blueprints_send_no_computed_fields() -> None:
    fs = roundtrip(blueprints.filesystem("pool1", {"name": "fs1", "quota": 10, "readOnly": False}))
    assert fs["filesystem__fs1"] == {"storagePool": "pool1", "name": "fs1", "quota": 10,
                                     "readOnly": False}
    snap = roundtrip(blueprints.snapshot("fs1", {"name": "snap1"}))
    assert snap["fssnapshot__snap1"] == {"filesystem": "fs1", "name": "snap1"}


def test_vm_blueprint_encodes_cloud_init_as_json_text() -> None:
    body = {"id": "vm1", "memory": 2048, "cpu": 2,
            "nics": [{"id": "100", "type": "vlan", "macaddress": ""}],
            "disks": [{"vdiskid": "disk1", "maxIOps": 2000}],
            "userCloudInit": {"users": {"root": "secret"}}, "systemCloudInit": None}
    vm = roundtrip(blueprints.vm("525400123456", body))["vm__vm1"]
    assert vm == {
        "node": "525400123456", "memory": 2048, "cpu": 2,
        "nics": [{"id": "100", "type": "vlan", "macaddress": ""}],
        "disks": [{"vdiskid": "disk1", "maxIOps": 2000}],
        "userCloudInit": '{"users": {"root": "secret"}}',
        "systemCloudInit": "null",
    }
    assert "vdisks" not in vm


def test_vm_migrate_only_changes_node() -> None:
    """processChange migrates on a changed node; no migrate action as well (Q12)."""
    assert roundtrip(blueprints.vm_migrate("vm1", "525400123457")) == {
        "vm__vm1": {"node": "525400123457"}}


def test_storage_cluster_blueprint() -> None:
    body = {"label": "c1", "servers": 4, "driveType": "ssd", "nodes": ["525400123456"]}
    assert roundtrip(blueprints.storage_cluster(body, ["525400123456", "525400123457"])) == {
        "storage_cluster__c1": {"label": "c1", "nrServer": 4, "diskType": "ssd",
                                "nodes": ["525400123456", "525400123457"]},
        "actions": [{"action": "install", "actor": "storage_cluster", "service": "c1",
                     "force": False}],
    }


def test_vdisk_blueprint_sends_tlog_cluster_only_when_given() -> None:
    body = {"id": "d1", "size": 10, "blocksize": 4096, "type": "boot", "readOnly": False,
            "templatevdisk": "", "storagecluster": "c1", "tlogStoragecluster": ""}
    data = roundtrip(blueprints.vdisk(body))["vdisk__d1"]
    assert data == {"size": 10, "blocksize": 4096, "type": "boot", "readOnly": False,
                    "templateVdisk": "", "storageCluster": "c1"}
    data = roundtrip(blueprints.vdisk({**body, "tlogStoragecluster": "c2"}))["vdisk__d1"]
    assert data["tlogStoragecluster"] == "c2"


def test_action_only_blueprint() -> None:
    assert roundtrip(blueprints.actions_only(Action("container", "web1", "stop"))) == {
        "actions": [{"action": "stop", "actor": "container", "service": "web1", "force": True}]}
