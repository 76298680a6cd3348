"""SelfCommunity Media API v2 chunk upload: ``upload/chunk/`` and ``upload/complete/``.

Wire facts (drf-chunked-upload semantics): multipart body, file part named after
the media type, ``Content-Range: bytes START-END/TOTAL`` with END inclusive,
``upload_id`` as a form field or query parameter after the first chunk.
"""
from __future__ import annotations

from aiohttp import web

from gateway.api.common import base_url, media_type, read_fields, require_user
from gateway.api.media_json import media_json
from gateway.api.multipart import MALFORMED, malformed, names, part_chunks, read_field, spool_part, spooled_chunks
from gateway.core import clock
from gateway.core.errors import bad_request
from gateway.core.uploads import ChunkRange
from gateway.keys import MEDIA, METRICS, UPLOADS

FILE_FIELDS = {"image", "document", "eimage", "file"}

routes = web.RouteTableDef()


@routes.post("/api/v2/media/upload/chunk/")
async def upload_chunk(request: web.Request) -> web.Response:
    user = await require_user(request)
    chunk = ChunkRange.parse(request.headers.get("Content-Range"))
    uploads = request.app[UPLOADS]
    uploads.check_size(chunk)  # refuse before reading a byte of the body
    if media_type(request) != "multipart/form-data":
        raise bad_request("invalid_content_type", "chunks are sent as multipart/form-data")
    fields = {"upload_id": request.query.get("upload_id")}
    session, started_new = None, False
    spool, filename = None, None
    try:
        reader = await request.multipart()
        async for part in reader:
            name, part_filename = names(part)
            if name in FILE_FIELDS or part_filename is not None:
                if session is not None or spool is not None:
                    raise bad_request("too_many_files", "send one file part per chunk")
                filename = part_filename
                if fields.get("upload_id") or chunk.start == 0:
                    # Named, or new: a chunk at offset 0 without an upload_id so far can only
                    # start an upload (an existing one is past 0), so it streams through too.
                    session = await uploads.receive_chunk(user, fields.get("upload_id") or None, chunk,
                                                          part_chunks(part), filename)
                    started_new = not fields.get("upload_id")
                else:
                    # The fields that name the upload may follow the file: hold the chunk
                    # (in memory up to 1 MiB, then on disk) until the body is read.
                    spool, _ = await spool_part(part, chunk.length, bad_request(
                        "invalid_chunk_length", "the body is longer than Content-Range announces",
                        offset=chunk.start))
            elif name:
                fields[name] = await read_field(part, name)
        if started_new and fields.get("upload_id"):
            await uploads.discard(session)
            raise bad_request("upload_id_after_file", "send upload_id before the file part (or in the query)",
                              offset=0)
        if session is None:
            if spool is None:
                raise bad_request("missing_file", f"no file part; name it one of {', '.join(sorted(FILE_FIELDS))}")
            session = await uploads.receive_chunk(user, fields.get("upload_id") or None, chunk,
                                                  spooled_chunks(spool), filename)
    except MALFORMED as exc:
        raise malformed(exc) from None
    finally:
        if spool is not None:
            spool.close()
    request.app[METRICS].bytes_received.inc(chunk.length)
    return web.json_response({"upload_id": session["id"], "offset": session["offset"],
                              "expires": clock.iso(session["expires_at"])})


@routes.post("/api/v2/media/upload/complete/")
async def upload_complete(request: web.Request) -> web.Response:
    user = await require_user(request)
    fields = await read_fields(request)
    upload_id = fields.get("upload_id") or request.query.get("upload_id")
    media = await request.app[MEDIA].complete_upload(user, str(upload_id or ""), str(fields.get("type", "")),
                                                     str(fields.get("md5", "")))
    request.app[METRICS].uploads_completed.inc()
    return web.json_response(media_json(media, base_url(request)), status=201)


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import body, errors, links, ref  # noqa: E402  (docs sit below the routes they describe)

_MEDIA_TYPES = ["image", "document", "eimage", "editor_image"]
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}

OPENAPI = {
    "/api/v2/media/upload/chunk/": {"post": {
        "operationId": "uploadChunk", "tags": ["media"], "summary": "Send one chunk of an upload",
        "description": "drf-chunked-upload semantics. The first chunk (offset 0, no `upload_id`) starts an upload; "
                       "later chunks name it in the `upload_id` form field (before the file part) or the query, "
                       "and must start at the offset the server holds (a wrong start is a 400 with `offset`). "
                       "Exactly one file part, named `image`, `document`, `eimage` or `file`.",
        "parameters": [
            {"name": "Content-Range", "in": "header", "required": True,
             "description": "`bytes START-END/TOTAL`, END inclusive; the file part must hold END-START+1 bytes.",
             "schema": {"type": "string", "pattern": "^bytes [0-9]{1,19}-[0-9]{1,19}/[0-9]{1,19}$"},
             "example": "bytes 0-9/10"},
            {"name": "upload_id", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "The upload to continue (alternative to the form field)."},
        ],
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "properties": {
                "upload_id": {"type": "string", "description": "Absent on the first chunk."},
                "file": _BINARY, "image": _BINARY, "document": _BINARY, "eimage": _BINARY}},
            "encoding": {name: {"contentType": "application/octet-stream"}
                         for name in ("file", "image", "document", "eimage")}}}},
        "responses": {
            "200": {"description": "The chunk is stored.", "content": {"application/json": {"schema": ref("Chunk")}},
                    "links": links("uploadChunk", "uploadComplete", **{"query.upload_id": "$response.body#/upload_id"})},
            **errors(400, 401, 404, 409, 410, 413, 503, bad_request="UploadRejected"),
        },
    }},
    "/api/v2/media/upload/complete/": {"post": {
        "operationId": "uploadComplete", "tags": ["media"], "summary": "Finish an upload into a media",
        "description": "Checks the md5 of every byte received (no re-read) and creates the media. Repeating a "
                       "successful complete with the same md5 returns the same media.",
        "parameters": [{"name": "upload_id", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "The upload (alternative to the body field)."}],
        "requestBody": body({"type": "object", "properties": {
            "upload_id": {"type": "string"},
            "md5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$", "description": "Hex md5 of the whole file."},
            "type": {"type": "string", "enum": _MEDIA_TYPES, "description": "`eimage`: an editor image."}}}),
        "responses": {
            "201": {"description": "The new media.", "content": {"application/json": {"schema": ref("Media")}},
                    "links": links("getMedia", "deleteMedia", "getFile", id="$response.body#/id")},
            **errors(400, 401, 404, 410, 413, 503, bad_request="UploadRejected"),
        },
    }},
}

OPENAPI_SCHEMAS = {
    "Chunk": {"type": "object", "required": ["upload_id", "offset", "expires"], "properties": {
        "upload_id": {"type": "string"},
        "offset": {"type": "integer", "minimum": 0, "description": "Bytes received so far."},
        "expires": {"type": "string", "format": "date-time"}}},
}
