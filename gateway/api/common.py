"""Helpers every dialect's handlers share: auth, small request bodies, URLs, ids and paging.

Numbers from clients are ASCII digits only: ``str.isdigit()`` takes ``²`` (which
``int()`` refuses) and ``int()`` reads ``٣`` as 3, so neither is used on input.
"""
from __future__ import annotations

import re
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.core import json_input
from gateway.core.auth import User
from gateway.core.errors import bad_request, field_error, unauthorized
from gateway.keys import SETTINGS, USERS

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ASCII_DIGITS = re.compile(r"[0-9]+")
# type/subtype in RFC 9110 token characters: what aiohttp's parser gives back unchanged, lowercased.
_PLAIN_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")


async def require_user(request: web.Request) -> User:
    user = await request.app[USERS].authenticate(request.headers.get("Authorization"))
    if user is None:
        raise unauthorized()
    return user


def media_type(request: web.Request) -> str:
    """The request's media type, lower-cased, as ``request.content_type`` would say it, but
    cheaper and never failing.

    aiohttp parses Content-Type with the ``email`` package, about 0.3 ms a request and
    never cached for multipart (the boundary differs every time), and that parser
    raises IndexError on some parameter lists (``multipart/form-data;b*``), a 500.
    The media type is what precedes the first ``;``. A missing header is
    ``application/octet-stream`` (HTTP's default, and aiohttp's); a header that is no
    ``type/subtype`` is ``""``, which no handler accepts.
    """
    raw = request.headers.get(hdrs.CONTENT_TYPE)
    if raw is None:
        return "application/octet-stream"
    head = raw.partition(";")[0].strip()
    return head.lower() if _PLAIN_MEDIA_TYPE.fullmatch(head) else ""


async def read_fields(request: web.Request) -> dict[str, Any]:
    """A small JSON object or form body as a dict (a file in a form comes as aiohttp's FileField)."""
    if media_type(request) in FORM_TYPES:
        try:
            form = await request.post()
        # HttpProcessingError: a malformed part header; IndexError: aiohttp's parse of some
        # Content-Type parameter lists (``multipart/form-data;b*``)
        except (ValueError, HttpProcessingError, IndexError) as exc:
            reason = getattr(exc, "message", None) or exc
            raise bad_request("malformed_body", f"could not parse the form: {reason}") from None
        return dict(form.items())
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json_input.loads(raw)  # the size is capped by the app's client_max_size
    except json_input.MalformedJson as exc:
        raise bad_request(exc.code, f"the body is not acceptable JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("malformed_json", "the body must be a JSON object")
    return body


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def int_id(raw: str, what: str = "id") -> int:
    if len(raw) > 18 or not ASCII_DIGITS.fullmatch(raw):  # 18 digits always fit in 64 bits
        raise bad_request("invalid_id", f"{what} must be a positive integer")
    return int(raw)


DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAX_OFFSET = 10 ** 18  # past any collection, and still a 64-bit integer for the stores


def _count_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    if not ASCII_DIGITS.fullmatch(raw):
        raise field_error(name, "must be a non-negative integer")
    return int(raw) if len(raw) <= 18 else MAX_OFFSET  # no int() of a 5000-digit value


def page_params(request: web.Request) -> tuple[int, int]:
    """DRF LimitOffsetPagination: ``limit`` (default 20, at most 100) and ``offset``; as in DRF a
    larger limit means the maximum and an offset past the end an empty page."""
    limit = _count_param(request, "limit", DEFAULT_LIMIT)
    offset = _count_param(request, "offset", 0)
    return min(limit, MAX_LIMIT) or DEFAULT_LIMIT, min(offset, MAX_OFFSET)


def page(request: web.Request, total: int, limit: int, offset: int, results: list) -> dict[str, Any]:
    def url(at: int) -> str:
        return base_url(request) + str(request.rel_url.update_query(limit=str(limit), offset=str(at)))

    return {"count": total, "next": url(offset + limit) if offset + limit < total else None,
            "previous": url(max(offset - limit, 0)) if offset > 0 else None, "results": results}
