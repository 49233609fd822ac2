"""
``GET /openapi.json``: an OpenAPI 3 document of all 91 operations,
generated from the schemas the request validator uses.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
import pytest_twisted
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from zope.interface import implementer

from plugins.ays.backend import AysBackend
from rpoold.app import RpoolApi
from rpoold.contract import OPERATIONS, OWN_OPERATIONS
from rpoold.errors import BadRequest
from rpoold.interfaces import FAMILIES, IRequestBounds
from rpoold.json_schemas import ContractSchemas
from rpoold.openapi import openapi_document
from rpoold.request_validation import RequestValidator
from testbed.http_api import Api
from tests.support.answers import expect
from tests.support.backends import mock_backend, serve_all

METHODS = ("get", "post", "put", "delete")
REQUESTS = RequestValidator()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document the daemon serves (``test_served`` checks it is this one)."""
    return openapi_document(ContractSchemas())


@pytest_twisted.ensureDeferred
async def test_served(document: dict[str, Any]) -> None:
    api = Api.in_memory(serve_all(mock_backend()).resource())
    reply = expect(await api.get("/openapi.json"), 200)
    assert reply.header("content-type") == "application/json"
    assert reply.json() == document


def test_validates_as_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                found[op["operationId"]] = (path, method, op)
    return found


def test_has_every_operation(document: dict[str, Any]) -> None:
    """
    91 operations, by name, at their paths, and rpoold's own endpoints;
    the ``mems`` alias is one more documented route.
    """
    found = _operations(document)
    names = {op.name for op in OPERATIONS}
    assert len(names) == 91
    assert names <= set(found)
    assert set(found) - names == {"GetContainerMemInfoAlias"} | {op.name for op in OWN_OPERATIONS}
    for op in (*OPERATIONS, *OWN_OPERATIONS):
        path, method, _ = found[op.name]
        assert (path, method) == (op.path, op.method.lower())


@pytest.mark.parametrize("op", (*OPERATIONS, *OWN_OPERATIONS),
                         ids=[op.name for op in (*OPERATIONS, *OWN_OPERATIONS)])
