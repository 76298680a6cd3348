"""Stored objects read through, off the event loop: as a temporary local file (for code
that needs random access, such as Pillow), or hashed (the md5 of bytes that never
streamed through the gateway: a presigned PUT straight into S3, whose ETag is not
always the md5).

Both hand the executor a batch of pieces at a time: few thread hops, and no more
than a batch held at once. A slow disk or a long hash must not stall the event loop
(and every request with it); hashlib releases the GIL on large updates.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import AsyncIterator

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


async def stored_md5(objects: ObjectStore, key: str, executor: Executor | None = None) -> str:
    """The hex md5 of the object at ``key``."""
    loop = asyncio.get_running_loop()
    digest = hashlib.md5()
    async for batch in batches(objects, key):
        await loop.run_in_executor(executor, _update, digest, batch)
    return digest.hexdigest()


def _update(digest, pieces: list[bytes]) -> None:
    for piece in pieces:
        digest.update(piece)
