"""Content delivery: the bytes behind a Media ``url``.

Served through the gateway (not a presigned redirect) so every response carries
the same safety headers whatever the object store: ``nosniff``, and
``Content-Disposition: attachment`` for anything but raster images a browser
renders safely. ETag is the file's md5; one byte range per request (206).
"""
from __future__ import annotations

import logging
import re
from urllib.parse import quote

from aiohttp import web

from gateway.core.errors import GatewayError, not_found
from gateway.core.sniff import SAFE_INLINE_IMAGES
from gateway.keys import MEDIA, OBJECTS
from storage.errors import StorageError

log = logging.getLogger("gateway.content")
routes = web.RouteTableDef()
SINGLE_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # ASCII digits: \d would take any script's
BEYOND_ANY_FILE = 10 ** 19  # what a position of more than 19 digits means, without int() of 5000 digits


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 19 else BEYOND_ANY_FILE


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for one satisfiable range; None to send everything."""
    if not header:
        return None
    match = SINGLE_RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # multiple ranges or a syntax we ignore: RFC 9110 lets us send 200
    first, last = match.groups()
    if first == "":
        start, end = max(size - _position(last), 0), size - 1
    else:
        start, end = _position(first), min(_position(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise GatewayError(416, "range_not_satisfiable", "requested range is outside the file",
                           headers={"Content-Range": f"bytes */{size}"})
    return start, end


@routes.get("/content/{hash_code}/{name}")
async def serve_content(request: web.Request) -> web.StreamResponse:
    media = await request.app[MEDIA].by_hash(request.match_info["hash_code"])
    if media is None or not media.is_file:
        raise not_found("file")
    return await send_object(request, key=media.key, size=media.size, etag=media.md5,
                             content_type=media.mime_type, filename=media.title)


@routes.get("/thumbnails/{hash_code}/{size}")
async def serve_thumbnail(request: web.Request) -> web.StreamResponse:
    media = await request.app[MEDIA].by_hash(request.match_info["hash_code"])
    wanted = request.match_info["size"]
    thumb = next((t for t in (media.thumbnails if media else ()) if str(t.size) == wanted), None)
    if thumb is None:
        raise not_found("thumbnail")
    return await send_object(request, key=thumb.key, size=thumb.bytes, etag=thumb.etag,
                             content_type=thumb.content_type, filename=f"{wanted}-{media.title}")


@routes.get("/previews/{hash_code}")
async def serve_preview(request: web.Request) -> web.StreamResponse:
    media = await request.app[MEDIA].by_hash(request.match_info["hash_code"])
    copy = media.image_copy if media else None
    if copy is None:
        raise not_found("preview image")
    return await send_object(request, key=copy.key, size=copy.bytes, etag=copy.etag,
                             content_type=copy.content_type, filename=f"preview-{media.id}")


async def send_object(request: web.Request, *, key: str, size: int, etag: str, content_type: str,
                      filename: str) -> web.StreamResponse:
    etag = f'"{etag}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable",
        "Content-Type": content_type,
    }
    if content_type not in SAFE_INLINE_IMAGES:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
        headers["Content-Security-Policy"] = "sandbox"
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    wanted = parse_range(request.headers.get("Range"), size) if size else None
    if wanted is not None and request.headers.get("If-Range", etag) != etag:
        wanted = None  # the client's copy is stale: send the whole file
    start, end = wanted or (0, size - 1)
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    response.content_length = end - start + 1 if size else 0
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or not size:
        await response.prepare(request)
        return response
    body = await request.app[OBJECTS].get(key, start, end)
    await response.prepare(request)
    try:
        async for piece in body.chunks:
            await response.write(piece)
    except StorageError as exc:
        # The headers and part of the body are out: an error reply now would land inside
        # the file's bytes. Close the connection instead; the client sees a short body.
        log.warning("download cut short", extra={"key": key, "error": str(exc)})
        response.force_close()
        return response
    await response.write_eof()
    return response


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PUBLIC, errors  # noqa: E402

_HASH = {"name": "hash_code", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The media's `hash_code`."}
_CONDITIONS = [
    {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}, "example": "bytes=0-99",
     "description": "One range, `bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`; other forms get the whole "
                    "file (200)."},
    {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "The ETag the client holds: a different one gets the whole file."},
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "A matching ETag gets 304."},
]
_HEADERS = {
    "ETag": {"description": "The md5 of the bytes, quoted.", "schema": {"type": "string"}},
    "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
    "X-Content-Type-Options": {"schema": {"type": "string", "const": "nosniff"}},
    "Content-Disposition": {"description": "`attachment` for anything but raster images a browser shows safely.",
                            "schema": {"type": "string"}},
}
_BYTES = {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}


def _delivery(operation_id: str, summary: str, params: list) -> dict:
    return {"get": {
        "operationId": operation_id, "tags": ["content"], "summary": summary, "security": PUBLIC,
        "description": "Public (the URL is the capability). Bytes are served through the gateway with "
                       "`nosniff`; HEAD gives the headers only.",
        "parameters": [*params, *_CONDITIONS],
        "responses": {
            "200": {"description": "The whole file, in its own content type.", "headers": _HEADERS,
                    "content": _BYTES},
            "206": {"description": "The requested range.", "content": _BYTES, "headers": {
                **_HEADERS, "Content-Range": {"description": "`bytes START-END/SIZE`", "schema": {"type": "string"}}}},
            "304": {"description": "Not modified (`If-None-Match` matched).", "headers": _HEADERS},
            **errors(404, 416, 503),
        }}}


OPENAPI = {
    "/content/{hash_code}/{name}": _delivery("getContent", "A stored file's bytes", [
        _HASH, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "The file name (any: the hash names the file)."}]),
    "/thumbnails/{hash_code}/{size}": _delivery("getThumbnail", "A thumbnail's bytes (JPEG, PNG or WebP)", [
        _HASH, {"name": "size", "in": "path", "required": True, "schema": {"type": "string"}, "example": "320",
                "description": "One of the media's thumbnail sizes."}]),
    "/previews/{hash_code}": _delivery("getPreview", "A link media's chosen preview image", [_HASH]),
}
