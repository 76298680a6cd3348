"""Files API (Django file-manager shape): ``/api/media/files/`` and ``/api/media/files/{id}``.

A file is a media document seen through another dialect: ``name`` is the media
title, ``type`` the probed kind. Access is for admins and for staff granted the
``files`` permission (``gateway users grant NAME files``). Read-only fields sent
in an update are ignored, as Django REST framework does; a different ``f`` is
refused, because files are replaced by delete + upload.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import base_url, int_id, media_type, page, page_params, read_fields, require_user
from gateway.api.media_json import content_url, thumbnails_json
from gateway.api.multipart import MALFORMED, malformed, read_field, spool_part, spooled_chunks
from gateway.core import clock, policy
from gateway.core.auth import User
from gateway.core.errors import bad_request, field_error, forbidden, not_found, upload_too_large
from gateway.core.media_model import Media
from gateway.core.names import visible_text
from gateway.keys import MEDIA, METRICS, SETTINGS, USERS

routes = web.RouteTableDef()
KINDS = ("image", "video", "audio", "document", "text", "other")
EDITABLE = {"name": "title", "description": "description"}
MAX_NAME = 255


def human_readable_size(size: int) -> str:
    """1024-based with two decimals: 1413 -> "1.38 KB"."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


async def file_json(request: web.Request, media: Media, owners: dict | None = None) -> dict[str, Any]:
    base = base_url(request)
    owners = {} if owners is None else owners  # one lookup per user on a page, not per file
    if media.user_id not in owners:
        owners[media.user_id] = await request.app[USERS].get(media.user_id)
    owner = owners[media.user_id]
    return {
        "id": media.id,
        "type": media.kind or "other",
        "user": {"id": media.user_id, "username": owner.username if owner else None,
                 "full_name": owner.full_name if owner else ""},
        "f": content_url(base, media),
        "name": media.title,
        "description": media.description,
        "size": media.size,
        "human_readable_size": human_readable_size(media.size),
        "width": media.image_width,
        "height": media.image_height,
        "mode": media.mode,
        "created_at": clock.iso(media.added_at),
        "updated_at": clock.iso(media.updated_at),
        "thumbnails": thumbnails_json(base, media),
        "processing": media.processing,
        "processing_error": media.processing_error,
    }


async def require_manager(request: web.Request) -> User:
    user = await require_user(request)
    if not policy.may_use_files_api(user):
        raise forbidden("the Files API needs an admin, or staff with the 'files' permission")
    return user


async def load(request: web.Request) -> Media:
    """The file behind the path's id; link and embed media have no file (no ``key``), so they
    are as absent here as in the list, whoever owns them."""
    media = await request.app[MEDIA].find(int_id(request.match_info["id"]))
    if media is None or not media.is_file:
        raise not_found("file")
    return media


@routes.get("/api/media/files/")
async def list_files(request: web.Request) -> web.Response:
    await require_manager(request)
    limit, offset = page_params(request)
    kind = request.query.get("type") or None
    if kind is not None and kind not in KINDS:
        raise field_error("type", f"must be one of {', '.join(KINDS)}")
    total, found = await request.app[MEDIA].page(files_only=True, kind=kind, limit=limit, offset=offset)
    owners: dict = {}
    results = [await file_json(request, media, owners) for media in found]
    return web.json_response(page(request, total, limit, offset, results))


@routes.post("/api/media/files/")
async def create_file(request: web.Request) -> web.Response:
    user = await require_manager(request)
    if media_type(request) != "multipart/form-data":
        raise bad_request("invalid_content_type", "send the file as multipart/form-data with a part named 'f'")
    max_size = request.app[SETTINGS].max_upload_size
    if request.content_length is not None and request.content_length > max_size + 64 * 1024:
        raise upload_too_large(max_size)
    fields: dict[str, str] = {}
    spool, length, filename = None, 0, None
    try:
        async for part in await request.multipart():
            if part.name == "f" and part.filename is not None:
                if spool is not None:
                    raise field_error("f", "send one file")
                filename = part.filename
                spool, length = await spool_part(part, max_size, upload_too_large(max_size))
            elif part.name in ("name", "description"):
                fields[part.name] = await read_field(part)
            elif part.name:
                await part.release()  # read-only or unknown fields: ignored, as DRF does
        if spool is None:
            raise field_error("f", "No file was submitted.", "required")
        name = _checked_name(fields.get("name") or filename or "")
        media = await request.app[MEDIA].create_file(user, filename, spooled_chunks(spool), length,
                                                     title=name, description=fields.get("description", ""))
    except MALFORMED as exc:
        raise malformed(exc) from None
    finally:
        if spool is not None:
            spool.close()
    request.app[METRICS].bytes_received.inc(length)
    request.app[METRICS].uploads_completed.inc()
    return web.json_response(await file_json(request, media), status=201)


def _checked_name(name: str) -> str:
    name = visible_text(name).strip()  # no bidi overrides making "x\u202efdp.exe" show as "xexe.pdf"
    if not name:
        raise field_error("name", "This field may not be blank.", "blank")
    if len(name) > MAX_NAME:
        raise field_error("name", f"Ensure this field has no more than {MAX_NAME} characters.", "max_length")
    return name


