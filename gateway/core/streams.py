"""Bodies of any length into an upload session (tus PATCH), keeping what arrived.

A tus client may send a whole file in one request. The body is cut into blocks of
``Uploads.block_size`` (one S3 part, 8 MiB on local disk) and each block is stored
and committed like a chunk of the chunk API, so when the connection drops after
900 MiB of 1 GiB the offset is already close to 900 MiB: every whole block is
committed, and the bytes of the block in flight are committed as a last, shorter
block (staged on S3). Reading the next block overlaps storing the previous one, so
memory per request stays at about two blocks.

A body with a checksum (tus ``Upload-Checksum``) is the exception: nothing of it may
be kept unless all of it arrived and matches, so it is spooled to a temporary file
first (off the event loop) and only then stored the same way.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import tempfile
from typing import Any, AsyncIterator

from gateway.core.errors import GatewayError, upload_too_large
from gateway.core.uploads import Uploads
from storage.objects.port import Blocks, Chunks

CHECKSUMS = ("sha1", "md5", "sha256")
SPOOL_BATCH = 1024 * 1024


class BodyEnded(Exception):
    """The client's body broke off; what arrived before was kept."""


class ChecksumMismatch(Exception):
    pass


async def receive(uploads: Uploads, session: dict[str, Any], body: Chunks, *, limit: int,
                  length: int | None = None) -> dict[str, Any]:
    """Store ``body`` at the session's offset; BodyEnded (after committing) if it broke off.

    ``limit`` is the most bytes the body may carry; past it the request is refused
    with 413 (blocks before the limit are kept: they fit the upload). With the body's
    ``length`` known, each block streams straight into the store as it arrives (into its
    S3 part, say) while a copy is kept, so a block cut short is still committed.
    """
    if length is not None and length <= limit:
        return await _receive_streamed(uploads, session, body, length)
    blocks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
    ended: list[BaseException] = []
    reader = asyncio.create_task(_read_blocks(body, uploads.block_size, limit, blocks, ended))
    try:
        while (block := await blocks.get()) is not None:
            session = await uploads.write(session, block)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if ended:
        raise ended[0]
    return session


async def _read_blocks(body: Chunks, size: int, limit: int, blocks: asyncio.Queue, ended: list) -> None:
    buffer, received = bytearray(), 0
    try:
        async for piece in body:
            received += len(piece)
            if received > limit:
                ended.append(upload_too_large(limit))
                break
            buffer += piece
            while len(buffer) >= size:
                await blocks.put(bytes(buffer[:size]))
                del buffer[:size]
    except (ConnectionError, TimeoutError) as exc:
        ended.append(BodyEnded(str(exc) or type(exc).__name__))
    if buffer and not (ended and isinstance(ended[0], GatewayError)):
        await blocks.put(bytes(buffer))
    await blocks.put(None)


async def _receive_streamed(uploads: Uploads, session: dict[str, Any], body: Chunks, length: int) -> dict[str, Any]:
    source = Blocks(body)
    while length > 0:
        size = min(uploads.block_size, length)
        kept = bytearray()
        try:
            session = await uploads.write(session, source.block(size, kept), size)
        except GatewayError as exc:
            if exc.code not in ("client_aborted", "invalid_chunk_length"):
                raise
            if kept:  # what arrived of the block: committed as a shorter one
                session = await uploads.write(session, bytes(kept))
            raise BodyEnded(exc.message) from None
        length -= size
    return session


def parse_checksum(header: str) -> tuple[str, bytes]:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() not in CHECKSUMS:
        raise GatewayError(400, "unsupported_checksum", f"checksum algorithm must be one of {', '.join(CHECKSUMS)}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        raise GatewayError(400, "invalid_checksum", "the checksum is not base64") from None
    if len(digest) != hashlib.new(algorithm.lower()).digest_size:
        raise GatewayError(400, "invalid_checksum", f"a {algorithm} digest has {hashlib.new(algorithm).digest_size} "
                                                    "bytes")
    return algorithm.lower(), digest


async def receive_checked(uploads: Uploads, session: dict[str, Any], body: Chunks, *, limit: int,
                          algorithm: str, digest: bytes) -> dict[str, Any]:
    """Store ``body`` only if all of it arrives and matches the checksum; else keep nothing."""
    with tempfile.TemporaryFile() as spool:
        hasher = hashlib.new(algorithm)
        batch, received = bytearray(), 0
        try:
            async for piece in body:
                received += len(piece)
                if received > limit:
                    raise upload_too_large(limit)
                batch += piece
                if len(batch) >= SPOOL_BATCH:
                    await asyncio.to_thread(_spool, spool, hasher, bytes(batch))
                    batch.clear()
        except (ConnectionError, TimeoutError) as exc:
            raise BodyEnded(str(exc) or type(exc).__name__) from None
        await asyncio.to_thread(_spool, spool, hasher, bytes(batch))
        if hasher.digest() != digest:
            raise ChecksumMismatch()
        spool.seek(0)
        return await receive(uploads, session, _spooled(spool), limit=limit, length=received)


def _spool(spool, hasher, data: bytes) -> None:
    hasher.update(data)
    spool.write(data)


async def _spooled(spool) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(spool.read, SPOOL_BATCH):
        yield piece
