"""SeaweedFS frozen (SIGSTOP: connections accepted, nothing answers) or killed
(SIGKILL: connections refused) while a chunk is on the wire, with the web client's
204 800-byte chunks and with part-sized 5 MiB chunks. The gateway answers 503 with
Retry-After within the backend timeout, never 500 and never a hang; readiness names
s3; after SeaweedFS comes back on the same data the upload resumes from the offset
the gateway reports and completes with the right bytes."""
from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import pytest

from tests.chunking import WEB_CLIENT_CHUNK, complete, path_of, send_chunk, upload_media
from tests.faults.conftest import BACKEND_TIMEOUT, MiB
from tests.faults.outage import (assert_unavailable, chunk_interrupted, finish_from_reported_offset, first_chunks,
                                 outage_of, ready_again, timed)

pytestmark = pytest.mark.slow
SLACK = 2.0  # seconds beyond the backend timeout for everything that is not the store call


@pytest.mark.parametrize("chunk_size", [WEB_CLIENT_CHUNK, 5 * MiB], ids=["chunk204800", "chunk5MiB"])
@pytest.mark.parametrize("outage", ["hung", "down"])
async def test_s3_outage_mid_upload_then_resume(gateways, weed, outage, chunk_size):
    client = await gateways.start("s3", "sqlite")
    auth = await gateways.user(client)
    data = os.urandom(chunk_size * 4 + 12_345)
    upload_id, offset = await first_chunks(client, auth, data, chunk_size, 2)

    piece = data[offset:offset + chunk_size]
    fault = outage_of(weed, outage)
    reply, seconds = await chunk_interrupted(client, auth, piece, offset, len(data), upload_id, fault)
    if chunk_size < 5 * MiB:
        # Chunks below a part are staged in the document store: they go on being stored while
        # S3 is away, and S3 is needed again only for a part or at complete.
        assert reply.status == 200, await reply.text()
        upload_id, offset = await first_chunks(client, auth, data, chunk_size, 3, upload_id, offset + len(piece))
        reply, seconds = await timed(complete(client, auth, upload_id, data, "document"))
        assert_unavailable(reply, await reply.json(), seconds, BACKEND_TIMEOUT + SLACK)
    else:
        assert_unavailable(reply, await reply.json(), seconds, BACKEND_TIMEOUT + SLACK)
        assert (await reply.json())["backend"] == "s3"
        reply, seconds = await timed(send_chunk(client, auth, piece, offset, len(data), upload_id,
                                                field="document"))
        assert_unavailable(reply, await reply.json(), seconds, BACKEND_TIMEOUT + SLACK)

    ready = await client.get("/health/ready")
    body = await ready.json()
    assert ready.status == 503 and ready.headers["Retry-After"], body
    assert body["failing"] == ["object_store:s3"], body
    assert body["checks"]["document_store:sqlite"] == "ok"

    if outage == "hung":
        weed.resume()
    else:
        await asyncio.to_thread(weed.restart)  # same data directory, same ports
    await ready_again(client)

    if offset < len(data):
        piece = data[offset:offset + chunk_size]
        wrong = await send_chunk(client, auth, piece, offset + 1, len(data), upload_id, field="document")
        told = await wrong.json()
        assert wrong.status == 400 and told["offset"] == offset, told  # nothing of the failed chunk counted
        offset = told["offset"]
    await finish_from_reported_offset(client, auth, data, upload_id, chunk_size, offset)


async def test_s3_killed_while_serving_content(gateways, weed, caplog):
    """A download cut by S3 dying must not look complete, nor log an unhandled error;
    a download asked for while S3 is down is 503 with Retry-After; after the restart
    the same file is served whole."""
    client = await gateways.start("s3", "sqlite")
    auth = await gateways.user(client)
    data = os.urandom(40 * MiB)
    media = await upload_media(client, auth, data, "document", chunk_size=5 * MiB, field="document")
    path = path_of(media["url"])

    reply = await client.get(path)
    assert reply.status == 200
    received = await reply.content.readexactly(MiB)
    await asyncio.to_thread(weed.halt, kill=True)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with asyncio.timeout(BACKEND_TIMEOUT + SLACK):
            while piece := await reply.content.read(MiB):
                received += piece
    assert len(received) < len(data)

    reply, seconds = await timed(client.get(path))
    assert_unavailable(reply, await reply.json(), seconds, BACKEND_TIMEOUT + SLACK)

    await asyncio.to_thread(weed.restart)
    await ready_again(client)
    async with asyncio.timeout(20):  # a restarted SeaweedFS answers HEAD before its volumes are back
        while (again := await client.get(path)).status == 503:
            await asyncio.sleep(0.5)
    assert again.status == 200 and await again.read() == data
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
