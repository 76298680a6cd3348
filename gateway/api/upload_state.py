"""Where an unfinished chunk upload stands: ``GET /api/v2/media/upload/chunk/?upload_id=…``.

A client resuming after a restart (the console after a page reload, ``gateway upload``
after an interrupted run) asks for the offset instead of guessing it from a refused chunk.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.common import require_user
from gateway.core import clock
from gateway.core.errors import bad_request
from gateway.keys import UPLOADS

routes = web.RouteTableDef()


@routes.get("/api/v2/media/upload/chunk/")
async def upload_state(request: web.Request) -> web.Response:
    user = await require_user(request)
    upload_id = request.query.get("upload_id", "")
    if not upload_id:
        raise bad_request("missing_upload_id", "upload_id is required")
    session = await request.app[UPLOADS].session(user, upload_id[:200])
    return web.json_response({"upload_id": session["id"], "offset": session["offset"], "total": session["total"],
                              "expires": clock.iso(session["expires_at"]), "status": session["status"]})


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "UploadState": {"type": "object", "required": ["upload_id", "offset", "total", "expires", "status"],
                    "properties": {"upload_id": {"type": "string"}, "offset": {"type": "integer", "minimum": 0},
                                   "total": {"type": "integer", "minimum": 0},
                                   "expires": {"type": "string", "format": "date-time"},
                                   "status": {"type": "string", "enum": ["uploading", "complete"]}}},
}

OPENAPI: dict[str, Any] = {
    "/api/v2/media/upload/chunk/": {"get": {
        "operationId": "uploadState", "summary": "The offset of an unfinished upload, to resume it", "tags": ["media"],
        "security": [{"bearerAuth": []}, {"tokenAuth": []}],
        "parameters": [{"name": "upload_id", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "the upload's state",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadState"}}}},
            "400": _error("upload_id is missing"),
            "401": _error("no or an invalid token"),
            "404": _error("no such upload for this user"),
            "410": _error("the upload has expired")}}},
}
