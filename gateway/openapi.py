"""The OpenAPI 3.1 document, served at ``GET /openapi.json``.

Each route module under ``gateway/api/`` keeps the docs of its routes next to
them, as a module-level ``OPENAPI`` dict (a "paths" fragment) and optionally
``OPENAPI_SCHEMAS`` (component schemas it owns). This module owns what they
share (the error shapes, the error responses, paging, the two token schemes) and
assembles the document from the modules whose handlers the app's router holds,
so a module that registers routes is a module whose docs are served. A test walks
the router and fails on any (method, path) the document does not describe.

The helpers below (``ref``, ``errors``, ``body``, ...) keep fragments short; a
fragment may equally be written as plain dicts with ``$ref``s.
"""
from __future__ import annotations

import json
import sys
import weakref
from typing import Any, Iterable

from aiohttp import web

routes = web.RouteTableDef()

OPENAPI_VERSION = "3.1.0"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The security requirement of every operation that does not say otherwise: either token scheme.
TOKEN_REQUIRED = [{"bearerAuth": []}, {"tokenAuth": []}]
PUBLIC: list = []  # an operation's ``security`` when it needs no token
MAX_ID = 10 ** 18 - 1  # ids are at most 18 digits (gateway.api.common.int_id)


# helpers for fragments

def ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def reply(description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A response: JSON with ``schema``, or no body when it is None."""
    out: dict[str, Any] = {"description": description, **extra}
    if schema is not None:
        out["content"] = json_content(schema)
    return out


def page_of(schema: dict[str, Any]) -> dict[str, Any]:
    """DRF's LimitOffsetPagination envelope around ``schema`` items."""
    return {"type": "object", "required": ["count", "next", "previous", "results"],
            "properties": {"count": {"type": "integer", "minimum": 0},
                           "next": {"type": ["string", "null"]}, "previous": {"type": ["string", "null"]},
                           "results": {"type": "array", "items": schema}}}


ERROR_RESPONSES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                   410: "Gone", 413: "PayloadTooLarge", 416: "RangeNotSatisfiable", 503: "Unavailable"}


def errors(*statuses: int, bad_request: str = "BadRequest") -> dict[str, Any]:
    """``$ref``s to the shared error responses; ``bad_request`` picks the 400 flavour
    (``BadRequest``, ``ValidationFailed`` or ``UploadRejected``)."""
    return {str(status): {"$ref": "#/components/responses/"
                                  + (bad_request if status == 400 else ERROR_RESPONSES[status])}
            for status in statuses}


def links(*operation_ids: str, **parameters: str) -> dict[str, Any]:
    """OpenAPI links from a response to the operations that take what it returns, e.g.
    ``links("getMedia", id="$response.body#/id")`` (clients and stateful fuzzing follow them)."""
    return {operation_id: {"operationId": operation_id, "parameters": dict(parameters)}
            for operation_id in operation_ids}


def body(schema: dict[str, Any], *, required: bool = True, forms: bool = True,
         description: str | None = None) -> dict[str, Any]:
    """A small request body sent as JSON or (``forms``) as a form, as ``read_fields`` takes it."""
    types = ("application/json", *FORM_TYPES) if forms else ("application/json",)
    out: dict[str, Any] = {"required": required, "content": {kind: {"schema": schema} for kind in types}}
    if description:
        out["description"] = description
    return out


def path_id(description: str = "The item's id.") -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}, "example": 1}


