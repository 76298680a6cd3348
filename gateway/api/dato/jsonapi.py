"""JSON:API as the DatoCMS CMA speaks it: request documents in, resources and errors out.

Every reply, errors and 404s included, is ``application/json``: the official
client (@datocms/cma-client-node) retries a GET forever, and throws on other
methods, when the content type lacks ``application/json`` (``vnd.api+json`` too).
Requests may come as ``application/json`` or ``application/vnd.api+json``.

Errors are ``{"data": [{"id", "type": "api_error", "attributes": {"code",
"details", "doc_url"}}]}``. Core raises ``GatewayError`` with the gateway's own
codes; ``render_error`` maps them onto DatoCMS's (``INVALID_AUTHORIZATION_HEADER``,
``NOT_FOUND``, ``INVALID_FIELD``, ...), so core stays dialect-free. The app's error
middleware calls it for every path under ``PREFIX`` (``ERROR_SHAPES`` in app.py).
"""
from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from gateway.api.common import media_type
from gateway.core import json_input
from gateway.core.errors import GatewayError

PREFIX = "/dato"
JSON = "application/json"
ACCEPTED_TYPES = ("application/json", "application/vnd.api+json")
DOC_URL = "https://www.datocms.com/docs/content-management-api/errors"

# Gateway codes by status -> DatoCMS codes; a code listed in CODES wins over the status default.
STATUS_CODES = {400: "INVALID_FIELD", 401: "INVALID_AUTHORIZATION_HEADER", 403: "FORBIDDEN", 404: "NOT_FOUND",
                405: "NOT_FOUND", 409: "STALE_ITEM_VERSION", 410: "NOT_FOUND", 413: "FILE_TOO_BIG",
                415: "INVALID_FORMAT", 422: "INVALID_FIELD", 429: "RATE_LIMIT_EXCEEDED",
                499: "CLIENT_CLOSED_REQUEST", 503: "SERVICE_UNAVAILABLE"}
CODES = {"malformed_json": "INVALID_FORMAT", "malformed_body": "INVALID_FORMAT",
         "number_out_of_range": "INVALID_FORMAT", "upload_too_large": "FILE_TOO_BIG"}


class DatoError(GatewayError):
    """An error already in DatoCMS's terms: ``code`` is theirs and ``details`` goes out as is."""

    def __init__(self, status: int, code: str, details: dict[str, Any] | None = None, message: str = "") -> None:
        super().__init__(status, code, message or code.lower().replace("_", " "), details=details or {})


def invalid_field(field: str, code: str = "VALIDATION_INVALID", message: str = "", **more: Any) -> DatoError:
    """422 ``INVALID_FIELD`` naming the attribute, as DatoCMS reports validation failures."""
    return DatoError(422, "INVALID_FIELD", {"field": field, "code": code, "message": message, **more},
                     message or f"{field} is invalid")


def error_body(status: int, code: str, details: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"code": code, "details": details, "doc_url": DOC_URL}
    if status == 503:
        attributes["transient"] = True  # the client waits and retries a transient error by itself
    return {"data": [{"id": uuid.uuid4().hex[:12], "type": "api_error", "attributes": attributes}]}


