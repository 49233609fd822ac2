"""
``GET /openapi.json``: an OpenAPI 3 document of all 93 operations,
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
from rpoold.auth import Authenticator, Role
from rpoold.contract import ALL_OPERATIONS, OPERATIONS, OWN_OPERATIONS
from rpoold.errors import BadRequest
from rpoold.interfaces import FAMILIES, IRequestBounds
from rpoold.json_schemas import ContractSchemas
from rpoold.openapi import openapi_document, with_servers
from rpoold.openapi_texts import SUMMARIES
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
    served = reply.json()
    # The in-memory client's Host header: the server the document names.
    assert served.pop("servers") == [{"url": "http://rpoold.test", "description": "this daemon"}]
    assert served == document


def test_validates_as_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)
    validate(json.loads(with_servers(json.dumps(document).encode(), "http://127.0.0.1:8080")))


@pytest_twisted.ensureDeferred
async def test_servers_name_the_host_asked() -> None:
    """``servers`` is the scheme and ``Host`` of the request; a Host that is no host name gives ``/``."""
    api = Api.in_memory(serve_all(mock_backend()).resource())
    for host, url in [("10.1.2.3:8443", "http://10.1.2.3:8443"), ("[::1]:80", "http://[::1]:80"),
                      ("pool.example.org", "http://pool.example.org"),
                      ("a b/c", "/"), ("evil.example\"/x", "/")]:
        reply = expect(await api.request("GET", "/openapi.json", headers={"Host": host}), 200)
        assert reply.json()["servers"][0]["url"] == url, host


def test_summaries_and_descriptions(document: dict[str, Any]) -> None:
    """Each operation (rpoold's own too) has a summary of its own (not its id, not another's), its notes."""
    found = _operations(document)
    summaries = [found[op.name][2]["summary"] for op in ALL_OPERATIONS]
    assert set(SUMMARIES) == {op.name for op in ALL_OPERATIONS}
    assert len(set(summaries)) == len(ALL_OPERATIONS)
    for op in ALL_OPERATIONS:
        described = found[op.name][2]
        assert described["summary"] not in (op.name, ""), op.name
        assert " " in described["summary"], op.name
        for note in op.notes:
            assert note in described["description"], op.name
        assert "security" not in described


def _examples(document: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every ``example`` of the document: where, the value, the schema it must fit."""
    found = []
    for name, (_, _method, described) in _operations(document).items():
        for parameter in described.get("parameters", []):
            if "example" in parameter:
                found.append((f"{name} {parameter['name']}", parameter["example"], parameter["schema"]))
        for media in described.get("requestBody", {}).get("content", {}).values():
            if "example" in media:
                found.append((f"{name} body", media["example"], media["schema"]))
        for code, answer in described["responses"].items():
            for media in answer.get("content", {}).values():
                if "example" in media:
                    found.append((f"{name} {code}", media["example"], media["schema"]))
    return found


def test_examples_are_from_the_seed_and_valid(document: dict[str, Any]) -> None:
    """The seed's examples fit their schemas; only reading operations get example path parameters."""
    examples = _examples(document)
    where = {w for w, _, _ in examples}
    assert {"GetMemInfo 200", "CreateContainer body", "GetNode nodeid", "GetContainerJob jobid"} <= where
    assert not any(w.startswith(("DeleteNode ", "RebootNode ", "DeleteContainer ")) for w in where)
    for what, value, schema in examples:
        validator = Draft202012Validator({**schema, "components": document["components"]},
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [e.message for e in validator.iter_errors(value)]
        assert not errors, (what, errors)
    mem = {w: v for w, v, _ in examples}["GetMemInfo 200"]
    assert mem["total"] == 2102710272


def test_secured_document_declares_its_security() -> None:
    """With authentication on: the bearer scheme, on every operation, with the role each needs."""
    auth = Authenticator(enabled=True, tokens={"0" * 64: ("ci", Role.read)})
    api = RpoolApi({f.name: object() for f in FAMILIES}, auth=auth)
    document = json.loads(api.openapi(_FakeRequest()))
    validate(document)
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "static tokens" in scheme["description"] and "JWTs" not in scheme["description"]
    for op in OPERATIONS:
        described = _operations(document)[op.name][2]
        assert described["security"] == [{"bearer": []}], op.name
        assert f"role `{op.role}`" in described["description"], op.name
        assert {"401", "403"} <= set(described["responses"]), op.name


class _FakeRequest:
    """Just what the ``/openapi.json`` route reads and writes."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}

    def getHeader(self, name: bytes) -> bytes | None:
        return {b"Host": b"127.0.0.1:8080"}.get(name)

    def isSecure(self) -> bool:
        return False

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.headers[name] = value


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                found[op["operationId"]] = (path, method, op)
    return found


def test_has_every_operation(document: dict[str, Any]) -> None:
    """
    93 operations (the original's 91 and the pool-wide lists), by name, at
    their paths, and rpoold's own endpoints; the ``mems`` alias and the
    later API's ``POST .../containers/{name}/jobs`` are two more documented
    routes.
    """
    found = _operations(document)
    names = {op.name for op in OPERATIONS}
    assert len(names) == 93
    assert names <= set(found)
    assert set(found) - names == ({"GetContainerMemInfoAlias", "StartContainerProcessAlias"}
                                  | {op.name for op in OWN_OPERATIONS})
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
