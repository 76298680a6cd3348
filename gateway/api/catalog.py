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


# OpenAPI (see gateway/openapi.py)
from gateway.openapi import PAGING, body, errors, links, nullable, page_of, path_id, ref  # noqa: E402


def _catalog_docs(prefix: str, label: str, schema: str, writable: dict, conflicts: tuple[int, ...] = ()) -> dict:
    item = {"application/json": {"schema": ref(schema)}}
    written = {"type": "object", "properties": writable}
    put = {"operationId": f"update{schema}", "tags": ["catalog"], "summary": f"Replace a {label}'s fields (staff)",
           "requestBody": body({**written, "required": ["name"]}),
           "responses": {"200": {"description": f"The {label}.", "content": item},
                         **errors(400, 401, 403, 404, 413, 503, bad_request="ValidationFailed")}}
    return {
        f"{prefix}/": {
            "get": {"operationId": f"list{schema}s", "tags": ["catalog"], "summary": f"{label.title()}s by order",
                    "parameters": [*PAGING, {"name": "active", "in": "query", "required": False,
                                             "description": "`true` or `1`: active ones only.",
                                             "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}}],
                    "responses": {"200": {"description": f"A page of {label}s.", "content": {
                        "application/json": {"schema": page_of(ref(schema))}}},
                        **errors(400, 401, 503, bad_request="ValidationFailed")}},
            "post": {"operationId": f"create{schema}", "tags": ["catalog"], "summary": f"Create a {label} (staff)",
                     "requestBody": body({**written, "required": ["name"]}),
                     "responses": {"201": {"description": f"The new {label}.", "content": item, "links": links(
                         f"get{schema}", f"update{schema}", f"patch{schema}", f"delete{schema}", id="$response.body#/id")},
                                   **errors(400, 401, 403, *conflicts, 413, 503, bad_request="ValidationFailed")}},
        },
        f"{prefix}/{{id}}/": {
            "parameters": [path_id()],
            "get": {"operationId": f"get{schema}", "tags": ["catalog"], "summary": f"One {label}",
                    "responses": {"200": {"description": f"The {label}.", "content": item},
                                  **errors(400, 401, 404, 503)}},
            "put": put,
            "patch": {**put, "operationId": f"patch{schema}", "summary": f"Change some of a {label}'s fields (staff)",
                      "requestBody": body(written)},
            "delete": {"operationId": f"delete{schema}", "tags": ["catalog"], "summary": f"Delete a {label} (staff)",
                       "responses": {"204": {"description": "Deleted."}, **errors(400, 401, 403, 404, 503)}},
        },
    }


def _text(limit: int) -> dict:
    return {"type": "string", "maxLength": limit}


_FLAG = {"type": ["boolean", "string"], "description": "A boolean, or `true`/`false`/`1`/`0` in a form."}
_ORDER = {"type": ["integer", "string"], "description": "A 32-bit integer (digits in a form)."}
_CATEGORY_FIELDS = {"name": _text(100), "name_synonyms": _text(500), "tagline": _text(200),
                    "description": _text(5000), "active": _FLAG, "order": _ORDER, "auto_follow": _text(20),
                    "seo_title": _text(200), "seo_description": _text(500)}
_TAG_FIELDS = {"name": _text(100), "description": _text(500), "type": _text(20),
               "color": {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"}, "visible": _FLAG, "active": _FLAG,
               "deleted": _FLAG, "visibility_boost": _FLAG}
_STAMPS = {"id": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
           "lastmod_datetime": {"type": "string", "format": "date-time"}}
_IMAGE = nullable({"type": "string"})

OPENAPI = {**_catalog_docs("/api/v2/category", "category", "Category", _CATEGORY_FIELDS, conflicts=(409,)),
           **_catalog_docs("/api/v2/tag", "tag", "Tag", _TAG_FIELDS)}

OPENAPI_SCHEMAS = {
    "Category": {"type": "object", "required": [*_STAMPS, "name", "slug", "active", "order"], "properties": {
        **_STAMPS, "name": {"type": "string"}, "slug": {"type": "string"}, "name_synonyms": {"type": "string"},
        "tagline": {"type": "string"}, "description": {"type": "string"}, "active": {"type": "boolean"},
        "order": {"type": "integer"}, "auto_follow": {"type": "string"}, "seo_title": {"type": "string"},
        "seo_description": {"type": "string"}, "followers_counter": {"type": "integer"},
        **{name: _IMAGE for name in ("image_original", "image_bigger", "image_big", "image_medium", "image_small",
                                     "emotional_image_original")},
        "emotional_image_position": {"type": "integer"}}},
    "Tag": {"type": "object", "required": [*_STAMPS, "name", "active"], "properties": {
        **_STAMPS, "name": {"type": "string"}, "description": {"type": "string"}, "type": {"type": "string"},
        "color": {"type": "string"}, "visible": {"type": "boolean"}, "active": {"type": "boolean"},
        "deleted": {"type": "boolean"}, "visibility_boost": {"type": "boolean"}}},
}