def render_error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> web.Response:
    """The error middleware's hook for paths under PREFIX: any gateway error in DatoCMS's shape."""
    if "details" in extra:  # a DatoError: already in DatoCMS's terms
        dato_code, details = code, dict(extra["details"])
    else:
        dato_code = CODES.get(code) or STATUS_CODES.get(status) or ("INTERNAL_SERVER_ERROR" if status >= 500
                                                                  else "INVALID_REQUEST")
        details = {"code": code, "message": message, **{k: v for k, v in extra.items() if _jsonable(v)}}
    return reply(error_body(status, dato_code, details), status=status, headers=headers)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def reply(document: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(document, status=status, headers=headers, content_type=JSON)


def resource(kind: str, resource_id: str, attributes: dict[str, Any],
             relationships: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "id": resource_id, "attributes": attributes}
    if relationships is not None:
        out["relationships"] = relationships
    return out


def one(data: dict[str, Any], *, status: int = 200) -> web.Response:
    return reply({"data": data}, status=status)


def many(data: list[dict[str, Any]], total: int | None = None) -> web.Response:
    return reply({"data": data, "meta": {"total_count": len(data) if total is None else total}})


def job_accepted(job_id: str) -> web.Response:
    """202 with a job: the client polls ``GET /job-results/{id}`` until it answers 200."""
    return reply({"data": {"type": "job", "id": job_id}}, status=202)


async def read_resource(request: web.Request, kind: str) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The ``data`` of a request document: its id (if any), attributes and relationships.

    The body must be JSON (either content type; a missing one is read as JSON, as
    curl users leave it out), an object with ``data.type == kind``.
    """
    if media_type(request) not in (*ACCEPTED_TYPES, "application/octet-stream"):
        raise DatoError(415, "INVALID_FORMAT", {"message": f"send {JSON}"})
    raw = await request.read()  # bounded by the app's client_max_size
    try:
        document = json_input.loads(raw) if raw.strip() else None
    except json_input.MalformedJson as exc:
        raise DatoError(422, "INVALID_FORMAT", {"message": f"the body is not acceptable JSON: {exc}"}) from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise DatoError(422, "INVALID_FORMAT", {"message": 'the body must be {"data": {...}}'})
    if data.get("type") != kind:
        raise invalid_field("type", "VALIDATION_INVALID", f'data.type must be "{kind}"')
    attributes, relationships = data.get("attributes", {}), data.get("relationships", {})
    if not isinstance(attributes, dict) or not isinstance(relationships, dict):
        raise DatoError(422, "INVALID_FORMAT", {"message": "attributes and relationships must be objects"})
    resource_id = data.get("id")
    return (str(resource_id) if resource_id is not None else None), attributes, relationships


# OpenAPI pieces the dialect's route modules share (see gateway/openapi.py)

BEARER = [{"bearerAuth": []}]
_ERROR_SCHEMA = {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["id", "type", "attributes"],
        "properties": {"id": {"type": "string"}, "type": {"const": "api_error"},
                       "attributes": {"type": "object", "required": ["code", "details"],
                                      "properties": {"code": {"type": "string", "example": "INVALID_FIELD"},
                                                     "details": {"type": "object"},
                                                     "doc_url": {"type": "string"},
                                                     "transient": {"type": "boolean"}}}}}}},
}
RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests this token may make per window.",
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "X-RateLimit-Remaining": {"description": "Requests left in this window.",
                              "schema": {"type": "string", "pattern": "^[0-9]+$"}},
}
ERROR_MEANINGS = {
    401: "`INVALID_AUTHORIZATION_HEADER`: no token, or an unknown one.",
    404: "`NOT_FOUND`: no such item, or not this token's.",
    413: "`FILE_TOO_BIG`: over the upload size limit.",
    415: "`INVALID_FORMAT`: the body is not JSON.",
    422: "`INVALID_FIELD` (the attribute is in `details.field`), `INVALID_FORMAT` or `INVALID_FILTER`.",
    429: "`RATE_LIMIT_EXCEEDED`: wait `X-RateLimit-Reset` seconds.",
    503: "A storage backend is down or slow (`transient`: the client retries).",
}


def doc_errors(*statuses: int) -> dict[str, Any]:
    """Documented error replies (JSON:API errors, always ``application/json``)."""
    out = {}
    for status in statuses:
        headers = dict(RATE_HEADERS)
        if status == 429:
            headers["X-RateLimit-Reset"] = {"description": "Whole seconds to wait.", "required": True,
                                            "schema": {"type": "string", "pattern": "^[0-9]+$"}}
        if status == 503:
            headers["Retry-After"] = {"description": "Seconds to wait.", "schema": {"type": "string"}}
        out[str(status)] = {"description": ERROR_MEANINGS[status], "headers": headers,
                            "content": {JSON: {"schema": _ERROR_SCHEMA}}}
    return out


def doc_reply(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": RATE_HEADERS, "content": {JSON: {"schema": schema}}}


def doc_resource(kind: str, attributes: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The schema of ``{"data": {"type": kind, "id", "attributes"}}``."""
    return {"type": "object", "required": ["data"], "properties": {"data": {
        "type": "object", "required": ["type", "id", "attributes"],
        "properties": {"type": {"const": kind}, "id": {"type": "string"},
                       "attributes": {"type": "object", "required": list(required), "properties": attributes},
                       "relationships": {"type": "object"}}}}}


def doc_body(kind: str, attributes: dict[str, Any], *, required: tuple[str, ...] = (),
             relationships: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request document for ``kind``, sent as ``application/json`` (``vnd.api+json`` is read too)."""
    data: dict[str, Any] = {
        "type": "object", "required": ["type", "attributes"] if required else ["type"],
        "properties": {"type": {"const": kind}, "id": {"type": "string"},
                       "attributes": {"type": "object", "required": list(required), "properties": attributes,
                                      "additionalProperties": False}}}
    if relationships:
        data["required"] = [*data["required"], "relationships"]
        data["properties"]["relationships"] = {"type": "object", "required": list(relationships),
                                               "properties": relationships}
    return {"required": True, "content": {JSON: {"schema": {"type": "object", "required": ["data"],
                                                            "properties": {"data": data}}}}}


JOB = doc_reply("Accepted: poll `GET /dato/job-results/{id}` with this id.", {
    "type": "object", "required": ["data"], "properties": {"data": {
        "type": "object", "required": ["type", "id"],
        "properties": {"type": {"const": "job"}, "id": {"type": "string"}}}}})
