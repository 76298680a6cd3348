"""Either trailing-slash form of a route is the same route.

The dialects disagree: SelfCommunity paths end with ``/`` (``/api/v2/media/``),
the Files API item path does not (``/api/media/files/{id}``), and clients get it
wrong both ways. aiohttp's ``normalize_path_middleware`` answers with a redirect,
which loses the body of a POST or PATCH (clients turn it into a GET or refuse to
follow it), so this middleware serves the other form directly: a request that
matched no route is resolved again with the slash added or removed, and if that
finds a route, the request runs through the other middlewares to that route's
handler, as if it had been sent that way (so errors, the access log and metrics
treat it like any request). It must be the outermost middleware.
"""
from __future__ import annotations

from functools import partial

from aiohttp import web
from yarl import URL


def _other_form(raw_path: str) -> str | None:
    if raw_path == "/":
        return None
    return raw_path[:-1] if raw_path.endswith("/") else raw_path + "/"


@web.middleware
async def accept_either_slash(request: web.Request, handler):
    unmatched = request.match_info.http_exception
    if unmatched is None or unmatched.status != 404:
        return await handler(request)  # matched, or a known path with another method (405)
    other = _other_form(request.rel_url.raw_path)
    if other is None:
        return await handler(request)
    query = request.rel_url.raw_query_string
    alternative = request.clone(rel_url=URL(other + (f"?{query}" if query else ""), encoded=True))
    match_info = await request.app.router.resolve(alternative)
    if match_info.http_exception is not None:
        return await handler(request)  # a plain 404
    match_info.add_app(request.app)
    match_info.freeze()
    alternative._match_info = match_info  # the hand-off aiohttp's own normalize_path_middleware uses
    chain = match_info.handler
    for app in reversed(match_info.apps):  # the middlewares aiohttp would have run for that route
        for middleware in reversed(app.middlewares):
            if middleware is not accept_either_slash:
                chain = partial(middleware, handler=chain)
    return await chain(alternative)
