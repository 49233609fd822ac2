"""
The OpenAPI 3.1 description of the API, generated from the contract's
JSON Schemas (``rpoold.json_schemas``, the ones the request validator
uses), so there is no second copy to keep.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rpoold.contract import Operation, element_type
from rpoold.interfaces import FAMILY_OF_OPERATION
from rpoold.json_schemas import ContractSchemas
from rpoold.listing import CURSOR_PATTERN, MAX_CURSOR, MAX_LIMIT
from rpoold.names import DOT_NAMES, MAX_LENGTHS, PATH_PARAMETERS, PROCESS_IDS
from rpoold.openapi_texts import PARAMETER_EXAMPLES, REQUEST_EXAMPLES, RESPONSE_EXAMPLES, SUMMARIES
from rpoold.request_validation import MAX_FILTER, MAX_PATH

#: Suffix of the component schemas that describe request bodies; request
#: and response schemas of one type differ (required fields, rules).
REQUEST_SUFFIX = "Input"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}

#: The security scheme every operation needs when authentication is on.
SCHEME = "bearer"


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


def _parameter(name: str, with_example: bool = False) -> dict[str, Any]:
    if name == "processid":
        schema: dict[str, Any] = {
            "type": "integer",
            "minimum": PROCESS_IDS[0],
            "maximum": PROCESS_IDS[1],
        }
    else:
        schema = {"type": "string", "pattern": PATH_PARAMETERS[name], "maxLength": MAX_LENGTHS[name],
                  "not": {"enum": list(DOT_NAMES)}}
    parameter: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": schema}
    if with_example and name in PARAMETER_EXAMPLES:
        parameter["example"] = PARAMETER_EXAMPLES[name]
    return parameter


def _description(op: Operation, secured: bool) -> str:
    """The contract's notes on ``op``, and the role it needs when authentication is on."""
    parts = list(op.notes)
    if secured:
        parts.append(f"Needs a token of role `{op.role}` or higher (roles: read < operate < admin).")
    return "\n\n".join(parts)


def _query_parameter(schemas: ContractSchemas, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": spec.get("type", "string")}
    schema.update({key: spec[key] for key in ("pattern", "minimum", "maximum") if key in spec})
    if name == "path":  # a container path, as ``DeleteFile.path``
        schema.update(pattern=schemas.rules["container_path"]["pattern"], maxLength=MAX_PATH)
    if "pattern_of" in spec:  # a node id, as in a path
        of = spec["pattern_of"]
        schema.update({"pattern": PATH_PARAMETERS[of], "maxLength": MAX_LENGTHS[of],
                       "not": {"enum": list(DOT_NAMES)}})
    return {"name": name, "in": "query", "required": bool(spec.get("required")), "schema": schema}


def _list_parameters(schemas: ContractSchemas, op: Operation) -> list[dict[str, Any]]:
    """The query parameters of a list operation: ``limit``, ``cursor`` and its filters."""
    assert op.listing is not None
    parameters: list[dict[str, Any]] = [
        {"name": "limit", "in": "query", "required": False,
         "description": "most items of the page (without it: every item)",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
        {"name": "cursor", "in": "query", "required": False,
         "description": "where the page starts: the cursor of the `Link: <...>; rel=\"next\"` header "
                        "of the page before (opaque)",
         "schema": {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": MAX_CURSOR}},
    ]
    item_type = element_type(op.response or "")[0]
    fields = {f["name"]: f for f in schemas.types.get(item_type, {}).get("fields", [])}
    for name, rule in op.listing.filters.items():
        schema: dict[str, Any] = {"type": "string"}
        choices = fields.get(rule.field or "", {}).get("enum")
        if rule.match == "exact" and choices:
            schema["enum"] = list(choices)
        else:
            schema["maxLength"] = MAX_FILTER
        what = f"`{rule.field}`" if rule.field else "the item"
        description = (f"only the items whose {what} is this" if rule.match == "exact"
                       else f"only the items whose {what} starts with this")
        parameters.append({"name": name, "in": "query", "required": False, "description": description,
                           "schema": schema})
    return parameters


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
        "summary": SUMMARIES[op.name],
    }
    description = _description(op, secured)
    if description:
        doc["description"] = description
    if secured:
        doc["security"] = [{SCHEME: []}]
    reads = op.method == "GET"
    parameters = [_parameter(p, with_example=reads) for p in op.path_parameters]
    parameters += [_query_parameter(schemas, name, spec) for name, spec in op.query.items()]
    if op.listing is not None:
        parameters += _list_parameters(schemas, op)
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
        media: dict[str, Any] = {"schema": schema}
        if op.name in REQUEST_EXAMPLES:
            media["example"] = REQUEST_EXAMPLES[op.name]
        doc["requestBody"] = {"required": True, "content": {"application/json": media}}
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
            answer: dict[str, Any] = {"schema": _relink(schemas.body_schema(op.response), "")}
            if op.name in RESPONSE_EXAMPLES:
                answer["example"] = RESPONSE_EXAMPLES[op.name]
            success["content"] = {"application/json": answer}
    if op.location is not None:
        success["headers"] = {
            "Location": {
                "description": "path of the resource",
                "schema": {"type": "string"},
            }
        }
    if op.listing is not None:
        success.setdefault("headers", {})["Link"] = {
            "description": 'the next page, `<URL>; rel="next"` (absent on the last page)',
            "schema": {"type": "string"},
        }
    if op.fan_out is not None:
        success.setdefault("headers", {})[op.fan_out] = {
            "description": "the nodes that did not answer in time, comma-separated (absent when all did)",
            "schema": {"type": "string"},
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
    if op.path_parameters or "node" in op.query:
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


def openapi_document(schemas: ContractSchemas, secured: bool = False,
                     credentials: tuple[str, ...] = ("static tokens", "JWTs")) -> dict[str, Any]:
    """
    :param secured: authentication is on: declare the bearer scheme, on
        every operation, and the 401 and 403 answers.
    :param credentials: what the bearer scheme takes (``"static tokens"``,
        ``"JWTs"``): the configured kinds, for the scheme's description.
    :returns: the OpenAPI 3.1 document of every contract operation and of
        rpoold's own endpoints, without ``servers`` (which
        :func:`with_servers` adds per request).
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
        kinds = " or ".join(credentials) or "tokens"
        document["components"]["securitySchemes"] = {
            SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT or static token",
                "description": (
                    f"`Authorization: Bearer <token>`, where the token is one of the {kinds} the daemon's "
                    "`[auth]` section accepts (a static token by its SHA-256 digest, a JWT by its "
                    "signature, issuer, audience and expiry). Each operation needs a role: read, "
                    "operate or admin."
                ),
            }
        }
        document["security"] = [{SCHEME: []}]
    return document


def with_servers(document: bytes, server_url: str) -> bytes:
    """
    :param document: a serialised :func:`openapi_document` (a JSON object).
    :param server_url: the base URL the API is served at.
    :returns: ``document`` with ``servers`` naming ``server_url`` first.
    """
    servers = json.dumps([{"url": server_url, "description": "this daemon"}]).encode()
    return b'{"servers": ' + servers + b", " + document[1:]
