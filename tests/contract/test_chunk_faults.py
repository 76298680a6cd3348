"""Chunks that end badly: a client that disconnects mid-chunk, a refused first chunk,
and many completes of one upload at once. None of them is a server fault, none
leaves anything behind, and the upload stays usable."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os

from gateway.keys import DOCUMENTS, OBJECTS
from tests.chunking import complete, send_chunk

PIECE = 204_800
BOUNDARY = "disconnectboundary"


async def send_half_and_hang_up(client, auth: dict, data: bytes, start: int, total: int,
                                upload_id: str | None = None) -> None:
    """Announce a whole chunk, send half of it, and close the connection."""
    fields = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload_id\"\r\n\r\n{upload_id}\r\n"
              if upload_id else "")
    body = (fields + f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /api/v2/media/upload/chunk/ HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: {auth['Authorization']}\r\n"
            f"Content-Range: bytes {start}-{start + len(data) - 1}/{total}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head.encode() + body[:len(body) // 2])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()


async def requests_with_status(client, status: str) -> float:
    text = await (await client.get("/metrics")).text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_requests_total{") and f'status="{status}"' in line)


async def eventually(check, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def in_progress_multipart_uploads(client) -> set[str]:
    store = client.app[OBJECTS]
    if store.name != "s3":
        return set()
    listed = await store._s3.list_multipart_uploads(Bucket=store.bucket)
    return {item["UploadId"] for item in listed.get("Uploads", [])}


def stored_upload_files(stack, tmp_path) -> list:
    folder = tmp_path / "uploads"
    return sorted(folder.iterdir()) if stack.objects_kind == "local" and folder.exists() else []


async def test_client_disconnect_mid_chunk_is_499_and_the_chunk_stays_retryable(stack, caplog):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(3 * PIECE)
    upload_id = (await (await send_chunk(client, user["auth"], data[:PIECE], 0, len(data))).json())["upload_id"]
    caplog.set_level(logging.INFO)

    await send_half_and_hang_up(client, user["auth"], data[PIECE:2 * PIECE], PIECE, len(data), upload_id)

    await eventually(lambda: _has(requests_with_status(client, "499")))
    session = await client.app[DOCUMENTS].get("uploads", upload_id)
    assert session["offset"] == PIECE and session["lease_id"] is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], \
        [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    for start in (PIECE, 2 * PIECE):
        reply = await send_chunk(client, user["auth"], data[start:start + PIECE], start, len(data), upload_id)
        assert reply.status == 200, await reply.text()
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201 and (await done.json())["md5"] == hashlib.md5(data).hexdigest()


async def _has(count) -> bool:
    return await count > 0


async def test_refused_first_chunks_store_nothing(stack, tmp_path):
    client = await stack.client()
    user = await stack.user(client)
    before = await in_progress_multipart_uploads(client)
    data = os.urandom(PIECE)

    await send_half_and_hang_up(client, user["auth"], data, 0, 2 * PIECE)
    await eventually(lambda: _has(requests_with_status(client, "499")))
    short = await client.post("/api/v2/media/upload/chunk/", data=_form(data[:-10]),
                              headers={**user["auth"], "Content-Range": f"bytes 0-{PIECE - 1}/{2 * PIECE}"})
    assert short.status == 400 and (await short.json())["code"] == "invalid_chunk_length"

    assert await client.app[DOCUMENTS].find("uploads") == []
    assert stored_upload_files(stack, tmp_path) == []
    assert await in_progress_multipart_uploads(client) == before


def _form(data: bytes):
    from tests.chunking import chunk_form

    return chunk_form(data)


async def test_ten_concurrent_completes_all_get_the_same_media(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(2 * PIECE + 17)
    upload_id = None
    for start in range(0, len(data), PIECE):
        reply = await send_chunk(client, user["auth"], data[start:start + PIECE], start, len(data), upload_id)
        upload_id = (await reply.json())["upload_id"]

    replies = await asyncio.gather(*(complete(client, user["auth"], upload_id, data, "document")
                                     for _ in range(10)))
    bodies = [await reply.json() for reply in replies]
    assert [reply.status for reply in replies] == [201] * 10, bodies
    assert len({body["id"] for body in bodies}) == 1
    served = await client.get("/" + bodies[0]["url"].split("/", 3)[3], headers=user["auth"])
    assert await served.read() == data
