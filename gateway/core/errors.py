"""The one error type the core raises; the error middleware renders it as JSON.

Like tusd's ``handler.Error``: a stable machine ``code``, a human ``message``, the
HTTP ``status``, plus ``extra`` fields merged into the body (e.g. the current
``offset`` when a chunk starts at the wrong place) and optional headers.
"""
from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def bad_request(code: str, message: str, **extra: Any) -> GatewayError:
    return GatewayError(400, code, message, **extra)


def field_error(field: str, message: str, code: str = "invalid") -> GatewayError:
    """A DRF-style validation error: ``{"<field>": ["message"], "code", "detail"}``."""
    return bad_request(code, f"{field}: {message}", **{field: [message]})


def upload_too_large(max_size: int) -> GatewayError:
    return GatewayError(413, "upload_too_large", f"uploads are limited to {max_size} bytes", max_size=max_size)


def not_found(what: str = "resource") -> GatewayError:
    return GatewayError(404, "not_found", f"{what} not found")


def unauthorized() -> GatewayError:
    return GatewayError(401, "not_authenticated", "authentication credentials were not provided or are invalid",
                        headers={"WWW-Authenticate": 'Bearer realm="gateway"'})


def forbidden(message: str = "you do not have permission to perform this action") -> GatewayError:
    return GatewayError(403, "permission_denied", message)
