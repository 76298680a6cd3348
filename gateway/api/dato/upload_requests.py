"""DatoCMS upload requests: ``POST /dato/upload-requests`` and the URL the bytes are PUT to.

The official client (``uploadLocalFileToS3`` in @datocms/cma-client-node) PUTs the raw
file to the returned ``url`` with the returned ``request_headers``, its own
``Content-Type`` (from the file extension) and ``Content-Length``, and no
Authorization header; it only looks at ``response.ok``. With S3 and a public endpoint
the URL is a presigned S3 PUT; otherwise it is ``/dato/upload-requests/content``
here, authorized by the single-use token in its query (the query, not the path, so
the token stays out of the request log).
"""
from __future__ import annotations

from aiohttp import web

from gateway.api.common import base_url, require_user
from gateway.api.dato.jsonapi import PREFIX, invalid_field, one, read_resource, reply, resource
from gateway.keys import METRICS, UPLOAD_REQUESTS
from gateway.openapi import PUBLIC, ref
from gateway.openapi import reply as documented

routes = web.RouteTableDef()

KIND = "upload_request"
CONTENT_PATH = f"{PREFIX}/upload-requests/content"
PIECE = 256 * 1024
MAX_FILENAME = 1024  # longer is no file name; safe_filename cuts what it keeps to 200 bytes


@routes.post(f"{PREFIX}/upload-requests")
async def create_upload_request(request: web.Request) -> web.Response:
    user = await require_user(request)
    _, attributes, _ = await read_resource(request, KIND)  # relationships (upload_collection) are ignored
    filename = attributes.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise invalid_field("filename", "VALIDATION_REQUIRED", "filename is required")
    if len(filename) > MAX_FILENAME:
        raise invalid_field("filename", "VALIDATION_INVALID", f"filename has more than {MAX_FILENAME} characters")
    made = await request.app[UPLOAD_REQUESTS].create(user, filename)
    url = made.url or f"{base_url(request)}{CONTENT_PATH}?token={made.token}"  # token_urlsafe needs no quoting
    return one(resource(KIND, made.id, {"url": url, "request_headers": made.request_headers}), status=201)


@routes.put(CONTENT_PATH)
async def put_upload_request_content(request: web.Request) -> web.Response:
    received = await request.app[UPLOAD_REQUESTS].receive(
        request.query.get("token", ""), request.content.iter_chunked(PIECE), request.content_length,
        request.headers.get("Content-Type", "application/octet-stream").split(";", 1)[0].strip())
    request.app[METRICS].bytes_received.inc(received.size)
    return reply({})


# OpenAPI

_API_ERROR = {
    "type": "object", "required": ["data"],
    "description": "A DatoCMS CMA error (JSON:API): `code` is DatoCMS's (`INVALID_FIELD`, `NOT_FOUND`, ...); "
                   "`details` says more (`field` for an invalid attribute, the gateway's own `code`).",
    "properties": {"data": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["id", "type", "attributes"],
        "properties": {"id": {"type": "string"}, "type": {"const": "api_error"},
                       "attributes": {"type": "object", "required": ["code", "details"],
                                      "properties": {"code": {"type": "string"}, "details": {"type": "object"},
                                                     "doc_url": {"type": "string"}}}}}}},
}

OPENAPI_SCHEMAS = {
    "DatoApiError": _API_ERROR,
    "DatoUploadRequest": {
        "type": "object", "required": ["data"],
        "properties": {"data": {
            "type": "object", "required": ["type", "id", "attributes"],
            "properties": {
                "type": {"const": KIND},
                "id": {"type": "string", "description": "The path to create the upload from "
                                                        "(`/{user_id}/{hash_code}-{filename}`).",
                       "example": "/7/0f3c9a1e5b7d4c2a9e8f6b1d3a5c7e9f-photo.png"},
                "attributes": {"type": "object", "required": ["url", "request_headers"], "properties": {
                    "url": {"type": "string", "format": "uri",
                            "description": "PUT the raw file here, without an Authorization header, before "
                                           "the request expires (`GATEWAY_UPLOAD_REQUEST_EXPIRY`)."},
                    "request_headers": {"type": "object", "additionalProperties": {"type": "string"},
                                        "description": "Headers to send with that PUT."}}}}}},
    },
}


def _errors(*statuses: int) -> dict:
    return {str(status): documented("An error in DatoCMS's shape.", ref("DatoApiError")) for status in statuses}


OPENAPI = {
    f"{PREFIX}/upload-requests": {"post": {
        "operationId": "datoCreateUploadRequest", "tags": ["dato"],
        "summary": "Ask for a URL to PUT one file to (DatoCMS CMA)",
        "description": "The first step of creating an upload: PUT the file to the returned `url`, then "
                       "`POST /dato/uploads` with the returned `id` as `path`. The path is bound to this user.",
        "requestBody": {"required": True, "content": {kind: {"schema": {
            "type": "object", "required": ["data"], "properties": {"data": {
                "type": "object", "required": ["type", "attributes"], "properties": {
                    "type": {"const": KIND},
                    "attributes": {"type": "object", "required": ["filename"], "properties": {
                        "filename": {"type": "string", "minLength": 1, "maxLength": MAX_FILENAME,
                                     "example": "photo.png"}}}}}}}}
            for kind in ("application/json", "application/vnd.api+json")}},
        "responses": {"201": documented("The upload request.", ref("DatoUploadRequest")),
                      **_errors(400, 401, 415, 422, 429, 503)},
    }},
    CONTENT_PATH: {"put": {
        "operationId": "datoPutUploadRequestContent", "tags": ["dato"], "security": PUBLIC,
        "summary": "The file's bytes for an upload request (the URL it returned)",
        "description": "Raw bytes with a `Content-Length`; no Authorization: the single-use `token` is the "
                       "permission. A second PUT with the same token, an expired one or an unknown one is "
                       "refused; a body over `GATEWAY_MAX_UPLOAD_SIZE` is refused before it is read.",
        "parameters": [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
                        "description": "The token in the URL `POST /dato/upload-requests` returned."}],
        "requestBody": {"required": True,
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {"200": documented("Stored.", {"type": "object", "maxProperties": 0}),
                      **_errors(400, 404, 409, 410, 411, 413, 503)},
    }},
}
