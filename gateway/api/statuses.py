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
