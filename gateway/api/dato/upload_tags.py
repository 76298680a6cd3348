"""``/dato/upload-tags``: the tag names a user has created or put on uploads.

An upload tag's id is its name (what uploads list in ``tags``); these are not the
integer-id tags of ``/api/v2/tag/``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import require_user
from gateway.api.dato import jsonapi
from gateway.api.dato.upload_input import page_of, tag_list
from gateway.keys import LIBRARY

routes = web.RouteTableDef()


def tag_json(tag: dict[str, Any]) -> dict[str, Any]:
    return jsonapi.resource("upload_tag", tag["name"], {"name": tag["name"]})


@routes.get("/dato/upload-tags")
async def list_tags(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit, offset = page_of(request)
    query = request.query.get("filter[query]", "").strip()[:64]
    total, tags = await request.app[LIBRARY].list_tags(user, query=query, limit=limit, offset=offset)
    return jsonapi.many([tag_json(tag) for tag in tags], total)


@routes.post("/dato/upload-tags")
async def create_tag(request: web.Request) -> web.Response:
    user = await require_user(request)
    _, attributes, _ = await jsonapi.read_resource(request, "upload_tag")
    (name,) = tag_list("name", [attributes.get("name")])
    return jsonapi.one(tag_json(await request.app[LIBRARY].create_tag(user, name)), status=201)


_TAG = jsonapi.doc_resource("upload_tag", {"name": {"type": "string"}}, required=("name",))
OPENAPI = {"/dato/upload-tags": {
    "get": {"operationId": "datoListUploadTags", "tags": ["dato"], "summary": "This token's upload tags, by name",
            "security": jsonapi.BEARER,
            "parameters": [{"name": "filter[query]", "in": "query", "schema": {"type": "string"}},
                           {"name": "page[offset]", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                           {"name": "page[limit]", "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
            "responses": {"200": jsonapi.doc_reply("Tags, with `meta.total_count`.", {
                "type": "object", "required": ["data", "meta"],
                "properties": {"data": {"type": "array", "items": _TAG["properties"]["data"]},
                               "meta": {"type": "object", "required": ["total_count"]}}}),
                **jsonapi.doc_errors(401, 422, 429, 503)}},
    "post": {"operationId": "datoCreateUploadTag", "tags": ["dato"], "summary": "A tag (its id is its name)",
             "security": jsonapi.BEARER,
             "requestBody": jsonapi.doc_body("upload_tag", {"name": {"type": "string", "minLength": 1, "maxLength": 64,
                                                                     "pattern": r"\S"}}, required=("name",)),
             "responses": {"201": jsonapi.doc_reply("The tag.", _TAG), **jsonapi.doc_errors(401, 415, 422, 429, 503)}},
}}
