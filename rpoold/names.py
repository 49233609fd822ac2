"""
The names rpoold accepts: the pattern and the longest length of each path
parameter, the names refused everywhere, and the request fields that name
an existing resource.
"""

from __future__ import annotations

SERVICENAME = r"^[A-Za-z0-9_.-]+$"

#: Path parameters and the pattern each must match (full match).
PATH_PARAMETERS: dict[str, str] = {
    "nodeid": SERVICENAME,
    "jobid": SERVICENAME,
    "processid": r"^[0-9]{1,7}$",
    "bridgeid": SERVICENAME,
    "storagepoolname": SERVICENAME,
    "deviceuuid": SERVICENAME,
    "filesystemname": SERVICENAME,
    "snapshotname": SERVICENAME,
    "zerotierid": SERVICENAME,
    "containername": SERVICENAME,
    "vmid": SERVICENAME,
    "label": SERVICENAME,
    "vdiskid": SERVICENAME,
    # rpoold's own: an operation's id (32 hex digits).
    "operationid": r"^[0-9a-f]{32}$",
}

#: The longest id or name (characters), wherever the contract does not say less.
MAX_NAME = 64

#: The longest value of each name parameter: what can be created under
#: that name (``types.json`` bounds the create bodies the same way).
MAX_LENGTHS: dict[str, int] = {
    **{name: MAX_NAME for name in PATH_PARAMETERS if name != "processid"},
    "bridgeid": 15,  # Linux interface names: IFNAMSIZ 16 with the NUL
    "filesystemname": 50,
    "snapshotname": 50,
}

#: Process ids: Linux gives out 1 to PID_MAX_LIMIT - 1 (2^22 - 1 on 64 bits).
PROCESS_IDS = (1, 4194303)

#: Names that match SERVICENAME but are refused everywhere: as path
#: components they would climb the tree (a pool or filesystem named '..').
DOT_NAMES = (".", "..")

#: Request fields that name an existing resource (a vdisk, a node, a
#: storage cluster, a container's filesystem mount) but that the contract
#: leaves unconstrained.  Every such resource is created under a
#: SERVICENAME id, so rpoold checks references against the same pattern:
#: no backend sees a reference that could not name anything (nor one
#: carrying YAML or key syntax).
REFERENCE_FIELDS: dict[tuple[str, str], str] = {
    ("VDiskLink", "vdiskid"): SERVICENAME,
    ("ClusterCreate", "nodes"): SERVICENAME,
    ("VdiskCreate", "storagecluster"): SERVICENAME,
    ("VdiskCreate", "tlogStoragecluster"): "^$|" + SERVICENAME,
    ("CreateContainer", "filesystems"): r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$",
}
