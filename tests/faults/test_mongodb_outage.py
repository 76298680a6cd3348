"""The MongoDB server (SecantusDB) frozen or killed while a chunk is on the wire, with
objects on local disk or S3. The gateway answers 503 with Retry-After in bounded time,
readiness names the document store, and after SecantusDB restarts on the same
storage path the upload resumes from the offset the gateway reports and completes
with the right bytes."""
from __future__ import annotations

import asyncio
import os

import pytest

from tests.chunking import WEB_CLIENT_CHUNK, send_chunk
from tests.faults.conftest import BACKEND_TIMEOUT
from tests.faults.outage import (assert_unavailable, chunk_interrupted, finish_from_reported_offset, first_chunks,
                                 outage_of, ready_again, timed)

pytestmark = pytest.mark.slow
SLACK = 2.0
# A chunk whose commit times out then tries to release its lease: a second store call
# that waits out the timeout too, before the 503 goes back.
CALLS_AFTER_FAULT = 2


@pytest.mark.parametrize("objects,outage", [("local", "hung"), ("local", "down"), ("s3", "down")])
async def test_mongodb_outage_mid_upload_then_resume(gateways, secantus, objects, outage):
    client = await gateways.start(objects, "mongodb")
    auth = await gateways.user(client)
    chunk_size = WEB_CLIENT_CHUNK
    data = os.urandom(chunk_size * 5 + 999)
    upload_id, offset = await first_chunks(client, auth, data, chunk_size, 2)

    piece = data[offset:offset + chunk_size]
    fault = outage_of(secantus, outage)
    reply, seconds = await chunk_interrupted(client, auth, piece, offset, len(data), upload_id, fault)
    body = await reply.json()
    assert_unavailable(reply, body, seconds, CALLS_AFTER_FAULT * BACKEND_TIMEOUT + SLACK)
    assert body.get("backend") == "mongodb", body

    reply, seconds = await timed(send_chunk(client, auth, piece, offset, len(data), upload_id, field="document"))
    body = await reply.json()
    assert_unavailable(reply, body, seconds, BACKEND_TIMEOUT + SLACK)
    assert body.get("backend") == "mongodb", body

    ready = await client.get("/health/ready")
    body = await ready.json()
    assert ready.status == 503 and ready.headers["Retry-After"], body
    assert body["failing"] == ["document_store:mongodb"], body

    if outage == "hung":
        secantus.resume()
    else:
        await asyncio.to_thread(secantus.restart)  # same storage path, same port
    await ready_again(client)

    # The failed chunk's commit may or may not have reached the server before it
    # stopped: the client learns which from the 400 of a chunk at a wrong offset.
    wrong = await send_chunk(client, auth, piece, offset + 1, len(data), upload_id, field="document")
    told = await wrong.json()
    assert wrong.status == 400 and told["offset"] in (offset, offset + len(piece)), told
    await finish_from_reported_offset(client, auth, data, upload_id, chunk_size, told["offset"])
