"""md5 of a stored object whose bytes never streamed through the gateway (a presigned
PUT straight into S3, whose ETag is not always the md5): read it once, hash it off
the event loop.

Hashing a large file is CPU work: pieces are batched to about ``HASH_BATCH`` bytes
and each batch is hashed in the executor, so the loop only moves bytes along and
no more than a batch is held at once. hashlib releases the GIL on large updates.
"""
from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import Executor

from storage.objects.port import ObjectStore

HASH_BATCH = 1024 * 1024


async def stored_md5(objects: ObjectStore, key: str, executor: Executor | None = None) -> str:
    """The hex md5 of the object at ``key``."""
    loop = asyncio.get_running_loop()
    digest = hashlib.md5()
    body = await objects.get(key)
    batch: list[bytes] = []
    batched = 0
    async for piece in body.chunks:
        batch.append(piece)
        batched += len(piece)
        if batched >= HASH_BATCH:
            await loop.run_in_executor(executor, _update, digest, batch)
            batch, batched = [], 0
    if batch:
        await loop.run_in_executor(executor, _update, digest, batch)
    return digest.hexdigest()


def _update(digest, pieces: list[bytes]) -> None:
    for piece in pieces:
        digest.update(piece)
