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
from rpoold.request_validation import RequestValidator, python_pattern
from rpoold.validation_messages import SHOWN, shown

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
    "bridge_name": ("CreateBridge", lambda v: {**BRIDGE, "name": v}),
    "container_path": ("FileDelete", lambda v: {"path": v}),
    "block_device": ("CreateStoragePoolDevices", lambda v: [v]),
    "zerotier_network": ("JoinZerotier", lambda v: {"nwid": v}),
    "vlan_tag": ("CreateContainer", lambda v: {**CONTAINER, "nics": [{"type": "vlan", "id": v}]}),
    "vxlan_id": ("CreateVM", lambda v: {"id": "vm", "memory": 1, "cpu": 1,
                                        "nics": [{"type": "vxlan", "id": v}]}),
    "port_mapping": ("CreateContainer", lambda v: {**CONTAINER, "ports": [v]}),
    "hostname": ("CreateContainer", lambda v: {**CONTAINER, "hostname": v}),
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
        message = refused(operation, body(value))
        assert repr(value)[:20] in message or "character(s)" in message or "absolute" in message or \
            "normalised" in message or "NUL" in message or "at least 1" in message, message


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


# Bounds --------------------------------------------------------------------------------------

TYPES = rpoold.contract.load()["types"]
REQUEST_FIELDS = [
    (name, f) for name, spec in TYPES.items() if spec.get("used_in_requests") for f in spec["fields"]]


@pytest.mark.parametrize(("type_name", "field"), REQUEST_FIELDS,
                         ids=[f"{t}.{f['name']}" for t, f in REQUEST_FIELDS])
def test_every_request_value_is_bounded(type_name: str, field: dict[str, Any]) -> None:
    """A number has a range, a string a longest length (or a set of values), an array a most items."""
    def bounded(spec: dict[str, Any], kind: str) -> bool:
        if kind in ("integer", "number"):
            return "enum" in spec or ("minimum" in spec and "maximum" in spec)
        if kind == "string":
            return "enum" in spec or "maxLength" in spec
        return kind in ("boolean", "object", "any")

    kind = field["type"]
    if kind == "array":
        assert "maxItems" in field, field
        items = field.get("items", {})
        assert "ref" in items or bounded(items, items.get("type", "string")), field
    else:
        assert bounded(field, kind), field
    if any(key in field for key in ("maximum", "maxLength", "maxItems")):
        # Each bound says why it is what it is (the contract's own max=50 aside).
        assert "bounds_source" in field or "max50" in field.get("rules", ()), field


