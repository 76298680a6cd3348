"""Reading multipart bodies piece by piece: file parts stream or spool, never load whole."""
from __future__ import annotations

import asyncio
import functools
import tempfile
from typing import AsyncIterator

from aiohttp import BodyPartReader, hdrs
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from gateway.core.errors import GatewayError, bad_request

PIECE = 256 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
SPOOL_BATCH = 1024 * 1024  # bytes per executor call when spooling: few thread hops, little held
MAX_FIELD = 4096
# What aiohttp's multipart parser raises on a malformed body.
MALFORMED = (ValueError, AssertionError, HttpProcessingError)


def malformed(exc: Exception) -> GatewayError:
    return bad_request("malformed_multipart", f"could not parse the multipart body: {exc}")


def names(part: BodyPartReader) -> tuple[str | None, str | None]:
    """A part's ``(name, filename)``, as ``part.name`` and ``part.filename`` give them.

    Those two parse the Content-Disposition header once each (about 23 us a parse, most
    of it a ``re.escape`` aiohttp redoes on every call); every chunk of an upload sends
    the same header, so one parse per distinct header is kept."""
    return _names(part.headers.get(hdrs.CONTENT_DISPOSITION))


@functools.lru_cache(maxsize=128)  # bounded: headers are the client's (8 KiB at most each)
def _names(header: str | None) -> tuple[str | None, str | None]:
    _, params = parse_content_disposition(header)
    return content_disposition_filename(params, "name"), content_disposition_filename(params, "filename")


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while piece := await part.read_chunk(PIECE):
        yield piece


async def spooled_chunks(spool) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, spool.seek, 0)
    while piece := await loop.run_in_executor(None, spool.read, PIECE):
        yield piece


async def spool_part(part: BodyPartReader, max_size: int,
                     too_large: GatewayError) -> tuple[tempfile.SpooledTemporaryFile, int]:
    """Hold a file part (in memory up to 1 MiB, then on disk) until the whole body is read;
    ``too_large`` is raised as soon as it passes ``max_size``.

    Disk writes (up to the 5 GiB upload limit) run in the default executor, a batch
    of pieces at a time, so a slow disk never stalls the event loop."""
    loop = asyncio.get_running_loop()
    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
    length, batch, batched = 0, [], 0
    try:
        async for piece in part_chunks(part):
            length += len(piece)
            if length > max_size:
                raise too_large
            batch.append(piece)
            batched += len(piece)
            if batched >= SPOOL_BATCH:
                await loop.run_in_executor(None, spool.writelines, batch)
                batch, batched = [], 0
        await loop.run_in_executor(None, spool.writelines, batch)
    except BaseException:
        spool.close()
        raise
    return spool, length


async def read_field(part: BodyPartReader, name: str | None = None) -> str:
    value = await part.read_chunk(MAX_FIELD + 1)
    if len(value) > MAX_FIELD:
        raise bad_request("field_too_large", f"form field {name or part.name} is too large")
    return value.decode("utf-8", "replace").strip()
