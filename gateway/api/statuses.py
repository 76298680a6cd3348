"""SelfCommunity API v2 statuses: create, list, retrieve, update, delete."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.catalog import item_json
from gateway.api.common import base_url, int_id, page, page_params, read_fields, require_user
from gateway.api.media_json import media_json
from gateway.core import clock
from gateway.keys import CATEGORIES, MEDIA, STATUSES, TAGS, USERS

routes = web.RouteTableDef()


async def status_json(request: web.Request, status: dict[str, Any]) -> dict[str, Any]:
    app, base = request.app, base_url(request)
    categories = await app[CATEGORIES].get_many(status["category_ids"])
    tags = await app[TAGS].get_many(status["tag_ids"])
    medias = await app[MEDIA].find_many(status["media_ids"])
    author = await app[USERS].get(status["author_id"])
    return {
        "id": status["id"],
        "type": "status",
        "action": status.get("action"),
        "text": status["text"],
        "html": status["html"],
        "summary": status["summary"],
        "author": {"id": status["author_id"], "username": author.username if author else None,
                   "real_name": author.full_name if author else ""},
        "added_at": clock.iso(status["added_at"]),
        "last_edited_at": clock.iso(status["last_edited_at"]) if status["last_edited_at"] else None,
        "categories": [item_json(categories[i]) for i in status["category_ids"] if i in categories],
        "medias": [media_json(medias[i], base) for i in status["media_ids"] if i in medias],
        "addressing": [item_json(tags[i]) for i in status["tag_ids"] if i in tags],
        "location": status["location"],
        "comment_count": 0, "view_count": 0, "vote_count": 0, "share_count": 0, "follower_count": 0,
        "flag_count": 0, "deleted": False, "collapsed": False,
    }


@routes.post("/api/v2/status/")
async def create_status(request: web.Request) -> web.Response:
    user = await require_user(request)
    status = await request.app[STATUSES].create(user, await read_fields(request))
    return web.json_response(await status_json(request, status), status=201)


@routes.get("/api/v2/status/")
async def list_statuses(request: web.Request) -> web.Response:
    await require_user(request)
    limit, offset = page_params(request)
    total, found = await request.app[STATUSES].list(limit=limit, offset=offset)
    return web.json_response(page(request, total, limit, offset, [await status_json(request, s) for s in found]))


@routes.get("/api/v2/status/{id}/")
async def get_status(request: web.Request) -> web.Response:
    await require_user(request)
    status = await request.app[STATUSES].get(int_id(request.match_info["id"]))
    return web.json_response(await status_json(request, status))


@routes.put("/api/v2/status/{id}/")
@routes.patch("/api/v2/status/{id}/")
async def update_status(request: web.Request) -> web.Response:
    user = await require_user(request)
    status = await request.app[STATUSES].update(user, int_id(request.match_info["id"]), await read_fields(request),
                                                partial=request.method == "PATCH")
    return web.json_response(await status_json(request, status))


@routes.delete("/api/v2/status/{id}/")
async def delete_status(request: web.Request) -> web.Response:
    user = await require_user(request)
    await request.app[STATUSES].delete(user, int_id(request.match_info["id"]))
    return web.Response(status=204)


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PAGING, body, errors, links, nullable, page_of, path_id, ref  # noqa: E402

_STATUS = {"application/json": {"schema": ref("Status")}}
_IDS = {"type": "array", "items": {"type": "integer"}}
_WRITABLE = {
    "action": {"type": "string", "minLength": 1, "maxLength": 50, "example": "postupdate"},
    "text": {"type": ["string", "null"], "maxLength": 10000,
             "description": "HTML; sanitized, `@username` mentions linked."},
    "categories": {**_IDS, "description": "Category ids."},
    "medias": {**_IDS, "description": "Ids of the author's media."},
    "addressing": {**_IDS, "description": "Tag ids."},
    "location": {"type": ["object", "null"], "required": ["lat", "lng"], "properties": {
        "location": {"type": "string", "maxLength": 255},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180}}},
}
_PUT = {"operationId": "updateStatus", "tags": ["statuses"], "summary": "Replace a status (author or admin)",
        "requestBody": body({"type": "object", "required": ["action", "categories"], "properties": _WRITABLE},
                            forms=False),
        "responses": {"200": {"description": "The status.", "content": _STATUS},
                      **errors(400, 401, 403, 404, 413, 503, bad_request="ValidationFailed")}}

OPENAPI = {
    "/api/v2/status/": {
        "get": {"operationId": "listStatuses", "tags": ["statuses"], "summary": "Statuses, newest first",
                "parameters": PAGING,
                "responses": {"200": {"description": "A page of statuses.",
                                      "content": {"application/json": {"schema": page_of(ref("Status"))}}},
                              **errors(400, 401, 503, bad_request="ValidationFailed")}},
        "post": {"operationId": "createStatus", "tags": ["statuses"], "summary": "Post a status",
                 "requestBody": body({"type": "object", "required": ["action", "categories"],
                                      "properties": _WRITABLE}, forms=False),
                 "responses": {"201": {"description": "The new status.", "content": _STATUS, "links": links(
                     "getStatus", "updateStatus", "patchStatus", "deleteStatus", id="$response.body#/id")},
                               **errors(400, 401, 413, 503, bad_request="ValidationFailed")}},
    },
    "/api/v2/status/{id}/": {
        "parameters": [path_id("The status's id.")],
        "get": {"operationId": "getStatus", "tags": ["statuses"], "summary": "One status",
                "responses": {"200": {"description": "The status.", "content": _STATUS},
                              **errors(400, 401, 404, 503)}},
        "put": _PUT,
        "patch": {**_PUT, "operationId": "patchStatus", "summary": "Change some fields of a status",
                  "requestBody": body({"type": "object", "properties": _WRITABLE}, forms=False)},
        "delete": {"operationId": "deleteStatus", "tags": ["statuses"], "summary": "Delete a status (author or admin)",
                   "responses": {"204": {"description": "Deleted."}, **errors(400, 401, 403, 404, 503)}},
    },
}

_COUNT = {"type": "integer"}
OPENAPI_SCHEMAS = {
    "Status": {
        "type": "object",
        "required": ["id", "type", "action", "text", "html", "summary", "author", "added_at", "last_edited_at",
                     "categories", "medias", "addressing", "location"],
        "properties": {
            "id": {"type": "integer"}, "type": {"const": "status"}, "action": nullable({"type": "string"}),
            "text": {"type": "string"}, "html": {"type": "string"}, "summary": {"type": "string"},
            "author": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "username": nullable({"type": "string"}),
                                                        "real_name": {"type": "string"}}},
            "added_at": {"type": "string", "format": "date-time"},
            "last_edited_at": nullable({"type": "string", "format": "date-time"}),
            "categories": {"type": "array", "items": ref("Category")},
            "medias": {"type": "array", "items": ref("Media")},
            "addressing": {"type": "array", "items": ref("Tag")},
            "location": {"type": ["object", "null"]},
            **{name: _COUNT for name in ("comment_count", "view_count", "vote_count", "share_count",
                                         "follower_count", "flag_count")},
            "deleted": {"type": "boolean"}, "collapsed": {"type": "boolean"},
        },
    },
}