@pytest.mark.parametrize("rule", [r for r, spec in VALIDATORS.items() if "range" in spec])
def test_a_ranged_pattern_is_exactly_its_range(rule: str) -> None:
    """The decimal patterns (VLAN tags, VXLAN ids, ports) match their range's numbers, and nothing else."""
    lowest, highest = VALIDATORS[rule]["range"]
    pattern = python_pattern(VALIDATORS[rule]["pattern"])
    # A port mapping is two ports: each side is checked with the other at 1.
    shapes = ["{}"] if rule != "port_mapping" else ["{}:1", "1:{}"]
    step = max(1, highest // 50_000)
    for shape in shapes:
        for n in [*range(0, min(highest, 70_000) + 2), *range(0, highest + 2, step), highest, highest + 1]:
            assert bool(pattern.search(shape.format(n))) == (lowest <= n <= highest), (rule, n)
        for text in ("", "-1", "01", " 1", "1 ", "+1", "1e3", "1\n"):
            assert not pattern.search(shape.format(text)), (rule, text)


@pytest.mark.parametrize(("operation", "body", "words"), [
    ("CreateVM", {"id": "big", "memory": 128, "cpu": 1000000}, ["'cpu'", "at most 1024"]),
    ("CreateVM", {"id": "big", "memory": 67108865, "cpu": 1}, ["'memory'", "at most 67108864"]),
    ("UpdateVM", {"memory": 128, "cpu": 1025}, ["'cpu'", "at most 1024"]),
    ("CreateVM", {"id": "vm", "memory": 1, "cpu": 1, "disks": [{"vdiskid": "d", "maxIOps": 10**7 + 1}]},
     ["disks[0].maxIOps", "at most"]),
    ("CreateVM", {"id": "vm", "memory": 1, "cpu": 1, "nics": [{"type": "default"}] * 33},
     ["'nics'", "at most 32 item(s)"]),
    ("CreateBridge", {"name": "b" * 16, "networkMode": "none"}, ["'name'", "at most 15"]),
    ("CreateBridge", {"name": "b" * 300, "networkMode": "none"}, ["'name'", "at most 15"]),
    ("CreateContainer", {**CONTAINER, "name": "c" * 65}, ["'name'", "at most 64"]),
    ("CreateContainer", {**CONTAINER, "nics": [{"type": "bridge", "id": "b" * 16}]}, ["nics[0].id", "15"]),
    ("CreateContainer", {**CONTAINER, "ports": ["0:22"]}, ["ports[0]", "1 to 65535"]),
    ("CreateContainer", {**CONTAINER, "ports": ["22:65536"]}, ["ports[0]"]),
    ("SendSignalToProcess", {"signal": 65}, ["'signal'", "at most 64"]),
    ("CreateNewVdisk", {"id": "v", "size": 65537, "type": "db", "storagecluster": "c"},
     ["'size'", "at most"]),
    ("CreateNewVdisk", {"id": "v", "size": 1, "type": "db", "storagecluster": "c", "blocksize": 1000},
     ["'blocksize'", "4096"]),
    ("ResizeVdisk", {"newSize": 10**9}, ["'newSize'", "at most"]),
    ("RollbackVdisk", {"epoch": 2**32}, ["'epoch'", "at most"]),
    ("CreateFilesystem", {"name": "f" * 51}, ["'name'", "at most 50"]),
    ("CreateFilesystem", {"name": "f", "quota": 2**32}, ["'quota'", "at most"]),
    ("DeployNewCluster", {"label": "c", "servers": 257, "driveType": "ssd", "nodes": ["a"]},
     ["'servers'", "at most 256"]),
    ("DeployNewCluster", {"label": "c", "servers": 2, "driveType": "ssd", "nodes": ["a", "a"]},
     ["'nodes'", "twice"]),
    ("CreateStoragePool", {"name": "p", "metadataProfile": "single", "dataProfile": "single",
                           "devices": [""]}, ["devices[0]", "/dev/"]),
    ("CreateStoragePoolDevices", ["/dev/sdb", "/dev/sdb"], ["request body", "twice"]),
    ("FileDelete", {"path": "0"}, ["'path'", "absolute"]),
    ("FileDelete", {"path": "/" + "p" * 1024}, ["'path'", "at most 1024"]),
    ("JoinZerotier", {"nwid": "AAA"}, ["'nwid'", "ZeroTier"]),
    ("StartContainerProcess", {"name": "/bin/x", "args": ["a"] * 257}, ["'args'", "at most 256"]),
])
def test_bounds_are_400_naming_the_field(operation: str, body: Any, words: list[str]) -> None:
    refused(operation, body, *words)


def test_values_at_the_bounds_are_taken() -> None:
    parse("CreateVM", {"id": "v" * 64, "memory": 67108864, "cpu": 1024,
                       "nics": [{"type": "default"}] * 32, "disks": [{"vdiskid": "d", "maxIOps": 10**7}]})
    parse("CreateBridge", {"name": "b" * 15, "networkMode": "none"})
    parse("SendSignalToProcess", {"signal": 64})
    parse("CreateNewVdisk", {"id": "v", "size": 65536, "type": "db", "storagecluster": "c",
                             "blocksize": 65536})
    parse("CreateContainer", {**CONTAINER, "ports": ["1:65535"], "nics": [{"type": "vlan", "id": "4094"}]})
    parse("DeployNewCluster", {"label": "c", "servers": 256, "driveType": "ssd",
                               "nodes": [f"n{i}" for i in range(32)]})


def test_a_whole_float_in_an_integer_field_reaches_the_backend_as_an_int() -> None:
    body = parse("DeployNewCluster", {"label": "c", "servers": 4.0, "driveType": "ssd", "nodes": ["a", "b"]})
    assert body["servers"] == 4 and type(body["servers"]) is int
    assert type(parse("SendSignalToJob", {"signal": 9.0})["signal"]) is int
    refused("SendSignalToJob", {"signal": 9.5}, "'signal'", "integer")


def test_dollar_is_the_end_of_the_string() -> None:
    """Patterns mean what JSON Schema says (ECMA-262): ``$`` does not match before a final newline."""
    refused("CreateBridge", {**BRIDGE, "name": "br0\n"}, "'name'")
    refused("JoinZerotier", {"nwid": "8056c2e21c000001\n"}, "'nwid'")
    refused("CreateContainer", {**CONTAINER, "ports": ["80:80\n"]}, "ports[0]")


def test_a_long_value_is_echoed_cut() -> None:
    message = refused("StartContainerProcess", {"name": "/bin/x", "environment": ["x" * 4000]},
                      "environment[0]", "(4002 characters)")
    assert len(message) < 200, message
    assert shown("v" * 10) == repr("v" * 10)
    assert shown("v" * 100) == repr("v" * 100)[:SHOWN] + "... (102 characters)"
    message = refused("CreateBridge", {**BRIDGE, "name": "a b" * 5000}, "'name'", "at most 15")
    assert "a b" not in message


@pytest.mark.parametrize(("value", "valid"), [
    ("1", True), ("4194303", True), ("0", False), ("4194304", False), ("99999999999999999999", False),
    ("-1", False), ("1.5", False), ("abc", False)])
def test_process_ids_are_the_ones_linux_gives_out(value: str, valid: bool) -> None:
    if valid:
        assert REQUESTS.path_arguments({"processid": value}) == {"processid": int(value)}
    else:
        with pytest.raises(BadRequest, match=r"processid.*integer from 1 to 4194303"):
            REQUESTS.path_arguments({"processid": value})


@pytest.mark.parametrize(("name", "longest"), [("nodeid", 64), ("containername", 64), ("bridgeid", 15),
                                               ("snapshotname", 50), ("filesystemname", 50)])
def test_path_ids_are_bounded(name: str, longest: int) -> None:
    assert REQUESTS.path_arguments({name: "x" * longest}) == {name: "x" * longest}
    with pytest.raises(BadRequest) as caught:
        REQUESTS.path_arguments({name: "x" * 16_000})
    assert caught.value.message == f"path parameter '{name}' must have at most {longest} character(s)"


# Nesting and sizes of a body ------------------------------------------------------------------


def test_deep_nesting_is_400_naming_the_limit() -> None:
    """A 2 KB body nested 1,000 deep: refused before json.loads (which would recurse)."""
    deep = b"[" * 1000 + b"]" * 1000
    refused("CreateBridge", deep, "nested deeper than 32 levels")
    refused("CreateVM", b'{"id": "vm", "memory": 1, "cpu": 1, "userCloudInit": ' + b'{"a": ' * 40 +
            b"1" + b"}" * 41, "nested deeper than 32 levels")
    body = {"id": "vm", "memory": 1, "cpu": 1, "userCloudInit": 1}
    for _ in range(30):  # 31 levels in all
        body["userCloudInit"] = [body["userCloudInit"]]
    assert parse("CreateVM", body)["userCloudInit"] == body["userCloudInit"]


def test_long_arrays_and_objects_are_400_naming_the_limit() -> None:
    refused("CreateStoragePoolDevices", json.dumps(["/dev/sdb"] * 1025).encode(), "more than 1024 items")
    refused("CreateBridge", json.dumps({f"k{i}": 1 for i in range(1025)}).encode(), "more than 1024 items")
    refused("CreateVM", json.dumps({"id": "vm", "memory": 1, "cpu": 1,
                                   "userCloudInit": [[0] * 1025]}).encode(), "more than 1024 items")
    # 1024 items pass the scan (and the schema's own, smaller, maxItems speaks).
    refused("CreateStoragePoolDevices", json.dumps([f"/dev/sd{i}" for i in range(1024)]).encode(),
            "at most 256 item(s)")


def test_brackets_and_commas_in_strings_do_not_count() -> None:
    text = "[{," * 1000 + '\\"\\' + "]}"
    body = parse("StartContainerProcess", {"name": "/bin/echo", "args": [text], "stdin": "," * 5000})
    assert body["args"] == [text]


def test_an_unterminated_string_is_invalid_json() -> None:
    refused("CreateBridge", b'{"name": "' + b'\\"' * 10000, "not valid JSON")
    refused("CreateBridge", b'["' + b"[" * 100, "not valid JSON")
