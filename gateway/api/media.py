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
