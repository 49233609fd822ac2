"""
The OpenAPI 3.1 description of the API, generated from the contract's
JSON Schemas (``rpoold.json_schemas``, the ones the request validator
uses), so there is no second copy to keep.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rpoold.contract import Operation
from rpoold.interfaces import FAMILY_OF_OPERATION
from rpoold.json_schemas import ContractSchemas
from rpoold.names import DOT_NAMES, MAX_LENGTHS, PATH_PARAMETERS, PROCESS_IDS
from rpoold.request_validation import MAX_PATH

#: Suffix of the component schemas that describe request bodies; request
#: and response schemas of one type differ (required fields, rules).
REQUEST_SUFFIX = "Input"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _relink(schema: Any, suffix: str) -> Any:
    """Point ``#/$defs/T`` references at ``#/components/schemas/T<suffix>``."""
    text = json.dumps(schema)
    text = text.replace('"#/$defs/', '"#/components/schemas/')
    if suffix:
        text = _suffix_refs(text, suffix)
    return json.loads(text)


def _suffix_refs(text: str, suffix: str) -> str:
    return re.sub(
        r'"#/components/schemas/(\w+)"', rf'"#/components/schemas/\1{suffix}"', text
    )


def _parameter(name: str) -> dict[str, Any]:
    if name == "processid":
        schema: dict[str, Any] = {
            "type": "integer",
            "minimum": PROCESS_IDS[0],
            "maximum": PROCESS_IDS[1],
        }
    else:
        schema = {"type": "string", "pattern": PATH_PARAMETERS[name], "maxLength": MAX_LENGTHS[name],
                  "not": {"enum": list(DOT_NAMES)}}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(schemas: ContractSchemas, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": spec.get("type", "string")}
    schema.update({key: spec[key] for key in ("pattern", "minimum", "maximum") if key in spec})
    if name == "path":  # a container path, as ``DeleteFile.path``
        schema.update(pattern=schemas.rules["container_path"]["pattern"], maxLength=MAX_PATH)
    return {"name": name, "in": "query", "required": bool(spec.get("required")), "schema": schema}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }


_OPERATION_REF = {"$ref": "#/components/schemas/Operation"}

#: How every write may also answer (rpoold's operations, ``rpoold.operations_api``).
_ACCEPTED = {
    "description": "accepted: the write goes on as an operation (asked with `Prefer: respond-async`, "
                   "or its work outlived the wait); `Location` names the operation",
    "headers": {
        "Location": {"description": "/operations/{operationid}", "schema": {"type": "string"}},
        "Preference-Applied": {"description": "respond-async, when it was asked",
                               "schema": {"type": "string"}},
    },
    "content": {"application/json": {"schema": _OPERATION_REF}},
}


def _operation(schemas: ContractSchemas, op: Operation, secured: bool) -> dict[str, Any]:
    family = FAMILY_OF_OPERATION.get(op.name)
    doc: dict[str, Any] = {
        "operationId": op.name,
        "tags": [family.name if family is not None else op.family],
        "summary": op.name,
    }
    if op.notes:
        doc["description"] = "\n\n".join(op.notes)
    parameters = [_parameter(p) for p in op.path_parameters]
    parameters += [_query_parameter(schemas, name, spec) for name, spec in op.query.items()]
    if parameters:
        doc["parameters"] = parameters
    if op.name == "FileUpload":
        doc["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    elif op.request is not None:
        schema = _relink(schemas.request_body_schema(op.name), REQUEST_SUFFIX)
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    success: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        if op.response_media_type == "text/event-stream":
            success["content"] = {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "x-rpoold-event-data": _relink(schemas.body_schema(op.response), ""),
                }
            }
        elif op.response_media_type == "application/octet-stream":
            success["content"] = {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}
                }
            }
        else:
            success["content"] = {
                "application/json": {
                    "schema": _relink(schemas.body_schema(op.response), "")
                }
            }
    if op.location is not None:
        success["headers"] = {
            "Location": {
                "description": "path of the resource",
                "schema": {"type": "string"},
            }
        }
    responses: dict[str, Any] = {str(op.success): success}
    if op.is_write:
        doc["description"] = (doc.get("description", "") + "\n\n" if doc.get("description") else "") + (
            "Accepts `Prefer: respond-async` (202 at once, with the operation) and `Prefer: wait=N`; "
            "a write whose work goes on after its wait answers 202 with the operation.")
        if op.success != 202:
            responses["202"] = _ACCEPTED
    if op.request is not None or parameters:
        responses["400"] = _error("invalid request")
    if secured:
        responses["401"] = _error("credentials missing or invalid")
        responses["403"] = _error("the credentials' role may not call this operation")
    if op.request is not None or op.name == "FileUpload":
        responses["413"] = _error("request body too large")
        responses["415"] = _error("request body of the wrong content type")
    if op.path_parameters:
        responses["404"] = _error("no such resource")
    if op.method == "POST" and op.location is not None:
        responses["409"] = _error("already exists")
    if op.name == "CancelOperation":
        responses["409"] = _error("the operation has ended, or its work cannot be stopped now")
    responses["502"] = _error("backend unreachable")
    responses["504"] = _error("backend timeout")
    responses["default"] = _error("error")
    doc["responses"] = responses
    return doc


def openapi_document(schemas: ContractSchemas, secured: bool = False) -> dict[str, Any]:
    """
    :param secured: authentication is on: declare the bearer scheme and
        the 401 and 403 answers.
    :returns: the OpenAPI 3.1 document of every contract operation and of
        rpoold's own endpoints.
    """
    paths: dict[str, dict[str, Any]] = {}
    for op in (*schemas.operations, *schemas.own_operations):
        for path in (op.path, *op.path_aliases):
            paths.setdefault(path, {})[op.method.lower()] = _operation(schemas, op, secured)
            if path != op.path:
                paths[path][op.method.lower()]["operationId"] = f"{op.name}Alias"
                paths[path][op.method.lower()]["deprecated"] = True
    components: dict[str, Any] = {}
    for name, schema in schemas.response_definitions.items():
        components[name] = _relink(schema, "")
    for name in schemas.request_definitions:
        components[name + REQUEST_SUFFIX] = _relink(schemas.published(name), REQUEST_SUFFIX)
    components["Error"] = _relink(schemas.type_schema("Error", "response"), "")
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "G8OS Resource Pool API (rpoold)",
            "version": "1.1.0",
            "description": schemas.document.get("title", ""),
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A static token, or a JWT from the configured identity provider.",
            }
        }
        document["security"] = [{"bearer": []}]
    return document
