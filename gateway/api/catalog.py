"""SelfCommunity API v2 categories and tags: list/retrieve for users, writes for staff."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import int_id, page, page_params, read_fields, require_user
from gateway.core import clock
from gateway.core.catalog import Catalog
from gateway.keys import CATEGORIES, TAGS

routes = web.RouteTableDef()


def item_json(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "created_at": clock.iso(item["created_at"]),
            "lastmod_datetime": clock.iso(item["lastmod_datetime"])}


def _catalog_routes(prefix: str, key: web.AppKey) -> None:
    async def list_items(request: web.Request) -> web.Response:
        await require_user(request)
        limit, offset = page_params(request)
        active = request.query.get("active", "").lower() in ("1", "true")
        total, found = await request.app[key].list(active_only=active, limit=limit, offset=offset)
        return web.json_response(page(request, total, limit, offset, [item_json(i) for i in found]))

    async def create_item(request: web.Request) -> web.Response:
        user = await require_user(request)
        item = await request.app[key].create(user, await read_fields(request))
        return web.json_response(item_json(item), status=201)

    async def get_item(request: web.Request) -> web.Response:
        await require_user(request)
        return web.json_response(item_json(await request.app[key].get(int_id(request.match_info["id"]))))

    async def update_item(request: web.Request) -> web.Response:
        user = await require_user(request)
        catalog: Catalog = request.app[key]
        item = await catalog.update(user, int_id(request.match_info["id"]), await read_fields(request),
                                    partial=request.method == "PATCH")
        return web.json_response(item_json(item))

    async def delete_item(request: web.Request) -> web.Response:
        user = await require_user(request)
        await request.app[key].delete(user, int_id(request.match_info["id"]))
        return web.Response(status=204)

    routes.get(f"{prefix}/")(list_items)
    routes.post(f"{prefix}/")(create_item)
    routes.get(f"{prefix}/{{id}}/")(get_item)
    routes.put(f"{prefix}/{{id}}/")(update_item)
    routes.patch(f"{prefix}/{{id}}/")(update_item)
    routes.delete(f"{prefix}/{{id}}/")(delete_item)


_catalog_routes("/api/v2/category", CATEGORIES)
_catalog_routes("/api/v2/tag", TAGS)
