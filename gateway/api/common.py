"""Helpers every dialect's handlers share: auth, small request bodies, URLs."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.core.auth import User
from gateway.core.errors import bad_request, field_error, unauthorized
from gateway.keys import SETTINGS, USERS

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def require_user(request: web.Request) -> User:
    user = await request.app[USERS].authenticate(request.headers.get("Authorization"))
    if user is None:
        raise unauthorized()
    return user


async def read_fields(request: web.Request) -> dict[str, Any]:
    """A small JSON object or form body as a dict (a file in a form comes as aiohttp's FileField)."""
    if request.content_type in FORM_TYPES:
        try:
            form = await request.post()
        except ValueError as exc:
            raise bad_request("malformed_body", f"could not parse the form: {exc}") from None
        return dict(form.items())
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("malformed_json", "the body must be a JSON object")
    return body


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def int_id(raw: str, what: str = "id") -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise bad_request("invalid_id", f"{what} must be a positive integer")
    return int(raw)


DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def page_params(request: web.Request) -> tuple[int, int]:
    """DRF LimitOffsetPagination: ``limit`` (default 20, at most 100) and ``offset``."""
    values = []
    for name, default in (("limit", DEFAULT_LIMIT), ("offset", 0)):
        raw = request.query.get(name, "")
        if raw and not raw.isdigit():
            raise field_error(name, "must be a non-negative integer")
        values.append(int(raw) if raw else default)
    limit, offset = values
    return min(limit, MAX_LIMIT) or DEFAULT_LIMIT, offset


def page(request: web.Request, total: int, limit: int, offset: int, results: list) -> dict[str, Any]:
    def url(at: int) -> str:
        return base_url(request) + str(request.rel_url.update_query(limit=str(limit), offset=str(at)))

    return {"count": total, "next": url(offset + limit) if offset + limit < total else None,
            "previous": url(max(offset - limit, 0)) if offset > 0 else None, "results": results}
