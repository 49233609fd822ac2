"""
What ``/openapi.json`` says about each operation besides its schemas: a
one-line summary (the contract's notes become the description), and
examples taken from the seed document (the pool the mock starts with:
node ``525400123456``, its container ``vfw_21`` and that container's job).
"""

from __future__ import annotations

from typing import Any

#: One line per operation: what it does, in the words of an operator.
SUMMARIES: dict[str, str] = {
    "ListNodes": "List the nodes of the pool",
    "DeleteNode": "Remove a node from the pool",
    "GetNode": "Get a node",
    "PingNode": "Check that a node's core0 answers",
    "GetNodeState": "Get a node's resource usage (CPU, memory, swap)",
    "RebootNode": "Reboot a node",
    "GetCPUInfo": "List a node's CPUs",
    "GetDiskInfo": "List a node's disks",
    "GetMemInfo": "Get a node's memory figures",
    "GetNicInfo": "List a node's network interfaces",
    "GetNodeOSInfo": "Get a node's operating system facts",
    "ListNodeJobs": "List the jobs running on a node",
    "KillAllNodeJobs": "Kill every job of a node",
    "GetNodeJob": "Get a node's job and its result",
    "KillNodeJob": "Kill a node's job",
    "ListNodeProcesses": "List the processes of a node",
    "GetNodeProcess": "Get a process of a node",
    "KillNodeProcess": "Kill a process of a node",
    "CreateBridge": "Create a bridge on a node",
    "ListBridges": "List a node's bridges",
    "GetBridge": "Get a bridge",
    "DeleteBridge": "Delete a bridge",
    "ListStoragePools": "List a node's storage pools",
    "CreateStoragePool": "Create a btrfs storage pool on a node's devices",
    "GetStoragePoolInfo": "Get a storage pool",
    "DeleteStoragePool": "Delete a storage pool",
    "ListStoragePoolDevices": "List the devices of a storage pool",
    "CreateStoragePoolDevices": "Add devices to a storage pool",
    "GetStoragePoolDeviceInfo": "Get a device of a storage pool",
    "DeleteStoragePoolDevice": "Remove a device from a storage pool",
    "ListFilesystems": "List the filesystems of a storage pool",
    "CreateFilesystem": "Create a filesystem in a storage pool",
    "GetFilesystemInfo": "Get a filesystem",
    "DeleteFilesystem": "Delete a filesystem",
    "ListFilesystemSnapshots": "List the snapshots of a filesystem",
    "CreateSnapshot": "Take a snapshot of a filesystem",
    "GetFilesystemSnapshotInfo": "Get a snapshot",
    "DeleteFilesystemSnapshot": "Delete a snapshot",
    "RollbackFilesystemSnapshot": "Roll a filesystem back to a snapshot",
    "ListZerotier": "List the ZeroTier networks a node has joined",
    "JoinZerotier": "Join a node to a ZeroTier network",
    "GetZerotier": "Get a ZeroTier network of a node",
    "ExitZerotier": "Leave a ZeroTier network",
    "ListContainers": "List a node's containers",
    "ListPoolContainers": "List the containers of every node of the pool",
    "CreateContainer": "Create and start a container on a node",
    "DeleteContainer": "Stop and delete a container",
    "GetContainer": "Get a container",
    "StartContainer": "Start a halted container",
    "StopContainer": "Stop a container",
    "PingContainer": "Check that a container's agent answers",
    "GetContainerState": "Get a container's resource usage",
    "GetContainerCPUInfo": "List a container's CPUs",
    "GetContainerDiskInfo": "List a container's disks",
    "GetContainerMemInfo": "Get a container's memory figures",
    "GetContainerNicInfo": "List a container's network interfaces",
    "GetContainerOSInfo": "Get a container's operating system facts",
    "ListContainerJobs": "List the jobs running in a container",
    "KillAllContainerJobs": "Kill every job of a container",
    "GetContainerJob": "Get a container's job and its result",
    "SendSignalToJob": "Send a signal to a container's job",
    "KillContainerJob": "Kill a container's job",
    "ListContainerProcesses": "List the processes of a container",
    "StartContainerProcess": "Start a process in a container",
    "GetContainerProcess": "Get a process of a container",
    "KillContainerProcess": "Kill a process of a container",
    "SendSignalToProcess": "Send a signal to a process of a container",
    "FileUpload": "Upload a file into a container",
    "FileDownload": "Download a file from a container",
    "FileDelete": "Delete a file in a container",
    "ListVMs": "List a node's virtual machines",
    "ListPoolVMs": "List the virtual machines of every node of the pool",
    "CreateVM": "Create and deploy a virtual machine on a node",
    "DeleteVM": "Stop and delete a virtual machine",
    "GetVM": "Get a virtual machine",
    "UpdateVM": "Change a virtual machine's resources, disks or nics",
    "GetVMInfo": "Get a virtual machine's live statistics",
    "StartVM": "Start a virtual machine",
    "StopVM": "Stop a virtual machine",
    "PauseVM": "Pause a virtual machine",
    "ResumeVM": "Resume a paused virtual machine",
    "ShutdownVM": "Shut a virtual machine down gracefully",
    "MigrateVM": "Move a virtual machine to another node",
    "DeployNewCluster": "Deploy a storage cluster",
    "ListAllClusters": "List the storage clusters",
    "GetClusterInfo": "Get a storage cluster",
    "KillCluster": "Delete a storage cluster",
    "ListVdisks": "List the vdisks",
    "CreateNewVdisk": "Create a vdisk in a storage cluster",
    "GetVdiskInfo": "Get a vdisk",
    "DeleteVdisk": "Delete a vdisk",
    "ResizeVdisk": "Grow a vdisk",
    "RollbackVdisk": "Roll a vdisk back to an epoch",
    "ListOperations": "List the operations, newest first",
    "GetOperation": "Get an operation (or wait for its end)",
    "CancelOperation": "Cancel an operation",
    "StreamEvents": "Follow the events of the pool (Server-Sent Events)",
    "GetNodeJobOutput": "Follow the output of a node's job (Server-Sent Events)",
    "GetContainerJobOutput": "Follow the output of a container's job (Server-Sent Events)",
}

