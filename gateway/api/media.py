"""SelfCommunity Media API v2: read and delete one media."""
from __future__ import annotations

from aiohttp import web

from gateway.api.common import base_url, int_id, page, page_params, read_fields, require_user
from gateway.api.media_json import media_json
from gateway.keys import LINKS, MEDIA

routes = web.RouteTableDef()


@routes.get("/api/v2/media/")
async def list_media(request: web.Request) -> web.Response:
    """The caller's media, newest first."""
    user = await require_user(request)
    limit, offset = page_params(request)
    total, found = await request.app[MEDIA].page(owner=user.id, limit=limit, offset=offset)
    base = base_url(request)
    return web.json_response(page(request, total, limit, offset, [media_json(m, base) for m in found]))


@routes.post("/api/v2/media/")
async def create_media(request: web.Request) -> web.Response:
    """Link (``url``, ``vimeo``) and ``embed`` media; files come through the chunk upload."""
    user = await require_user(request)
    media = await request.app[LINKS].create(user, await read_fields(request))
    return web.json_response(media_json(media, base_url(request)), status=201)


@routes.put("/api/v2/media/{id}/")
@routes.patch("/api/v2/media/{id}/")
async def set_preview_image(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_fields(request)
    media = await request.app[LINKS].set_image(user, int_id(request.match_info["id"]), body.get("image"))
    return web.json_response(media_json(media, base_url(request)))


@routes.get("/api/v2/media/{id}/")
async def get_media(request: web.Request) -> web.Response:
    user = await require_user(request)
    media = await request.app[MEDIA].get(user, int_id(request.match_info["id"]))
    return web.json_response(media_json(media, base_url(request)))


@routes.delete("/api/v2/media/{id}/")
async def delete_media(request: web.Request) -> web.Response:
    user = await require_user(request)
    await request.app[MEDIA].delete(user, int_id(request.match_info["id"]))
    return web.Response(status=204)


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PAGING, body, errors, links, nullable, page_of, path_id, ref  # noqa: E402

_MEDIA_ID = path_id("The media's id.")
_FILLED = {"type": "string", "pattern": "\\S"}  # blank text is refused as missing
_MEDIA = {"application/json": {"schema": ref("Media")}}
# Where a new media's id leads.
_MEDIA_LINKS = links("getMedia", "setMediaImage", "deleteMedia", id="$response.body#/id")

OPENAPI = {
    "/api/v2/media/": {
        "get": {"operationId": "listMedia", "tags": ["media"], "summary": "The caller's media, newest first",
                "parameters": PAGING,
                "responses": {"200": {"description": "A page of media.",
                                      "content": {"application/json": {"schema": page_of(ref("Media"))}}},
                              **errors(400, 401, 503, bad_request="ValidationFailed")}},
        "post": {"operationId": "createMedia", "tags": ["media"], "summary": "Create a link or embed media",
                 "description": "`url` and `vimeo` media get a preview fetched from the page (within "
                                "`GATEWAY_FETCH_TIMEOUT`, else later by a job); private and loopback addresses "
                                "are refused. Files come through the chunk upload.",
                 "requestBody": body({"oneOf": [
                     {"type": "object", "required": ["type", "url"], "properties": {
                         "type": {"type": "string", "enum": ["url", "vimeo"]},
                         "url": {**_FILLED, "format": "uri", "description": "The page (vimeo: a vimeo.com URL)."}}},
                     {"type": "object", "required": ["type", "embed_type", "embed_id"], "properties": {
                         "type": {"const": "embed"}, "embed_type": _FILLED, "embed_id": _FILLED,
                         "url": {"type": "string"},
                         "metadata": {"type": ["object", "string"],
                                      "description": "An object, or JSON text of one in a form."}}},
                 ]}),
                 "responses": {"201": {"description": "The new media.", "content": _MEDIA, "links": _MEDIA_LINKS},
                               **errors(400, 401, 413, 503, bad_request="ValidationFailed")}},
    },
    "/api/v2/media/{id}/": {
        "parameters": [_MEDIA_ID],
        "get": {"operationId": "getMedia", "tags": ["media"], "summary": "One media (its owner, staff, admins)",
                "responses": {"200": {"description": "The media.", "content": _MEDIA},
                              **errors(400, 401, 403, 404, 503)}},
        "put": {"operationId": "setMediaImage", "tags": ["media"],
                "summary": "Set a link media's preview image from a URL",
                "description": "The image is fetched (through the same address guard), checked to be an image, "
                               "and served from `/previews/{hash_code}`. PATCH is the same.",
                "requestBody": body({"type": "object", "required": ["image"],
                                     "properties": {"image": {**_FILLED, "format": "uri",
                                                              "description": "Image URL."}}}),
                "responses": {"200": {"description": "The media.", "content": _MEDIA},
                              **errors(400, 401, 403, 404, 413, 503, bad_request="ValidationFailed")}},
        "delete": {"operationId": "deleteMedia", "tags": ["media"], "summary": "Delete a media (owner or admin)",
                   "responses": {"204": {"description": "Deleted, with its thumbnails; statuses drop it."},
                                 **errors(400, 401, 403, 404, 503)}},
    },
}
OPENAPI["/api/v2/media/{id}/"]["patch"] = {**OPENAPI["/api/v2/media/{id}/"]["put"], "operationId": "patchMediaImage"}

_TEXT, _INT = {"type": "string"}, {"type": "integer"}
OPENAPI_SCHEMAS = {
    "Media": {
        "type": "object",
        "required": ["id", "hash_code", "added_at", "type", "title", "description", "url", "image", "image_width",
                     "image_height", "order", "embed", "embed_type", "embed_id", "thumbnails", "processing",
                     "processing_error"],
        "properties": {
            "id": _INT, "hash_code": _TEXT, "added_at": {"type": "string", "format": "date-time"},
            "type": {"type": "string", "enum": ["image", "document", "editor_image", "url", "vimeo", "embed"]},
            "title": _TEXT, "description": _TEXT,
            "url": nullable({"type": "string", "description": "The file's content URL, or the link."}),
            "image": nullable({"type": "string", "description": "The image URL (the file itself, or a preview)."}),
            "image_width": nullable(_INT), "image_height": nullable(_INT), "order": _INT,
            "embed": {"type": ["object", "null"], "properties": {
                "id": _INT, "embed_type": _TEXT, "embed_id": _TEXT, "url": nullable(_TEXT),
                "metadata": {"type": "object"}}},
            "embed_type": nullable(_TEXT), "embed_id": nullable(_TEXT),
            "thumbnails": {"type": "array", "items": ref("Thumbnail")},
            "processing": {"type": "string", "enum": ["pending", "done", "failed"],
                           "description": "Thumbnails and checks still running (`pending`) or over."},
            "processing_error": nullable(_TEXT),
            # files only
            "size": _INT, "mime_type": _TEXT, "md5": _TEXT,
            # url and vimeo only
            "keywords": nullable(_TEXT), "choice_images": {"type": ["array", "null"], "items": _TEXT},
            "oembed_type": nullable(_TEXT), "oembed_url": nullable(_TEXT), "oembed_width": nullable(_INT),
            "oembed_height": nullable(_INT), "oembed_duration": nullable(_INT), "oembed_html": nullable(_TEXT),
            "oembed_available": {"type": ["boolean", "null"]}, "oembed_preview_ready": {"type": ["boolean", "null"]},
            "image_source": nullable(_TEXT),
        },
    },
}
