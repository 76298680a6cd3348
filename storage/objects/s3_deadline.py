"""One deadline per S3 request, so GATEWAY_BACKEND_TIMEOUT bounds every call.

botocore's ``read_timeout`` is per socket read and per attempt: against a frozen
server (it accepts connections, answers nothing) a HeadObject took attempts x
timeout (15 s with a 3 s timeout) and a PutObject with a body never returned at
all (measured on a SIGSTOPped SeaweedFS). So every API call the client makes
(paginators included: they all go through ``_make_api_call``) runs under an
``asyncio.timeout`` whose expiry becomes ``BackendUnavailable`` (HTTP 503).

A body streamed from an uploading client pauses the deadline while it waits for
the client's next piece: a slow client is not a slow store, and the request body's
own idle timeout is the HTTP layer's business.
"""
from __future__ import annotations

import asyncio
import io
from typing import Any, AsyncIterator

from storage.errors import BackendUnavailable


def bound_every_call(client: Any, timeout: float) -> None:
    """Wrap the client's single request entry point with a deadline of ``timeout`` seconds."""
    make_api_call = client._make_api_call

    async def deadlined(operation_name: str, api_params: dict) -> Any:
        try:
            async with asyncio.timeout(timeout) as deadline:
                body = api_params.get("Body")
                if body is not None and hasattr(body, "__aiter__"):
                    api_params = {**api_params, "Body": _StorePaced(body, deadline, timeout)}
                return await make_api_call(operation_name, api_params)
        except TimeoutError:
            raise BackendUnavailable("s3", f"{operation_name}: no answer within {timeout:g} s") from None

    client._make_api_call = deadlined


class _StorePaced:
    """A streamed body whose waits for the next piece from the source do not count
    against the deadline; the time the store takes to accept each piece does."""

    def __init__(self, body: Any, deadline: asyncio.Timeout, timeout: float) -> None:
        self.body = body
        self.deadline = deadline
        self.timeout = timeout

    def read(self, *_):  # only here to pass botocore's file-like check, as the wrapped body's is
        raise io.UnsupportedOperation("streamed body")

    def _arm(self, seconds: float | None) -> None:
        if self.deadline.expired():
            return
        try:
            self.deadline.reschedule(None if seconds is None else asyncio.get_running_loop().time() + seconds)
        except RuntimeError:
            pass  # the call already ended: nothing left to bound

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pieces = aiter(self.body)
        while True:
            self._arm(None)
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return
            finally:
                self._arm(self.timeout)
            yield piece
