"""
Request processing, in the contract's order: decode, rename the docs'
aliases, apply defaults, validate, then fill every absent field with its
zero value so that backends see complete bodies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import rpoold.contract
from rpoold.errors import BadRequest
from rpoold.request_validation import RequestValidator

REQUESTS = RequestValidator()
VALIDATORS = rpoold.contract.load()["validators"]
CONTAINER = {"name": "c1", "hostname": "c1", "flist": "http://hub/x.flist"}
BRIDGE = {"name": "br", "networkMode": "static"}


def parse(operation: str, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return REQUESTS.body(operation, raw)


def refused(operation: str, body: Any, *words: str) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(operation, body)
    message = caught.value.message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# Aliases -------------------------------------------------------------------------------


def test_id_is_an_alias_of_name() -> None:
    body = parse("CreateContainer", {**CONTAINER, "id": "vfw_22", "name": None})
    assert body["name"] == "vfw_22" and "id" not in body


def test_the_canonical_spelling_wins() -> None:
    body = parse("CreateContainer", {**CONTAINER, "name": "canonical", "id": "alias"})
    assert body["name"] == "canonical" and "id" not in body


def test_initprocesses_is_an_alias_of_init_processes() -> None:
    body = parse("CreateContainer", {**CONTAINER, "initprocesses": [{"name": "/bin/true"}]})
    assert [p["name"] for p in body["initProcesses"]] == ["/bin/true"]
    assert "initprocesses" not in body


def test_env_is_an_alias_of_environment() -> None:
    body = parse("StartContainerProcess", {"name": "/bin/x", "env": ["A=1"]})
    assert body["environment"] == ["A=1"] and "env" not in body


def test_aliases_apply_inside_nested_bodies() -> None:
    body = parse("CreateContainer", {**CONTAINER, "initprocesses": [{"name": "/bin/x", "env": ["A=1"]}]})
    assert body["initProcesses"][0]["environment"] == ["A=1"]


def test_aliased_values_are_validated() -> None:
    refused("CreateContainer", {**CONTAINER, "name": None, "id": "a b"}, "'name'")
    refused("StartContainerProcess", {"name": "/bin/x", "env": ["NOEQUALS"]}, "environment[0]")


# Defaults and zero values ------------------------------------------------------------------


def test_signal_defaults_to_15() -> None:
    assert parse("SendSignalToJob", {}) == {"signal": 15}


def test_an_explicit_zero_is_not_replaced_by_the_default() -> None:
    refused("SendSignalToJob", {"signal": 0}, "'signal'", "at least 1")
    refused("CreateNewVdisk", {"id": "v", "size": 1, "type": "db", "storagecluster": "c", "blocksize": 0},
            "'blocksize'")


def test_blocksize_defaults_to_4096() -> None:
    body = parse("CreateNewVdisk", {"id": "v", "size": 1, "type": "db", "storagecluster": "c"})
    assert body["blocksize"] == 4096
    assert body["readOnly"] is False
    assert body["templatevdisk"] == "" and body["tlogStoragecluster"] == ""


def test_a_null_is_an_absent_field() -> None:
    assert parse("SendSignalToJob", {"signal": None}) == {"signal": 15}
    refused("CreateContainer", {**CONTAINER, "hostname": None}, "missing required field 'hostname'")


def test_absent_fields_are_zero_filled() -> None:
    body = parse("CreateContainer", {**CONTAINER, "nics": [{"type": "default"}]})
    assert body == {
        **CONTAINER,
        "initProcesses": [], "filesystems": [], "hostNetworking": False, "ports": [], "storage": "",
        "nics": [{"type": "default", "id": "", "hwaddr": "",
                  "config": {"dhcp": False, "cidr": "", "gateway": "", "dns": []}}],
    }


def test_nested_objects_are_zero_filled() -> None:
    assert parse("CreateBridge", BRIDGE)["setting"] == {"cidr": "", "start": "", "end": ""}
    body = parse("CreateVM", {"id": "vm", "memory": 1, "cpu": 1})
    assert body["nics"] == [] and body["disks"] == []
    assert body["userCloudInit"] is None and body["systemCloudInit"] is None


def test_any_json_value_passes_as_cloud_init() -> None:
    body = parse("CreateVM", {"id": "vm", "memory": 1, "cpu": 1, "userCloudInit": [1, {"a": None}]})
    assert body["userCloudInit"] == [1, {"a": None}]


def test_unknown_keys_are_ignored() -> None:
    assert parse("SendSignalToJob", {"signal": 9, "colour": "red"})["signal"] == 9


# Bodies that are not what the operation takes ---------------------------------------------


@pytest.mark.parametrize(("raw", "words"), [
    (b"", ["required", "object (ProcessSignal)"]),
    (b"   ", ["required"]),
    (b"null", ["required"]),
    (b"{\"signal\": ", ["not valid JSON"]),
    (b"\xff\xfe", ["not valid JSON"]),
    (b"[9]", ["request body", "object"]),
    (b"9", ["request body", "object"]),
])
def test_undecodable_or_wrongly_shaped_body(raw: bytes, words: list[str]) -> None:
    refused("SendSignalToJob", raw, *words)


def test_an_array_body() -> None:
    assert parse("CreateStoragePoolDevices", ["/dev/sdb"]) == ["/dev/sdb"]
    refused("CreateStoragePoolDevices", {"devices": ["/dev/sdb"]}, "array")
    refused("CreateStoragePoolDevices", [1], "[0]", "string")


# Validators -------------------------------------------------------------------------------

#: Where each contract rule is checked: operation, the body, and how to put a value in it.
RULE_SITES: dict[str, tuple[str, Any]] = {
    "servicename": ("CreateBridge", lambda v: {**BRIDGE, "name": v}),
    "macaddress_or_empty": ("CreateBridge", lambda v: {**BRIDGE, "hwaddr": v}),
    "ip_or_empty": ("CreateBridge", lambda v: {**BRIDGE, "setting": {"start": v}}),
    "cidr_or_empty": ("CreateBridge", lambda v: {**BRIDGE, "setting": {"cidr": v}}),
    "container_filesystem": ("CreateContainer", lambda v: {**CONTAINER, "filesystems": [v]}),
    "env_entry": ("StartContainerProcess", lambda v: {"name": "/bin/x", "environment": [v]}),
}
EXAMPLES = [
    (rule, value, valid)
    for rule in RULE_SITES
    for valid, key in ((True, "examples_valid"), (False, "examples_invalid"))
    for value in VALIDATORS[rule][key]
]


@pytest.mark.parametrize(("rule", "value", "valid"), EXAMPLES,
                         ids=[f"{r}-{'ok' if ok else 'bad'}-{v!r}" for r, v, ok in EXAMPLES])
def test_contract_examples(rule: str, value: str, valid: bool) -> None:
    """Each rule accepts the contract's valid examples and refuses its invalid ones."""
    operation, body = RULE_SITES[rule]
    if valid:
        parse(operation, body(value))
    else:
        refused(operation, body(value), repr(value))