#: Path parameters of the seed, shown as examples of the operations that
#: only read (a viewer's "Try it out" starts from them; the operations
#: that change something get none, so that trying one does not remove the
#: seed by accident).
PARAMETER_EXAMPLES: dict[str, Any] = {
    "nodeid": "525400123456",
    "containername": "vfw_21",
    "jobid": "f3976780-f369-45df-ab54-206149dc000e",
}

SEED_MEM = {
    "active": 197136384, "available": 1454743552, "buffers": 0, "cached": 372428800,
    "free": 1521983488, "inactive": 323203072, "total": 2102710272, "used": 647966720,
    "usedPercent": 30.815787064362617, "wired": 0,
}

#: Request bodies of the seed document, by operation (fields by their contract
#: names, the flist's URL made neutral).
REQUEST_EXAMPLES: dict[str, Any] = {
    "CreateContainer": {
        "name": "vfw_22",
        "hostname": "vfw_22",
        "flist": "https://hub.example.org/lede-17.01.flist",
        "hostNetworking": False,
        "nics": [{"type": "vlan", "id": "0", "config": {
            "dhcp": False, "cidr": "192.168.57.217/24", "gateway": "192.168.57.254", "dns": ["8.8.8.8"]}}],
        "filesystems": [],
        "initProcesses": [],
        "ports": [],
    },
    "StartContainerProcess": {
        "name": "/bin/dnsmasq", "pwd": "", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"], "environment": [],
    },
}

#: Answers of the seed document, by operation.
RESPONSE_EXAMPLES: dict[str, Any] = {
    "GetMemInfo": SEED_MEM,
    "PingNode": True,
    "ListContainerProcesses": [{
        "cmdline": "/coreX -core-id 10 -redis-socket /redis.socket -reply-to corex:results -hostname vfw_22",
        "cpu": {"guestnice": 0, "idle": 0, "iowait": 0, "irq": 0, "nice": 0, "softirq": 0, "steal": 0,
                "stolen": 0, "system": 0, "user": 0.04},
        "pid": 1, "rss": 3399680, "swap": 0, "vms": 8163328,
    }],
}