@routes.get("/api/media/files/{id}")
async def get_file(request: web.Request) -> web.Response:
    await require_manager(request)
    return web.json_response(await file_json(request, await load(request)))


@routes.route("PATCH", "/api/media/files/{id}")
@routes.route("PUT", "/api/media/files/{id}")
async def update_file(request: web.Request) -> web.Response:
    user = await require_manager(request)
    media = await load(request)
    body = await read_fields(request)
    if request.method == "PUT" and "name" not in body:
        raise field_error("name", "This field is required.", "required")
    if "f" in body and body["f"] not in (None, content_url(base_url(request), media)):
        raise field_error("f", "files cannot be replaced; delete this one and upload a new one", "read_only")
    changes = {}
    for field, stored in EDITABLE.items():
        if field in body:
            value = body[field]
            if not isinstance(value, str):
                raise field_error(field, "Not a valid string.")
            changes[stored] = _checked_name(value) if field == "name" else value
    if changes:
        media = await request.app[MEDIA].update_details(user, media, changes)
    return web.json_response(await file_json(request, media))


@routes.delete("/api/media/files/{id}")
async def delete_file(request: web.Request) -> web.Response:
    user = await require_manager(request)
    await request.app[MEDIA].delete(user, (await load(request)).id)
    return web.Response(status=204)


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PAGING, body, errors, links, nullable, page_of, path_id, ref  # noqa: E402

_FILE = {"application/json": {"schema": ref("File")}}
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}
_EDITABLE = {"name": _NAME, "description": {"type": "string"},
             "f": {"type": ["string", "null"], "description": "Read-only: only its current URL (or null) is accepted."}}
_PUT = {"operationId": "updateFile", "tags": ["files"], "summary": "Rename or describe a file",
        "description": "Read-only fields are ignored; a different `f` is refused (delete and upload instead). "
                       "PATCH takes any subset.",
        "requestBody": body({"type": "object", "required": ["name"], "properties": _EDITABLE}),
        "responses": {"200": {"description": "The file.", "content": _FILE},
                      **errors(400, 401, 403, 404, 413, 503, bad_request="ValidationFailed")}}

OPENAPI = {
    "/api/media/files/": {
        "get": {"operationId": "listFiles", "tags": ["files"], "summary": "Every stored file, newest first",
                "description": "Admins, and staff granted the `files` permission.",
                "parameters": [*PAGING, {"name": "type", "in": "query", "required": False,
                                         "schema": {"type": "string", "enum": list(KINDS)}}],
                "responses": {"200": {"description": "A page of files.",
                                      "content": {"application/json": {"schema": page_of(ref("File"))}}},
                              **errors(400, 401, 403, 503, bad_request="ValidationFailed")}},
        "post": {"operationId": "createFile", "tags": ["files"], "summary": "Upload a whole file in one request",
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"type": "object", "required": ["f"], "properties": {
                         "f": {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"},
                         "name": {**_NAME, "description": "Defaults to the file name."},
                         "description": {"type": "string", "maxLength": 4096}}},
                     "encoding": {"f": {"contentType": "application/octet-stream"}}}}},
                 "responses": {"201": {"description": "The new file.", "content": _FILE, "links": links(
                     "getFile", "updateFile", "patchFile", "deleteFile", "getMedia", id="$response.body#/id")},
                               **errors(400, 401, 403, 413, 503, bad_request="ValidationFailed")}},
    },
    "/api/media/files/{id}": {
        "parameters": [path_id("The file's (media) id.")],
        "get": {"operationId": "getFile", "tags": ["files"], "summary": "One file",
                "responses": {"200": {"description": "The file.", "content": _FILE},
                              **errors(400, 401, 403, 404, 503)}},
        "put": _PUT,
        "patch": {**_PUT, "operationId": "patchFile",
                  "requestBody": body({"type": "object", "properties": _EDITABLE})},
        "delete": {"operationId": "deleteFile", "tags": ["files"], "summary": "Delete a file (any owner's)",
                   "responses": {"204": {"description": "Deleted."}, **errors(400, 401, 403, 404, 503)}},
    },
}

OPENAPI_SCHEMAS = {
    "File": {
        "type": "object",
        "required": ["id", "type", "user", "f", "name", "description", "size", "human_readable_size", "width",
                     "height", "mode", "created_at", "updated_at", "thumbnails", "processing", "processing_error"],
        "properties": {
            "id": {"type": "integer"}, "type": {"type": "string", "enum": list(KINDS)},
            "user": {"type": "object", "properties": {"id": {"type": "integer"},
                                                      "username": nullable({"type": "string"}),
                                                      "full_name": {"type": "string"}}},
            "f": {"type": "string", "description": "The content URL."}, "name": {"type": "string"},
            "description": {"type": "string"}, "size": {"type": "integer"},
            "human_readable_size": {"type": "string", "example": "1.38 KB"},
            "width": nullable({"type": "integer"}), "height": nullable({"type": "integer"}),
            "mode": nullable({"type": "string"}),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "thumbnails": {"type": "array", "items": ref("Thumbnail")},
            "processing": {"type": "string", "enum": ["pending", "done", "failed"]},
            "processing_error": nullable({"type": "string"}),
        },
    },
}
