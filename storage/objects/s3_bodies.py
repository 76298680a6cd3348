"""What the S3 adapter streams and keeps: part bodies sent while they are produced, and a
byte-bounded memory of the chunks this instance staged last."""
from __future__ import annotations

import asyncio
import contextlib
import io
from typing import AsyncIterator, Callable

from storage.objects.port import Chunks


async def prefixed(first: Chunks, rest: Chunks) -> AsyncIterator[bytes]:
    async for piece in first:
        yield piece
    async for piece in rest:
        yield piece


class StreamedBody:
    """An upload_part body that aiohttp sends as it is produced.

    A reader task pulls from ``open_source()`` into a small bounded queue while
    aiohttp writes to S3, so receiving and sending overlap instead of taking turns;
    at most ``PREFETCH`` pieces wait in memory. ``read`` exists only to pass
    botocore's file-like check. A failure of the source (the client's body was not
    the announced length) is kept, so the caller reports it rather than the broken
    S3 request it caused. A ``rewindable`` body (staged bytes, which can be read
    again) lets botocore retry: its ``seek(0)`` makes the next send open the source
    anew; a client's body can be read once only, so botocore cannot retry that.
    """

    PREFETCH = 4

    def __init__(self, open_source: Callable[[], AsyncIterator[bytes]], *, rewindable: bool = False) -> None:
        self.open_source = open_source
        self.rewindable = rewindable
        self.error: Exception | None = None

    def read(self, *_):
        raise io.UnsupportedOperation("streamed body")

    def seek(self, position: int, whence: int = 0) -> int:
        if not self.rewindable or (position, whence) != (0, 0):
            raise io.UnsupportedOperation("a client's body cannot be read twice")
        self.error = None
        return 0

    async def _pump(self, queue: asyncio.Queue) -> None:
        try:
            async for piece in self.open_source():
                await queue.put(piece)
        except Exception as exc:
            self.error = exc
        await queue.put(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue = asyncio.Queue(self.PREFETCH)
        pump = asyncio.create_task(self._pump(queue))
        try:
            while (piece := await queue.get()) is not None:
                yield piece
            if self.error is not None:
                raise self.error
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


class RecentStaged:
    """A byte-bounded memory of recently staged chunks (staged keys are never rewritten)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.items: dict[str, bytes] = {}  # insertion order = age

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.capacity:
            return
        self.items[key] = data
        self.size += len(data)
        while self.size > self.capacity:
            self.size -= len(self.items.pop(next(iter(self.items))))

    def take(self, key: str) -> bytes | None:
        data = self.items.pop(key, None)
        if data is not None:
            self.size -= len(data)
        return data
