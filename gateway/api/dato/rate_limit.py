"""Rate limits of the DatoCMS dialect: a fixed window of requests per API token.

DatoCMS's CMA allows 60 requests per 3 seconds per token and says so on every
reply: ``X-RateLimit-Limit`` (requests per window) and ``X-RateLimit-Remaining``
(left until the window resets); over the limit it answers 429 with
``X-RateLimit-Reset``, whole seconds (> 0) until a request is accepted again. The
official client sleeps exactly ``X-RateLimit-Reset`` seconds (``Retry-After`` is
ignored; a missing or 0 value would make it retry at once) and then repeats the
request, forever. A fixed window makes that sleep enough: once it ends, the
token's next window has its whole budget. ``Retry-After`` is sent as well, for
other HTTP clients.

The budget belongs to the ``Authorization`` header value (kept as its SHA-256,
never the token itself); requests without one share one anonymous budget per
client address (``request.remote``: behind a proxy, the proxy's). Every request
under ``jsonapi.PREFIX`` counts, whatever its route, status or authentication
(a bad token's 401 too); rejected requests do not. One exception: the PUT of a
file to an upload request's URL is never counted nor refused (it still carries
the headers, with its address's budget). The client cannot wait out a 429 there
(``uploadLocalFileToS3`` only checks ``response.ok`` and throws), so many files
uploaded at once from one address would fail; each such PUT is already paid for
by the rate-limited ``POST /upload-requests`` that made its single-use URL; and
a presigned S3 PUT, as on DatoCMS itself, never meets this limit either.

**Limits hold per instance**: the counts live in this process's memory, so N
gateway instances behind a load balancer allow up to N times the limit. Memory
is bounded: at most ``max_keys`` budgets are tracked; budgets whose window ended
are forgotten first, then the oldest windows, so a flood of random tokens cannot
grow memory (a key forgotten that way starts afresh: under such a flood a token
may get more than its limit, never less).

Headers are added in an ``on_response_prepare`` hook (``add_headers``), not by
the middleware, so errors rendered by the error middleware, 404s of unknown
routes and streamed responses carry them too.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from config.settings import Settings
from gateway.api.dato import jsonapi
from gateway.api.dato.upload_requests import CONTENT_PATH


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    reset: int  # whole seconds until the window ends, at least 1


class RateLimiter:
    """Fixed windows per key: ``[window start, requests counted]``, oldest window first."""

    def __init__(self, limit: int, window: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._clock = clock
        self._windows: OrderedDict[bytes, list[float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings.dato_rate_limit, settings.dato_rate_window, settings.dato_rate_keys)

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: bytes) -> Verdict:
        """Counts one request of ``key`` if its window has budget left."""
        now = self._clock()
        self._forget_ended(now)
        entry = self._windows.get(key)
        if entry is None:
            entry = self._windows[key] = [now, 0]
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        reset = max(1, math.ceil(entry[0] + self.window - now))
        if entry[1] >= self.limit:
            return Verdict(False, 0, reset)
        entry[1] += 1
        return Verdict(True, self.limit - int(entry[1]), reset)

    def remaining(self, key: bytes) -> int:
        """What ``key`` has left in its current window; changes nothing."""
        entry = self._windows.get(key)
        if entry is None or entry[0] + self.window <= self._clock():
            return self.limit
        return max(0, self.limit - int(entry[1]))

    def _forget_ended(self, now: float) -> None:
        # Windows start in insertion order (an ended one is dropped here before its key starts
        # another), so the ended ones are all at the front.
        while self._windows:
            start, _ = next(iter(self._windows.values()))
            if start + self.window > now:
                return
            self._windows.popitem(last=False)


LIMITER = web.AppKey("dato_rate_limiter", RateLimiter)


def applies(request: web.BaseRequest) -> bool:
    return request.path == jsonapi.PREFIX or request.path.startswith(jsonapi.PREFIX + "/")


def client_key(request: web.BaseRequest) -> bytes:
    """SHA-256 of the Authorization value, or of the client address when there is none."""
    if authorization := request.headers.get("Authorization"):
        return hashlib.sha256(b"token\0" + authorization.encode("utf-8", "surrogateescape")).digest()
    return hashlib.sha256(b"anonymous\0" + (request.remote or "").encode()).digest()


@web.middleware
async def rate_limit(request: web.Request, handler):
    if not applies(request) or (request.method == "PUT" and request.path == CONTENT_PATH):
        return await handler(request)
    verdict = request.app[LIMITER].hit(client_key(request))
    if verdict.allowed:
        return await handler(request)
    wait = str(verdict.reset)
    return jsonapi.render_error(429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded",
                                {"X-RateLimit-Reset": wait, "Retry-After": wait},
                                details={"limit": request.app[LIMITER].limit, "reset": verdict.reset})


async def add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: the budget on every reply under the prefix, errors and streams included."""
    if not applies(request):
        return
    limiter = request.app[LIMITER]
    response.headers["X-RateLimit-Limit"] = str(limiter.limit)
    response.headers["X-RateLimit-Remaining"] = str(limiter.remaining(client_key(request)))
