"""The browser console at ``/console/``: static files shipped in ``gateway/console/``.

Every response carries a strict Content-Security-Policy: scripts, styles and API calls
only from this origin, no inline script or style, no frames, no plugins. The token the
page signs in with lives in ``sessionStorage`` and travels only in the Authorization
header of its API calls, never in a URL.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from gateway.core.errors import bad_request, not_found
from gateway.keys import SETTINGS

routes = web.RouteTableDef()
ROOT = Path(__file__).resolve().parent.parent / "console"
ASSET = re.compile(r"[a-z0-9][a-z0-9.-]{0,60}\.(html|js|css|svg|png)")
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml",
         "png": "image/png"}


def content_security_policy(public_url: str) -> str:
    # Media links and thumbnails use the public URL when one is configured: allow its origin too.
    extra = ""
    if public_url:
        origin = URL(public_url).origin()
        extra = f" {origin}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' blob: data:{extra}; connect-src 'self'{extra}; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")


async def _asset(request: web.Request, name: str) -> web.Response:
    match = ASSET.fullmatch(name)
    if match is None:  # nothing but plain file names of the console's own kinds, so no path tricks
        raise bad_request("invalid_name", "not a console file name")
    path = ROOT / name
    try:
        body = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
    except (FileNotFoundError, IsADirectoryError):
        raise not_found("file") from None
    charset = "; charset=utf-8" if match.group(1) in ("html", "js", "css", "svg") else ""
    return web.Response(body=body, headers={
        "Content-Type": TYPES[match.group(1)] + charset,
        "Content-Security-Policy": content_security_policy(request.app[SETTINGS].public_url),
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache"})


@routes.get("/console/")
async def console_page(request: web.Request) -> web.Response:
    return await _asset(request, "index.html")


@routes.get("/console/{name}")
async def console_asset(request: web.Request) -> web.Response:
    return await _asset(request, request.match_info["name"])


def _static(*types: str) -> dict[str, Any]:
    return {"description": "the page or asset, with a strict Content-Security-Policy header",
            "headers": {"Content-Security-Policy": {"schema": {"type": "string"}}},
            "content": {kind: {"schema": {"type": "string"}} for kind in types}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


OPENAPI: dict[str, Any] = {
    "/console/": {"get": {
        "operationId": "console", "summary": "The browser console (HTML; signs in with an API token)",
        "tags": ["console"], "security": [], "responses": {"200": _static("text/html")}}},
    "/console/{name}": {"get": {
        "operationId": "consoleAsset", "summary": "A file of the console (HTML, JavaScript, CSS, images)",
        "tags": ["console"], "security": [],
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                        "example": "app.js"}],
        "responses": {"200": _static(*TYPES.values()), "400": _error("not a console file name"),
                      "404": _error("no such file")}}},
}
