"""DatoCMS uploads: ``/dato/uploads`` (list, create), ``/dato/uploads/{id}`` (read, update,
destroy), references, and the bulk tag/destroy operations.

Creating an upload, or giving one a new file, answers 202 with a job: the file is
hashed, probed and measured by the workers, and ``/dato/job-results/{id}``
(``gateway.api.dato.job_results``) answers with the upload once that is in.
Metadata changes answer at once.
"""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from gateway.api.common import base_url, require_user
from gateway.api.dato import jsonapi
from gateway.api.dato.upload_input import (CREATABLE, UPDATABLE, filters_of, order_of, page_of, path_upload_id,
                                           relationship_ids, tag_list, upload_attributes)
from gateway.api.dato.upload_json import split_filename, upload_json
from gateway.core.job_results import Outcome
from gateway.keys import JOB_RESULTS, LIBRARY, UPLOAD_REQUESTS

routes = web.RouteTableDef()


@contextlib.asynccontextmanager
async def taken_file(request: web.Request, user, path: str):
    """The upload request's file, handed back to the request if what uses it fails (takeable
    again, or swept on expiry); an empty file is no upload."""
    requests = request.app[UPLOAD_REQUESTS]
    file = await requests.take(user, path)
    try:
        if file.size == 0:
            raise jsonapi.invalid_field("path", "VALIDATION_INVALID", "the uploaded file is empty")
        yield file
    except BaseException:
        await asyncio.shield(requests.give_back(file))
        raise


@routes.get("/dato/uploads")
async def list_uploads(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit, offset = page_of(request)
    total, found = await request.app[LIBRARY].search(user, filters_of(request), order_of(request), limit=limit,
                                                     offset=offset)
    base = base_url(request)
    return jsonapi.many([upload_json(base, media) for media in found], total)


@routes.post("/dato/uploads")
async def create_upload(request: web.Request) -> web.Response:
    user = await require_user(request)
    _, attributes, _ = await jsonapi.read_resource(request, "upload")
    details = upload_attributes(attributes, CREATABLE)
    if "path" not in details:
        raise jsonapi.invalid_field("path", "VALIDATION_REQUIRED", "path is required: an upload request's id")
    async with taken_file(request, user, details.pop("path")) as file:
        media = await request.app[LIBRARY].create(user, file, details)
    return jsonapi.job_accepted(await request.app[JOB_RESULTS].start(user, media_id=media.id, status=201))


@routes.get("/dato/uploads/{id}")
async def get_upload(request: web.Request) -> web.Response:
    user = await require_user(request)
    media = await request.app[LIBRARY].readable(user, path_upload_id(request))
    return jsonapi.one(upload_json(base_url(request), media))


@routes.put("/dato/uploads/{id}")
async def update_upload(request: web.Request) -> web.Response:
    user = await require_user(request)
    media_id = path_upload_id(request)
    library = request.app[LIBRARY]
    current = await library.changeable(user, media_id)
    _, attributes, _ = await jsonapi.read_resource(request, "upload")
    details = upload_attributes(attributes, UPDATABLE)
    strategy = request.query.get("replace_strategy", "create_new_url")
    if strategy not in ("create_new_url", "keep_url"):
        raise jsonapi.invalid_field("replace_strategy", "VALIDATION_INVALID", "create_new_url or keep_url")
    if "basename" in details:  # a rename keeps the extension: the bytes are the same kind of file
        details["filename"] = details.pop("basename") + split_filename(current.title)[1]
    if "path" not in details:
        return jsonapi.one(upload_json(base_url(request), await library.update(user, media_id, details)))
    async with taken_file(request, user, details.pop("path")) as file:
        media = await library.replace_file(user, media_id, file, details, keep_url=strategy == "keep_url")
    return jsonapi.job_accepted(await request.app[JOB_RESULTS].start(user, media_id=media.id, status=200))


@routes.delete("/dato/uploads/{id}")
async def destroy_upload(request: web.Request) -> web.Response:
    """200 with the upload as it was (the client reads the body; a 204 breaks it)."""
    user = await require_user(request)
    media = await request.app[LIBRARY].destroy(user, path_upload_id(request))
    return jsonapi.one(upload_json(base_url(request), media))


@routes.get("/dato/uploads/{id}/references")
async def upload_references(request: web.Request) -> web.Response:
    """Records that use the upload: the gateway has no records, so none."""
    user = await require_user(request)
    await request.app[LIBRARY].readable(user, path_upload_id(request))
    return jsonapi.reply({"data": []})


@routes.post("/dato/uploads/bulk/tag")
async def bulk_tag(request: web.Request) -> web.Response:
    user = await require_user(request)
    _, attributes, relationships = await jsonapi.read_resource(request, "upload_bulk_tag_operation")
    tags = tag_list("tags", attributes.get("tags"))
    await request.app[LIBRARY].add_tags(user, relationship_ids(relationships, "uploads"), tags)
    return jsonapi.job_accepted(await request.app[JOB_RESULTS].start(user, outcome=Outcome(200, {"data": []})))


@routes.post("/dato/uploads/bulk/destroy")
async def bulk_destroy(request: web.Request) -> web.Response:
    user = await require_user(request)
    _, _, relationships = await jsonapi.read_resource(request, "upload_bulk_destroy_operation")
    library = request.app[LIBRARY]
    ids = relationship_ids(relationships, "uploads")
    for media_id in ids:  # all or nothing: any unknown or foreign id refuses the whole operation
        await library.changeable(user, media_id)
    for media_id in ids:
        await library.destroy(user, media_id)
    return jsonapi.job_accepted(await request.app[JOB_RESULTS].start(user, outcome=Outcome(200, {"data": []})))


# OpenAPI (gateway/openapi.py assembles it)

_text = {"type": ["string", "null"], "maxLength": 2000}
_locale_values = {"type": "object", "additionalProperties": False, "properties": {
    "alt": _text, "title": _text, "custom_data": {"type": ["object", "null"]},
    "focal_point": {"type": ["object", "null"], "required": ["x", "y"], "additionalProperties": False,
                    "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1},
                                   "y": {"type": "number", "minimum": 0, "maximum": 1}}},
    "poster_time": {"type": ["number", "null"]}}}
