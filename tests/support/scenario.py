"""
One successful call of every contract operation, in an order that works on
a fresh mock pool (``testbed.mock_pool.MOCK_CONFIG``): what a step
reads or deletes was made by an earlier step.  Steps may read values out
of earlier answers (``save``) and use them in later paths (``{name}``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from testbed.http_api import Reply, multipart_body
from tests.support.backends import SECOND_NODE as N2
from tests.support.backends import SEED_CONTAINER, SEED_JOB
from tests.support.backends import SEED_NODE as N


@dataclass
class Step:
    op: str
    method: str
    path: str
    json: Any = None
    query: dict[str, str] | None = None
    upload: bytes | None = None
    #: Called with the answer and the context, to remember values.
    save: Callable[[Reply, dict[str, Any]], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def request(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """:returns: keyword arguments of ``testbed.http_api.call``."""
        kwargs: dict[str, Any] = {"query": self.query}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.upload is not None:
            body, ctype = multipart_body([("file", "f.txt", self.upload)])
            kwargs["body"] = body
            kwargs["headers"] = {"Content-Type": ctype}
        kwargs["path"] = self.path.format(N=N, N2=N2, C=SEED_CONTAINER, **ctx)
        kwargs["method"] = self.method
        return kwargs


def _save(name: str, pick: Callable[[Any], Any]) -> Callable[[Reply, dict[str, Any]], None]:
    def save(reply: Reply, ctx: dict[str, Any]) -> None:
        ctx[name] = pick(reply.json())

    return save


def _sleep_pid(items: list[dict[str, Any]]) -> int:
    return max(p["pid"] for p in items if "sleep" in p["cmdline"])


def _new_device(items: list[dict[str, Any]]) -> str:
    return str(items[-1]["uuid"])


C1 = "/nodes/{N}/containers/c1"

STEPS: list[Step] = [
    # Nodes and their facts
    Step("ListNodes", "GET", "/nodes"),
    Step("GetNode", "GET", "/nodes/{N}"),
    Step("PingNode", "POST", "/nodes/{N}/ping"),
    Step("GetNodeState", "GET", "/nodes/{N}/state"),
    Step("GetCPUInfo", "GET", "/nodes/{N}/cpus"),
    Step("GetDiskInfo", "GET", "/nodes/{N}/disks"),
    Step("GetMemInfo", "GET", "/nodes/{N}/mem"),
    Step("GetNicInfo", "GET", "/nodes/{N}/nics"),
    Step("GetNodeOSInfo", "GET", "/nodes/{N}/info"),
    Step("ListNodeJobs", "GET", "/nodes/{N}/jobs"),
    Step("GetNodeJob", "GET", "/nodes/{N}/jobs/redis.public"),
    Step("ListNodeProcesses", "GET", "/nodes/{N}/processes"),
    Step("GetNodeProcess", "GET", "/nodes/{N}/processes/100"),
    # Bridges
    Step("CreateBridge", "POST", "/nodes/{N}/bridges", json={"name": "br0", "networkMode": "none"}),
    Step("ListBridges", "GET", "/nodes/{N}/bridges"),
    Step("GetBridge", "GET", "/nodes/{N}/bridges/br0"),
    Step("DeleteBridge", "DELETE", "/nodes/{N}/bridges/br0"),
    # Storage pools, devices, filesystems, snapshots
    Step("CreateStoragePool", "POST", "/nodes/{N}/storagepools",
         json={"name": "sp1", "metadataProfile": "single", "dataProfile": "single",
               "devices": ["/dev/sdb"]}),
    Step("ListStoragePools", "GET", "/nodes/{N}/storagepools"),
    Step("GetStoragePoolInfo", "GET", "/nodes/{N}/storagepools/sp1"),
    Step("CreateStoragePoolDevices", "POST", "/nodes/{N}/storagepools/sp1/devices", json=["/dev/sdc"]),
    Step("ListStoragePoolDevices", "GET", "/nodes/{N}/storagepools/sp1/devices",
         save=_save("device", _new_device)),
    Step("GetStoragePoolDeviceInfo", "GET", "/nodes/{N}/storagepools/sp1/devices/{device}"),
    Step("DeleteStoragePoolDevice", "DELETE", "/nodes/{N}/storagepools/sp1/devices/{device}"),
    Step("CreateFilesystem", "POST", "/nodes/{N}/storagepools/sp1/filesystems", json={"name": "fs1"}),
    Step("ListFilesystems", "GET", "/nodes/{N}/storagepools/sp1/filesystems"),
    Step("GetFilesystemInfo", "GET", "/nodes/{N}/storagepools/sp1/filesystems/fs1"),
    Step("CreateSnapshot", "POST", "/nodes/{N}/storagepools/sp1/filesystems/fs1/snapshots",
         json={"name": "snap1"}),
    Step("ListFilesystemSnapshots", "GET", "/nodes/{N}/storagepools/sp1/filesystems/fs1/snapshots"),
    Step("GetFilesystemSnapshotInfo", "GET",
         "/nodes/{N}/storagepools/sp1/filesystems/fs1/snapshots/snap1"),
    Step("RollbackFilesystemSnapshot", "POST",
         "/nodes/{N}/storagepools/sp1/filesystems/fs1/snapshots/snap1/rollback"),
    Step("DeleteFilesystemSnapshot", "DELETE",
         "/nodes/{N}/storagepools/sp1/filesystems/fs1/snapshots/snap1"),
    Step("DeleteFilesystem", "DELETE", "/nodes/{N}/storagepools/sp1/filesystems/fs1"),
    Step("DeleteStoragePool", "DELETE", "/nodes/{N}/storagepools/sp1"),
    # ZeroTier
    Step("JoinZerotier", "POST", "/nodes/{N}/zerotiers", json={"nwid": "8056c2e21c000001"}),
    Step("ListZerotier", "GET", "/nodes/{N}/zerotiers"),
    Step("GetZerotier", "GET", "/nodes/{N}/zerotiers/8056c2e21c000001"),
    Step("ExitZerotier", "DELETE", "/nodes/{N}/zerotiers/8056c2e21c000001"),
    # Containers
    Step("CreateContainer", "POST", "/nodes/{N}/containers",
         json={"name": "c1", "hostname": "c1", "flist": "https://hub.example/ubuntu.flist"}),
    Step("ListContainers", "GET", "/nodes/{N}/containers"),
    Step("ListPoolContainers", "GET", "/containers"),
    Step("GetContainer", "GET", C1),
    Step("StopContainer", "POST", C1 + "/stop"),
    Step("StartContainer", "POST", C1 + "/start"),
    Step("PingContainer", "POST", C1 + "/ping"),
    Step("GetContainerState", "GET", C1 + "/state"),
    Step("GetContainerCPUInfo", "GET", C1 + "/cpus"),
    Step("GetContainerDiskInfo", "GET", C1 + "/disks"),
    Step("GetContainerMemInfo", "GET", C1 + "/mem"),
    Step("GetContainerNicInfo", "GET", C1 + "/nics"),
    Step("GetContainerOSInfo", "GET", C1 + "/info"),
    # Container jobs and processes
    Step("ListContainerJobs", "GET", "/nodes/{N}/containers/{C}/jobs"),
    Step("GetContainerJob", "GET", "/nodes/{N}/containers/{C}/jobs/" + SEED_JOB),
    Step("StartContainerProcess", "POST", C1 + "/processes", json={"name": "sleep", "args": ["1000"]},
         save=lambda reply, ctx: ctx.__setitem__("job", reply.header("Location").rsplit("/", 1)[-1])),
    Step("SendSignalToJob", "POST", C1 + "/jobs/{job}", json={"signal": 10}),
    Step("KillContainerJob", "DELETE", C1 + "/jobs/{job}"),
    Step("ListContainerProcesses", "GET", "/nodes/{N}/containers/{C}/processes"),
    Step("GetContainerProcess", "GET", "/nodes/{N}/containers/{C}/processes/2"),
    Step("StartContainerProcess", "POST", C1 + "/processes", json={"name": "sleep", "args": ["2000"]},
         extra={"again": True}),
    Step("ListContainerProcesses", "GET", C1 + "/processes", save=_save("pid", _sleep_pid),
         extra={"again": True}),
    Step("SendSignalToProcess", "POST", C1 + "/processes/{pid}", json={"signal": 10}),
    Step("KillContainerProcess", "DELETE", C1 + "/processes/{pid}"),
    Step("KillAllContainerJobs", "DELETE", C1 + "/jobs"),
    # Container files
    Step("FileUpload", "POST", C1 + "/filesystem", query={"path": "/tmp/hello.txt"}, upload=b"hello\n"),
    Step("FileDownload", "GET", C1 + "/filesystem", query={"path": "/tmp/hello.txt"}),
    Step("FileDelete", "DELETE", C1 + "/filesystem", json={"path": "/tmp/hello.txt"}),
    Step("DeleteContainer", "DELETE", C1),
    # VMs
    Step("CreateVM", "POST", "/nodes/{N}/vms", json={"id": "vm1", "memory": 256, "cpu": 1}),
    Step("ListVMs", "GET", "/nodes/{N}/vms"),
    Step("ListPoolVMs", "GET", "/vms", query={"node": N}),
    Step("GetVM", "GET", "/nodes/{N}/vms/vm1"),
    Step("GetVMInfo", "GET", "/nodes/{N}/vms/vm1/info"),
    Step("PauseVM", "POST", "/nodes/{N}/vms/vm1/pause"),
    Step("ResumeVM", "POST", "/nodes/{N}/vms/vm1/resume"),
    Step("ShutdownVM", "POST", "/nodes/{N}/vms/vm1/shutdown"),
    Step("StartVM", "POST", "/nodes/{N}/vms/vm1/start"),
    Step("StopVM", "POST", "/nodes/{N}/vms/vm1/stop"),
    Step("UpdateVM", "PUT", "/nodes/{N}/vms/vm1", json={"memory": 512, "cpu": 2}),
    Step("StartVM", "POST", "/nodes/{N}/vms/vm1/start", extra={"again": True}),
    Step("MigrateVM", "POST", "/nodes/{N}/vms/vm1/migrate", json={"nodeid": N2}),
    Step("DeleteVM", "DELETE", "/nodes/{N2}/vms/vm1"),
    # Storage clusters and vdisks
    Step("DeployNewCluster", "POST", "/storageclusters",
         json={"label": "cl1", "servers": 1, "driveType": "ssd", "nodes": [N]}),
    Step("ListAllClusters", "GET", "/storageclusters"),
    Step("GetClusterInfo", "GET", "/storageclusters/cl1"),
    Step("CreateNewVdisk", "POST", "/vdisks",
         json={"id": "vd1", "size": 10, "type": "db", "storagecluster": "cl1"}),
    Step("ListVdisks", "GET", "/vdisks"),
    Step("GetVdiskInfo", "GET", "/vdisks/vd1"),
    Step("ResizeVdisk", "POST", "/vdisks/vd1/resize", json={"newSize": 20}),
    Step("RollbackVdisk", "POST", "/vdisks/vd1/rollback", json={"epoch": 1}),
    Step("DeleteVdisk", "DELETE", "/vdisks/vd1"),
    Step("KillCluster", "DELETE", "/storageclusters/cl1"),
    # What disturbs a node, on the second node, last
    Step("ListNodeProcesses", "GET", "/nodes/{N2}/processes",
         save=_save("node_pid", lambda items: items[0]["pid"]), extra={"again": True}),
    Step("KillNodeProcess", "DELETE", "/nodes/{N2}/processes/{node_pid}"),
    Step("ListNodeJobs", "GET", "/nodes/{N}/jobs", save=_save("node_job", lambda jobs: jobs[-1]["id"]),
         extra={"again": True}),
    Step("KillNodeJob", "DELETE", "/nodes/{N}/jobs/{node_job}"),
    Step("KillAllNodeJobs", "DELETE", "/nodes/{N2}/jobs"),
    Step("RebootNode", "POST", "/nodes/{N2}/reboot"),
    Step("DeleteNode", "DELETE", "/nodes/{N2}"),
]