def test_servicename_also_applies_to_other_names() -> None:
    refused("CreateStoragePool", {"name": "a b", "metadataProfile": "single", "dataProfile": "single",
                                  "devices": ["/dev/sdb"]}, "'name'", "letters, digits")
    refused("DeployNewCluster", {"label": "a/b", "servers": 1, "driveType": "ssd", "nodes": ["n"]},
            "'label'")
    refused("CreateNewVdisk", {"id": "café", "size": 1, "type": "db", "storagecluster": "c"}, "'id'")


@pytest.mark.parametrize("ports", [["80"], ["a:80"], ["80:80:80"], ["80-81:80"]])
def test_port_mapping(ports: list[str]) -> None:
    refused("CreateContainer", {**CONTAINER, "ports": ports}, "ports[0]", "<node port>:<container port>")


def test_good_port_mappings() -> None:
    assert parse("CreateContainer", {**CONTAINER, "ports": ["10022:22", "80:8080"]})["ports"] == [
        "10022:22", "80:8080"]


@pytest.mark.parametrize(("operation", "base", "field"), [
    ("CreateContainer", CONTAINER, "nics"),
    ("CreateVM", {"id": "vm", "memory": 1, "cpu": 1}, "nics"),
])
def test_nic_id_required_unless_default(operation: str, base: dict[str, Any], field: str) -> None:
    parse(operation, {**base, field: [{"type": "default"}]})
    parse(operation, {**base, field: [{"type": "vlan", "id": "100"}]})
    refused(operation, {**base, field: [{"type": "vlan"}]}, "nics[0].id")
    refused(operation, {**base, field: [{"type": "bridge", "id": ""}]}, "nics[0].id")
    refused(operation, {**base, field: [{"type": "default"}, {"type": "vxlan"}]}, "nics[1].id")


def test_enums() -> None:
    refused("CreateBridge", {**BRIDGE, "networkMode": "NONE"}, "'networkMode'",
            "none, static, dnsmasq")
    refused("CreateNewVdisk", {"id": "v", "size": 1, "type": "swap", "storagecluster": "c"},
            "'type'", "boot, db, cache, tmp")


def test_snapshot_name_length() -> None:
    parse("CreateSnapshot", {"name": "x" * 50})
    refused("CreateSnapshot", {"name": "x" * 51}, "'name'", "at most 50")


def test_servers_must_divide_among_nodes() -> None:
    cluster = {"label": "c", "driveType": "ssd", "nodes": ["a", "b", "c"]}
    parse("DeployNewCluster", {**cluster, "servers": 6})
    refused("DeployNewCluster", {**cluster, "servers": 4}, "'servers' (4)", "multiple", "(3)")


def test_the_first_problem_is_named() -> None:
    """With several problems, the outermost (then alphabetically first) field is reported."""
    refused("CreateContainer", {"name": "a b", "hostname": 5, "flist": "x"}, "'hostname'")
