"""
The names rpoold accepts: the pattern of each path parameter, the names
refused everywhere, and the request fields that name an existing resource.
"""

from __future__ import annotations

SERVICENAME = r"^[A-Za-z0-9_.-]+$"

#: Path parameters and the pattern each must match (full match).
PATH_PARAMETERS: dict[str, str] = {
    "nodeid": SERVICENAME,
    "jobid": SERVICENAME,
    "processid": r"^[0-9]{1,19}$",
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

#: Names that match SERVICENAME but are refused everywhere: as path
#: components they would climb the tree (a pool or filesystem named '..').
DOT_NAMES = (".", "..")

#: Request fields that name an existing resource (a vdisk, a node, a
#: storage cluster) but that the contract leaves unconstrained.  Every such
#: resource is created under a SERVICENAME id, so rpoold checks references
#: against the same pattern: no backend sees a reference that could not
#: name anything (nor one carrying YAML or key syntax).
REFERENCE_FIELDS: dict[tuple[str, str], str] = {
    ("VDiskLink", "vdiskid"): SERVICENAME,
    ("ClusterCreate", "nodes"): SERVICENAME,
    ("VdiskCreate", "storagecluster"): SERVICENAME,
    ("VdiskCreate", "tlogStoragecluster"): "^$|" + SERVICENAME,
}
