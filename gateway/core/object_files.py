"""A stored object as a temporary local file, for code that needs random access (Pillow)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator

from storage.objects.port import ObjectStore

WRITE_BATCH = 1024 * 1024  # bytes handed to the executor per disk write: few thread hops, little held


@contextlib.asynccontextmanager
async def downloaded(objects: ObjectStore, key: str, end: int | None = None) -> AsyncIterator[Path]:
    """The object (up to byte ``end``) in a temporary file, streamed piece by piece, removed afterwards.

    Disk writes run in the default executor, a batch of pieces at a time: a slow or
    busy disk must not stall the event loop (and every request with it)."""
    loop = asyncio.get_running_loop()
    fd, name = await loop.run_in_executor(None, functools.partial(tempfile.mkstemp, prefix="gateway-job-"))
    try:
        out = os.fdopen(fd, "wb")
        try:
            body = await objects.get(key, 0, end)
            batch: list[bytes] = []
            batched = 0
            async for piece in body.chunks:
                batch.append(piece)
                batched += len(piece)
                if batched >= WRITE_BATCH:
                    await loop.run_in_executor(None, out.writelines, batch)
                    batch, batched = [], 0
            await loop.run_in_executor(None, out.writelines, batch)
        finally:
            await loop.run_in_executor(None, out.close)
        yield Path(name)
    finally:
        await loop.run_in_executor(None, os.unlink, name)  # a multi-GiB file takes a while to free