_DETAILS = {
    "author": _text, "copyright": _text, "notes": _text,
    "tags": {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 64,
                                                          "pattern": r"\S"}},
    "default_field_metadata": {"type": "object", "description": "Per locale; a write patches key by key.",
                               "propertyNames": {"pattern": "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
                               "additionalProperties": _locale_values},
}
_PATH = {"type": "string", "description": "An upload request's id (`POST /dato/upload-requests`).",
         "example": "/1/0f3a...-photo.png"}
_nullable_int = {"type": ["integer", "null"]}
_nullable_text = {"type": ["string", "null"]}
_UPLOAD_ATTRIBUTES = {
    "size": {"type": "integer"}, "width": _nullable_int, "height": _nullable_int, "path": {"type": "string"},
    "basename": {"type": "string"}, "filename": {"type": "string"}, "url": {"type": "string"},
    "format": _nullable_text, "author": _nullable_text, "copyright": _nullable_text, "notes": _nullable_text,
    "md5": _nullable_text, "duration": _nullable_int, "frame_rate": _nullable_int,
    "mux_playback_id": _nullable_text, "mux_mp4_highest_res": _nullable_text, "blurhash": _nullable_text,
    "thumbhash": _nullable_text, "is_image": {"type": "boolean"}, "created_at": {"type": "string"},
    "updated_at": {"type": "string"}, "mime_type": _nullable_text, "tags": {"type": "array"},
    "smart_tags": {"type": "array"}, "exif_info": {"type": "object"}, "colors": {"type": "array"},
    "default_field_metadata": {"type": "object"}}
