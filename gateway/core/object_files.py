"""Stored objects read through, off the event loop: as a temporary local file (for code
that needs random access, such as Pillow), or hashed (the md5 of bytes that never
streamed through the gateway: a presigned PUT straight into S3, whose ETag is not
always the md5, or a tus final upload assembled inside the store).

The file is written a batch of pieces per executor call: few thread hops, and no
more than a batch held at once. A slow disk or a long hash must not stall the event
loop (and every request with it); the md5 runs in ``ResumableMd5``'s pool.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator

from gateway.core.resumable_md5 import ResumableMd5
from storage.objects.port import ObjectStore

BATCH = 1024 * 1024  # bytes handed to the executor at once


async def batches(objects: ObjectStore, key: str, end: int | None = None) -> AsyncIterator[list[bytes]]:
    """The object (up to byte ``end``) as lists of pieces of about ``BATCH`` bytes."""
    body = await objects.get(key, 0, end)
    batch: list[bytes] = []
    batched = 0
    async for piece in body.chunks:
        batch.append(piece)
        batched += len(piece)
        if batched >= BATCH:
            yield batch
            batch, batched = [], 0
    if batch:
        yield batch


@contextlib.asynccontextmanager
async def downloaded(objects: ObjectStore, key: str, end: int | None = None) -> AsyncIterator[Path]:
    """The object (up to byte ``end``) in a temporary file, removed afterwards."""
    loop = asyncio.get_running_loop()
    fd, name = await loop.run_in_executor(None, functools.partial(tempfile.mkstemp, prefix="gateway-job-"))
    try:
        out = os.fdopen(fd, "wb")
        try:
            async for batch in batches(objects, key, end):
                await loop.run_in_executor(None, out.writelines, batch)
        finally:
            await loop.run_in_executor(None, out.close)
        yield Path(name)
    finally:
        await loop.run_in_executor(None, os.unlink, name)  # a multi-GiB file takes a while to free


async def stored_md5(objects: ObjectStore, key: str) -> ResumableMd5:
    """The md5 of the object at ``key``, settled: its ``hexdigest()``, or its state for a
    session that keeps one."""
    md5 = ResumableMd5()
    async for piece in (await objects.get(key)).chunks:
        await md5.add(piece)
    await md5.settled()
    return md5
