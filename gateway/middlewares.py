"""Request middlewares: request id + access log + metrics, and error rendering.

Every failure leaves as JSON: GatewayError with its own status, aiohttp's HTTP
errors (unknown route, wrong method) with theirs, an unavailable backend as 503
with Retry-After, anything else as a 500 whose traceback goes to the log only.
A client that went away is counted as 499 in logs and metrics. A dialect with
its own error shape (DatoCMS's JSON:API errors) registers a renderer for its path
prefix in ``ERROR_SHAPES``; everything else gets ``json_error``'s shape.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time

from typing import Callable

from aiohttp import web

from gateway.core.errors import GatewayError
from gateway.keys import METRICS
from gateway.logs import request_id
from storage.errors import BackendUnavailable, ObjectNotFound

log = logging.getLogger("gateway.http")


def json_error(status: int, code: str, message: str, headers: dict | None = None, **extra) -> web.Response:
    return web.json_response({"detail": message, "code": code, **extra}, status=status, headers=headers)


ErrorRenderer = Callable[..., web.Response]  # same signature as json_error
ERROR_SHAPES = web.AppKey("error_shapes", dict[str, ErrorRenderer])  # path prefix -> renderer


def _error_renderer(request: web.Request) -> ErrorRenderer:
    for prefix, render in request.app.get(ERROR_SHAPES, {}).items():
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return render
    return json_error


class _RequestIds:
    """Unique request ids without a uuid4 (an os.urandom call) per request: a random
    prefix per process, drawn again in a forked child, and a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix, self.numbers = secrets.token_hex(8), itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.numbers):016x}"


_request_ids = _RequestIds()


@web.middleware
async def observe(request: web.Request, handler):
    rid = request.headers.get("X-Request-ID", "")[:64] or _request_ids.next()
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:  # sent after this returns, when the id is no longer set
            response.headers["X-Request-ID"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        status = 499  # nginx's "client closed request": the client went away, not a server fault
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route).observe(elapsed)
        log.info("request", extra={"method": request.method, "path": request.path, "status": status,
                                   "ms": round(elapsed * 1000, 1), "remote": request.remote})
        request_id.reset(token)


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: streamed responses send headers before the middleware returns."""
    if rid := request_id.get():
        response.headers["X-Request-ID"] = rid


@web.middleware
async def errors(request: web.Request, handler):
    render = _error_renderer(request)
    try:
        return await handler(request)
    except GatewayError as exc:
        return render(exc.status, exc.code, exc.message, exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason,
                          {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")})
    except BackendUnavailable as exc:
        log.warning("backend unavailable", extra={"backend": exc.backend, "error": str(exc)})
        return render(503, "backend_unavailable", f"{exc.backend} is unavailable; retry later",
                          {"Retry-After": "5"}, backend=exc.backend)
    except asyncio.TimeoutError:
        log.warning("backend timeout")
        return render(503, "backend_timeout", "a storage backend did not answer in time; retry later",
                          {"Retry-After": "5"})
    except ObjectNotFound:
        return render(404, "not_found", "object not found")
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away: nobody to answer
    except Exception:
        log.exception("unhandled error")
        return render(500, "internal_error", "internal server error")