UPLOAD = jsonapi.doc_resource("upload", _UPLOAD_ATTRIBUTES, required=tuple(_UPLOAD_ATTRIBUTES))
UPLOADS = {"type": "object", "required": ["data", "meta"], "properties": {
    "data": {"type": "array", "items": UPLOAD["properties"]["data"]},
    "meta": {"type": "object", "required": ["total_count"], "properties": {"total_count": {"type": "integer"}}}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "example": "1"}
_UPLOAD_IDS = {"uploads": {"type": "object", "required": ["data"], "properties": {"data": {
    "type": "array", "minItems": 1, "maxItems": 500, "items": {
        "type": "object", "required": ["type", "id"],
        "properties": {"type": {"const": "upload"}, "id": {"type": "string", "pattern": "^[0-9]{1,18}$"}}}}}}}
_LIST_PARAMETERS = [
    {"name": "filter[ids]", "in": "query", "schema": {"type": "string"}, "description": "Comma-separated ids."},
    {"name": "filter[type]", "in": "query", "schema": {"type": "string",
                                                       "enum": ["image", "video", "audio", "pdf_document"]}},
    {"name": "filter[query]", "in": "query", "schema": {"type": "string"},
     "description": "Text in the filename, author, copyright, notes, tags, alt or title."},
    {"name": "filter[fields][type][eq]", "in": "query", "schema": {"type": "string"}},
    {"name": "filter[fields][md5][eq]", "in": "query", "schema": {"type": "string"}},
    {"name": "filter[fields][size][gt]", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "filter[fields][tags][contains]", "in": "query", "schema": {"type": "string"}},
    {"name": "order_by", "in": "query", "schema": {"type": "string"}, "example": "_created_at_DESC,size_ASC"},
    {"name": "page[offset]", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "page[limit]", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    {"name": "locale", "in": "query", "schema": {"type": "string"}, "description": "Accepted and ignored."},
]
_TAGS = ["dato"]
_bulk = {"tags": _TAGS, "security": jsonapi.BEARER,
         "responses": {"202": jsonapi.JOB, **jsonapi.doc_errors(401, 404, 415, 422, 429, 503)}}

OPENAPI = {
    "/dato/uploads": {
        "get": {"operationId": "datoListUploads", "tags": _TAGS, "summary": "Uploads this token may see",
                "security": jsonapi.BEARER, "parameters": _LIST_PARAMETERS,
                "responses": {"200": jsonapi.doc_reply("A page, with `meta.total_count`.", UPLOADS),
                              **jsonapi.doc_errors(401, 422, 429, 503)}},
        "post": {"operationId": "datoCreateUpload", "tags": _TAGS, "summary": "An upload from an upload request",
                 "security": jsonapi.BEARER,
                 "requestBody": jsonapi.doc_body("upload", {"path": _PATH, **_DETAILS}, required=("path",)),
                 "responses": {"202": jsonapi.JOB, **jsonapi.doc_errors(401, 413, 415, 422, 429, 503)}},
    },
    "/dato/uploads/{id}": {
        "parameters": [_ID],
        "get": {"operationId": "datoGetUpload", "tags": _TAGS, "summary": "One upload", "security": jsonapi.BEARER,
                "responses": {"200": jsonapi.doc_reply("The upload.", UPLOAD),
                              **jsonapi.doc_errors(401, 404, 429, 503)}},
        "put": {"operationId": "datoUpdateUpload", "tags": _TAGS, "security": jsonapi.BEARER,
                "summary": "Change metadata, rename (`basename`) or give a new file (`path`)",
                "parameters": [{"name": "replace_strategy", "in": "query",
                                "schema": {"type": "string", "enum": ["create_new_url", "keep_url"]}}],
                "requestBody": jsonapi.doc_body("upload", {"path": _PATH, "basename": {"type": "string"},
                                                           **_DETAILS}),
                "responses": {"200": jsonapi.doc_reply("The upload (metadata changes).", UPLOAD),
                              "202": jsonapi.JOB, **jsonapi.doc_errors(401, 404, 413, 415, 422, 429, 503)}},
        "delete": {"operationId": "datoDestroyUpload", "tags": _TAGS, "summary": "Delete; answers with the upload",
                   "security": jsonapi.BEARER, "responses": {"200": jsonapi.doc_reply("The deleted upload.", UPLOAD),
                                                             **jsonapi.doc_errors(401, 404, 429, 503)}},
    },
    "/dato/uploads/{id}/references": {
        "parameters": [_ID],
        "get": {"operationId": "datoUploadReferences", "tags": _TAGS, "summary": "Records using it (none here)",
                "security": jsonapi.BEARER,
                "responses": {"200": jsonapi.doc_reply("An empty list.", {
                    "type": "object", "required": ["data"], "properties": {"data": {"type": "array", "maxItems": 0}}}),
                    **jsonapi.doc_errors(401, 404, 429, 503)}},
    },
    "/dato/uploads/bulk/tag": {"post": {
        **_bulk, "operationId": "datoBulkTag", "summary": "Add tags to uploads",
        "requestBody": jsonapi.doc_body("upload_bulk_tag_operation", {"tags": _DETAILS["tags"]}, required=("tags",),
                                        relationships=_UPLOAD_IDS)}},
    "/dato/uploads/bulk/destroy": {"post": {
        **_bulk, "operationId": "datoBulkDestroy", "summary": "Delete uploads (all or none)",
        "requestBody": jsonapi.doc_body("upload_bulk_destroy_operation", {}, relationships=_UPLOAD_IDS)}},
}
