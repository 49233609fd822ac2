"""
The AYS views on the wire: a text field AYS does not give (absent,
``null`` or empty) is left out of the view and answers ``""`` once shaped
by the web app, as when the views filled it themselves; a text AYS gives
passes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from plugins.ays import views
from rpoold.response_shaping import ResponseShaper

SHAPER = ResponseShaper()

EMPTY_SETTING = {"cidr": "", "start": "", "end": ""}
EMPTY_CONTAINER = {"status": "halted", "hostname": "", "flist": "", "initprocesses": [],
                   "filesystems": [], "nics": [], "hostNetworking": False, "ports": [], "storage": ""}
EMPTY_VDISK = {"id": "vd", "status": "halted", "size": 0, "blocksize": 0, "type": "boot",
               "readOnly": False, "storagecluster": "", "tlogStoragecluster": ""}

#: (response type, view of the service data, the wire answer without any text).
CASES: list[tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any]]] = [
    ("Node", lambda data: views.node("n1", data),
     {"id": "n1", "ipaddress": "", "status": "running", "hostname": ""}),
    ("Bridge", lambda data: views.bridge("br0", data),
     {"name": "br0", "setting": EMPTY_SETTING, "status": "up"}),
    ("StoragePool", lambda data: views.storage_pool("sp", data),
     {"name": "sp", "status": "unknown", "totalCapacity": 0, "capacity": 0,
      "metadataProfile": "", "dataProfile": "", "mountpoint": ""}),
    ("StoragePoolDevice", views.storage_pool_device,
     {"deviceName": "", "uuid": "", "status": "healthy"}),
    ("Filesystem", lambda data: views.filesystem("fs", "sp", data),
     {"name": "fs", "parent": "sp", "sizeOnDisk": 0, "readOnly": False, "quota": 0,
      "mountpoint": ""}),
    ("ZerotierListItem", lambda data: views.zerotier_item("zt", data),
     {"name": "zt", "nwid": "", "status": "", "type": "private"}),
    ("ContainerListItem", lambda data: views.container_item("ct", data),
     {"name": "ct", "id": "ct", "hostname": "", "flist": "", "status": "halted"}),
    ("Container", views.container, EMPTY_CONTAINER),
    ("VdiskListItem", lambda data: views.vdisk_item("vd", data),
     {"id": "vd", "status": "halted", "type": "boot", "storageCluster": "",
      "storagecluster": ""}),
    ("Vdisk", lambda data: views.vdisk("vd", data), EMPTY_VDISK),
]

#: The text fields of each case's service data (as AYS names them).
TEXTS = {
    "Node": ("hostname", "redisAddr"),
    "Bridge": ("setting",),
    "StoragePool": ("dataProfile", "metadataProfile", "mountpoint"),
    "StoragePoolDevice": ("partUUID", "device"),
    "Filesystem": ("mountpoint",),
    "ZerotierListItem": ("nwid", "status"),
    "ContainerListItem": ("hostname", "flist"),
    "Container": ("hostname", "flist"),
    "VdiskListItem": ("storageCluster",),
    "Vdisk": ("storageCluster", "tlogStoragecluster"),
}


@pytest.mark.parametrize(("type_ref", "view", "empty"), CASES, ids=[c[0] for c in CASES])
def test_texts_ays_does_not_give_are_empty_on_the_wire(
        type_ref: str, view: Callable[[dict[str, Any]], Any], empty: dict[str, Any]) -> None:
    assert SHAPER.shape(type_ref, view({})) == empty
    assert SHAPER.shape(type_ref, view(dict.fromkeys(TEXTS[type_ref]))) == empty
    assert SHAPER.shape(type_ref, view(dict.fromkeys(TEXTS[type_ref], ""))) == empty


def test_texts_ays_gives_pass_unchanged() -> None:
    node = SHAPER.shape("Node", views.node("n1", {"hostname": "h", "redisAddr": "10.0.0.1"}))
    assert node == {"id": "n1", "ipaddress": "10.0.0.1", "status": "running", "hostname": "h"}
    bridge = SHAPER.shape("Bridge", views.bridge("br0", {"setting": {"cidr": "10.0.0.1/24",
                                                                     "start": None}}))
    assert bridge["setting"] == {**EMPTY_SETTING, "cidr": "10.0.0.1/24"}
    device = SHAPER.shape("StoragePoolDevice", views.storage_pool_device(
        {"partUUID": "u1", "device": "/dev/sdb", "status": "unknown"}))
    assert device == {"deviceName": "/dev/sdb", "uuid": "u1", "status": "healthy"}
    vdisk = SHAPER.shape("Vdisk", views.vdisk("vd", {"storageCluster": "c1",
                                                     "tlogStoragecluster": "c2"}))
    assert vdisk == {**EMPTY_VDISK, "storagecluster": "c1", "tlogStoragecluster": "c2"}


def test_storage_servers_and_zerotier_routes_without_texts() -> None:
    ardbs = [("cluster_n_c1_sdb_data_0", {"data": {"bind": "10.0.0.5:2000"}}),
             ("cluster_n_c1_sdc_metadata_1", {"data": {"container": None}, "state": "error"})]
    cluster = SHAPER.shape("Cluster", views.storage_cluster({"label": "c1"}, ardbs))
    assert cluster["dataStorage"] == [
        {"id": 0, "ip": "10.0.0.5", "port": 2000, "container": "", "status": "ready"}]
    assert cluster["metadataStorage"] == [
        {"id": 1, "ip": "", "port": 0, "container": "", "status": "error"}]
    zerotier = SHAPER.shape("Zerotier", views.zerotier(
        {"node": "n1", "routes": [{"target": "10.0.0.0/8", "via": None}, "not a route"]}))
    assert zerotier["routes"] == [{"flags": 0, "metric": 0, "target": "10.0.0.0/8", "via": ""}]