def test_operation_is_described(document: dict[str, Any], op: Any) -> None:
    """Its success status, its request and response schemas, its Location, its error answers."""
    _, _, described = _operations(document)[op.name]
    responses = described["responses"]
    success = responses[str(op.success)]
    if op.response is not None:
        media = op.response_media_type
        assert "schema" in success["content"][media], success
    else:
        assert "content" not in success
    if op.location is not None:
        assert "Location" in success["headers"]
    if op.request is not None:
        assert "schema" in described["requestBody"]["content"]["application/json"]
    elif op.name == "FileUpload":
        assert "multipart/form-data" in described["requestBody"]["content"]
    else:
        assert "requestBody" not in described
    errors = {code for code in responses if code.startswith(("4", "5"))}
    assert errors, responses
    for code in errors:
        assert responses[code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    if op.path_parameters or op.request is not None:
        assert "400" in responses
    parameters = {p["name"] for p in described.get("parameters", []) if p["in"] == "path"}
    assert parameters == set(op.path_parameters)


def _validator(document: dict[str, Any], ref: str) -> Draft202012Validator:
    schema = {"$ref": ref, "components": document["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize(("operation", "good", "bad"), [
    ("CreateContainer",
     {"name": "c", "hostname": "c", "flist": "f", "nics": [{"type": "default"}]},
     {"name": "c", "hostname": "c", "flist": "f", "nics": [{"type": "vlan"}]}),
    ("CreateBridge",
     {"name": "b", "networkMode": "static", "setting": {"cidr": "10.0.0.1/24"}},
     {"name": "b", "networkMode": "static", "setting": {"start": "10.0.0"}}),
    ("DeployNewCluster",
     {"label": "l", "servers": 1, "driveType": "ssd", "nodes": ["n"]},
     {"label": "l", "servers": 1, "driveType": "tape", "nodes": ["n"]}),
])
def test_request_schemas_are_the_validators(document: dict[str, Any], operation: str,
                                            good: dict[str, Any], bad: dict[str, Any]) -> None:
    """What the daemon's validator accepts and refuses, the published schema does too."""
    _, _, described = _operations(document)[operation]
    ref = described["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    published = _validator(document, ref)
    assert published.is_valid(good)
    assert not published.is_valid(bad)
    internal = serve_all(mock_backend()).requests.validator(operation)
    assert internal.is_valid(good) and not internal.is_valid(bad)


def _published(document: dict[str, Any], operation: str) -> Any:
    """The published request schema of ``operation``, read by an ECMA-262 validator (as clients read it)."""
    _, _, described = _operations(document)[operation]
    schema = described["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]},
                                              validate_formats=True)


def _accepted(operation: str, body: Any) -> bool:
    try:
        REQUESTS.body(operation, json.dumps(body).encode())
    except BadRequest:
        return False
    return True


CONTAINER = {"name": "c", "hostname": "c", "flist": "f"}
VM = {"id": "vm", "memory": 128, "cpu": 1}
CLUSTER = {"label": "l", "driveType": "ssd"}

#: Bodies each operation's validator accepts (True) or refuses (False).
SAME_ANSWER = [
    # null counts as absent wherever a field may be absent, and only there
    ("CreateBridge", {"name": "b", "networkMode": "none", "setting": None, "hwaddr": None, "nat": None},
     True),
    ("CreateBridge", {"name": None, "networkMode": "none"}, False),
    ("CreateContainer", {**CONTAINER, "storage": None, "nics": None, "ports": None}, True),
    ("CreateContainer", {**CONTAINER, "hostname": None}, False),
    ("CreateContainer", {**CONTAINER, "nics": [{"type": "vlan", "id": None}]}, False),
    ("CreateVM", {**VM, "disks": None, "nics": None, "userCloudInit": None}, True),
    ("CreateVM", {**VM, "disks": [None]}, False),
    ("SendSignalToJob", {"signal": None}, True),
    # checks beyond types and enums: patterns, multiples, non-empty, lengths
    ("FileDelete", {"path": "0"}, False),
    ("FileDelete", {"path": "/tmp/../x"}, False),
    ("FileDelete", {"path": "/tmp/x"}, True),
    ("JoinZerotier", {"nwid": "AAA"}, False),
    ("JoinZerotier", {"nwid": "8056c2e21c000001"}, True),
    ("DeployNewCluster", {**CLUSTER, "servers": 3, "nodes": ["a", "b"]}, False),
    ("DeployNewCluster", {**CLUSTER, "servers": 4, "nodes": ["a", "b"]}, True),
    ("DeployNewCluster", {**CLUSTER, "servers": 2, "nodes": ["a", "a"]}, False),
    ("DeployNewCluster", {**CLUSTER, "servers": 256, "nodes": [f"n{i}" for i in range(32)]}, True),
    ("DeployNewCluster", {**CLUSTER, "servers": 33, "nodes": [f"n{i}" for i in range(33)]}, False),
    ("CreateStoragePoolDevices", [""], False),
    ("CreateStoragePoolDevices", ["/dev/sdb", "/dev/sdc"], True),
    ("CreateStoragePoolDevices", ["/dev/sdb", "/dev/sdb"], False),
    ("CreateVM", {**VM, "cpu": 1000000}, False),
    ("CreateVM", {**VM, "cpu": 1024, "memory": 67108864}, True),
    ("CreateBridge", {"name": "b" * 16, "networkMode": "none"}, False),
    ("CreateBridge", {"name": "br0\n", "networkMode": "none"}, False),
    ("CreateBridge", {"name": "..", "networkMode": "none"}, False),
    ("CreateContainer", {**CONTAINER, "nics": [{"type": "bridge", "id": "b" * 16}]}, False),
    ("CreateContainer", {**CONTAINER, "nics": [{"type": "vlan", "id": "0"}]}, True),
    ("CreateContainer", {**CONTAINER, "nics": [{"type": "zerotier", "id": "AAA"}]}, False),
    ("CreateContainer", {**CONTAINER, "ports": ["0:80"]}, False),
    ("CreateContainer", {**CONTAINER, "hostname": "caf\u00e9"}, False),
    ("CreateContainer", {**CONTAINER, "filesystems": ["pool 1:fs"]}, False),
    ("CreateNewVdisk", {"id": "v", "size": 1, "type": "db", "storagecluster": "c", "blocksize": 3000}, False),
    ("SendSignalToProcess", {"signal": 64}, True),
    ("SendSignalToProcess", {"signal": 65}, False),
]


@pytest.mark.parametrize(("operation", "body", "accepted"), SAME_ANSWER,
                         ids=[f"{op}-{n}" for n, (op, _, _) in enumerate(SAME_ANSWER)])
def test_the_document_says_what_the_validator_takes(document: dict[str, Any], operation: str,
                                                    body: Any, accepted: bool) -> None:
    """A client that follows the published schema never sends what the server refuses, nor the reverse."""
    assert _accepted(operation, body) is accepted
    assert _published(document, operation).is_valid(body) is accepted


def test_path_parameters_are_bounded(document: dict[str, Any]) -> None:
    _, _, described = _operations(document)["GetNodeProcess"]
    schemas = {p["name"]: p["schema"] for p in described["parameters"]}
    assert schemas["processid"] == {"type": "integer", "minimum": 1, "maximum": 4194303}
    assert schemas["nodeid"]["maxLength"] == 64
    _, _, described = _operations(document)["GetBridge"]
    assert {p["name"]: p["schema"] for p in described["parameters"]}["bridgeid"]["maxLength"] == 15
    _, _, described = _operations(document)["FileDownload"]
    query = next(p for p in described["parameters"] if p["in"] == "query")
    assert query["schema"]["maxLength"] == 1024 and query["required"]


@implementer(IRequestBounds)
class _SixteenBits:
    request_bounds = {"VMCreate.memory": {"maximum": 65535}, "BridgeCreate.name": {"maxLength": 8}}


def test_a_backend_narrows_the_bounds_of_the_families_it_serves() -> None:
    """The AYS backend's UInt16 memory: the validator refuses above it and the document says so."""
    backends: dict[str, Any] = {f.name: object() for f in FAMILIES}
    backends["vms"] = _SixteenBits()  # it serves vms, not bridges
    api = RpoolApi(backends)
    document = openapi_document(api.schemas)
    memory = document["components"]["schemas"]["VMCreateInput"]["properties"]["memory"]
    assert memory["maximum"] == 65535
    assert document["components"]["schemas"]["BridgeCreateInput"]["properties"]["name"]["maxLength"] == 15
    with pytest.raises(BadRequest, match="'memory' must be at most 65535"):
        api.requests.body("CreateVM", b'{"id": "vm", "memory": 65536, "cpu": 1}')
    assert AysBackend.request_bounds["VMCreate.memory"] == {"maximum": 65535}
