"""What core needs from a server-side fetcher: a small Protocol and its error.

The guarded implementation is ``gateway.outbound.Fetcher``; core only knows this
shape, so link media can be tested and wired without the concrete client.
"""
from __future__ import annotations

from typing import Any, Protocol


class FetchError(Exception):
    """A refused or failed fetch; ``code`` is one of invalid_url, blocked_address,
    too_many_redirects, too_large, timeout, fetch_failed."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Fetched(Protocol):
    url: str  # after redirects
    content_type: str
    charset: str | None
    body: bytes


class Fetch(Protocol):
    def check(self, url: str) -> Any:
        """Raise FetchError if the URL may not be fetched (no I/O)."""

    async def fetch(self, url: str, *, max_bytes: int, accept: str | None = None,
                    timeout: float | None = None) -> Fetched: ...