PAGING = [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"}]


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


# shared components

_ERROR_PROPERTIES = {
    "detail": {"type": "string", "description": "What went wrong, for people."},
    "code": {"type": "string", "description": "What went wrong, for programs (stable)."},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["detail", "code"], "properties": _ERROR_PROPERTIES,
        "description": "Every error: a stable `code` and a `detail`; some add fields (e.g. `offset`).",
    },
    "ValidationError": {
        "type": "object", "required": ["detail", "code"], "properties": _ERROR_PROPERTIES,
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": "A DRF-style validation error: one key per invalid field, each a list of messages "
                       "(`{\"name\": [\"This field is required.\"], \"code\": \"required\", \"detail\": ...}`).",
    },
    "UploadError": {
        "type": "object", "required": ["detail", "code"],
        "properties": {**_ERROR_PROPERTIES,
                       "offset": {"type": "integer", "minimum": 0,
                                  "description": "Bytes the server holds: where the next chunk must start."},
                       "max_size": {"type": "integer", "description": "The upload size limit (413)."}},
    },
    "Unavailable": {
        "type": "object", "required": ["detail", "code"],
        "properties": {**_ERROR_PROPERTIES, "backend": {"type": "string"}},
    },
    "Thumbnail": {
        "type": "object", "required": ["id", "f", "size", "width", "height"],
        "properties": {"id": {"type": "integer"}, "f": {"type": "string", "description": "URL of the thumbnail"},
                       "size": {"type": "integer", "description": "The longer side it was made for."},
                       "width": {"type": "integer"}, "height": {"type": "integer"}},
    },
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

RESPONSES: dict[str, Any] = {
    "BadRequest": reply("Malformed input (`code` says which): a bad body, header or parameter.", ref("Error")),
    "ValidationFailed": reply("Invalid fields, named as keys holding their messages.", ref("ValidationError")),
    "UploadRejected": reply("The chunk or completion was refused; `offset` says where the upload stands "
                            "(`invalid_content_range`, `invalid_offset`, `invalid_chunk_length`, `md5_mismatch`, "
                            "`upload_incomplete`, ...).", ref("UploadError")),
    "Unauthorized": reply("No token, or an unknown one.", ref("Error"), headers={
        "WWW-Authenticate": {"description": "`Bearer realm=\"gateway\"`", "schema": {"type": "string"}}}),
    "Forbidden": reply("The token's user may not do this.", ref("Error")),
    "NotFound": reply("No such item (or not visible to this user).", ref("Error")),
    "Conflict": reply("Another request holds the resource (`chunk_in_progress`): retry after `Retry-After`.",
                      ref("UploadError"), headers=_RETRY_AFTER),
    "Gone": reply("The upload expired (`upload_expired`); start a new one.", ref("Error")),
    "PayloadTooLarge": reply("The body, or the announced upload, is over the limit.", ref("UploadError")),
    "RangeNotSatisfiable": reply("The `Range` starts past the end of the file.", ref("Error"), headers={
        "Content-Range": {"description": "`bytes */SIZE`", "schema": {"type": "string"}}}),
    "Unavailable": reply("A storage backend is down or slow; retry after `Retry-After`.", ref("Unavailable"),
                         headers=_RETRY_AFTER),
}

PARAMETERS: dict[str, Any] = {
    "limit": {"name": "limit", "in": "query", "required": False,
              "description": "Page size (default 20, at most 100; larger means 100).",
              "schema": {"type": "integer", "minimum": 0}, "example": 20},
    "offset": {"name": "offset", "in": "query", "required": False, "description": "Items to skip.",
               "schema": {"type": "integer", "minimum": 0}, "example": 0},
}

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <token>`"},
    "tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                  "description": "`Authorization: Token <token>` (the DRF TokenAuthentication spelling)"},
}

INFO = {
    "title": "Media gateway",
    "version": "1",
    "description": "Chunked, resumable uploads into S3-compatible storage, speaking the SelfCommunity "
                   "Media API v2 and the Files API. Tokens come from `gateway users add NAME`.",
}


# assembly

def route_modules(app: web.Application) -> list[Any]:
    """The modules whose handlers the app routes to, in route order."""
    seen: dict[str, Any] = {}
    for route in app.router.routes():
        name = getattr(route.handler, "__module__", None)
        if name and name not in seen and name in sys.modules:
            seen[name] = sys.modules[name]
    return list(seen.values())


def build(app: web.Application) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas = dict(SCHEMAS)
    for module in route_modules(app):
        for path, operations in getattr(module, "OPENAPI", {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": OPENAPI_VERSION,
        "info": INFO,
        "servers": [{"url": "/"}],
        "security": TOKEN_REQUIRED,
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "responses": RESPONSES, "parameters": PARAMETERS,
                       "securitySchemes": SECURITY_SCHEMES},
    }


_served: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # app -> encoded document


@routes.get("/openapi.json")
async def serve_document(request: web.Request) -> web.Response:
    encoded = _served.get(request.app)
    if encoded is None:  # the router is frozen once serving, so one build per app is enough
        encoded = _served[request.app] = json.dumps(build(request.app)).encode()
    return web.Response(body=encoded, content_type="application/json")


def operations(document: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(METHOD, path) of every operation in a document."""
    for path, item in document["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                yield method.upper(), path


OPENAPI = {
    "/openapi.json": {"get": {
        "operationId": "openapi", "tags": ["ops"], "summary": "This document", "security": PUBLIC,
        "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
}
