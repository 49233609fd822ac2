"""
``GET /openapi.json``: an OpenAPI 3 document of all 91 operations,
generated from the schemas the request validator uses.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from rpoold.contract import OPERATIONS, OWN_OPERATIONS
from rpoold.json_schemas import ContractSchemas
from rpoold.openapi import openapi_document
from testbed.http_api import Api
from tests.support.answers import expect
from tests.support.backends import mock_backend, serve_all

METHODS = ("get", "post", "put", "delete")


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
