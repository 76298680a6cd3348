"""A writer that stalls past its lease must never change bytes another chunk committed.

Chunk A sends half its body and stalls past the lease; chunk B for the same range
gets 200; then A's remaining bytes arrive. A must be refused, and the completed
file must be exactly first + B, on local disk and on S3 (with part-sized chunks, the
S3 client behaves like AWS: the last upload of a part number wins).
"""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from gateway.keys import DOCUMENTS, OBJECTS
from tests.chunking import CHUNK, complete, content_range, path_of, send_chunk
from tests.faults.aws_parts import AwsLikeParts

MiB = 1024 * 1024
LEASE = 1.0
BOUNDARY = "stalledwriterboundary"


def stalled_body(upload_id: str, data: bytes, resume: asyncio.Event):
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload_id\"\r\n\r\n{upload_id}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    half = len(data) // 2

    async def body():
        yield head + data[:half]
        await resume.wait()
        yield data[half:] + f"\r\n--{BOUNDARY}--\r\n".encode()

    return body()


async def wait_for(predicate, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("stack,chunk", [("local+sqlite", 204_800), ("s3+sqlite", 204_800),
                                         ("s3+sqlite", 5 * MiB)], indirect=["stack"])
async def test_stalled_writer_cannot_change_committed_bytes(stack, chunk):
    client = await stack.client(GATEWAY_UPLOAD_LEASE=LEASE)
    if stack.objects_kind == "s3":
        store = client.app[OBJECTS]
        store._s3 = AwsLikeParts(store._s3)
    user = await stack.user(client)
    first, stalled, winner = os.urandom(chunk), os.urandom(chunk), os.urandom(chunk)
    total = 3 * chunk
    reply = await send_chunk(client, user["auth"], first, 0, total)
    upload_id = (await reply.json())["upload_id"]

    resume = asyncio.Event()
    writer_a = asyncio.create_task(client.post(
        CHUNK, data=stalled_body(upload_id, stalled, resume),
        headers={**user["auth"], **content_range(chunk, chunk, total),
                 "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    documents = client.app[DOCUMENTS]
    if chunk >= 5 * MiB:  # a part upload is fenced by a lease, taken before its bytes stream to S3

        async def a_holds_the_lease():
            return (await documents.get("uploads", upload_id))["lease_id"] is not None

        await wait_for(a_holds_the_lease)
    await asyncio.sleep(LEASE + 0.5)  # A sends nothing, so it cannot renew

    reply_b = await send_chunk(client, user["auth"], winner, chunk, total, upload_id)
    assert reply_b.status == 200, await reply_b.text()
    resume.set()
    reply_a = await writer_a  # refused: its lease was taken (409) or its range was stored first (400)
    assert (reply_a.status, (await reply_a.json())["code"]) in ((409, "chunk_in_progress"), (400, "invalid_offset"))

    last = os.urandom(chunk)
    assert (await send_chunk(client, user["auth"], last, 2 * chunk, total, upload_id)).status == 200
    expected = first + winner + last
    done = await complete(client, user["auth"], upload_id, expected, "document")
    media = await done.json()
    assert done.status == 201, media
    served = await client.get(path_of(media["url"]), headers=user["auth"])
    body = await served.read()
    assert hashlib.md5(body).hexdigest() == hashlib.md5(expected).hexdigest()
    assert body == expected
    if stack.objects_kind == "s3":  # no part number was ever uploaded twice
        uploads = client.app[OBJECTS]._s3.uploads
        assert len(uploads) == len(set(uploads)), uploads
