"""An instance remembers the sessions it committed last, so the next chunk of an upload
skips reading its session. The memory is only a hint: whatever another instance did to
the upload meanwhile, a chunk gets the answer the stored session gives."""
from __future__ import annotations

import hashlib
import os

import pytest
from aiohttp import FormData

from gateway.keys import DOCUMENTS, UPLOADS
from tests.chunking import CHUNK, WEB_CLIENT_CHUNK, complete, content_range, path_of, send_chunk
from tests.contract.test_staging import S3_STACKS, backend_requests

MiB = 1024 * 1024


async def first_chunks(client, auth, data: bytes, count: int, chunk: int = WEB_CLIENT_CHUNK) -> str:
    reply = await send_chunk(client, auth, data[:chunk], 0, len(data))
    upload_id = (await reply.json())["upload_id"]
    for start in range(chunk, count * chunk, chunk):
        reply = await send_chunk(client, auth, data[start:start + chunk], start, len(data), upload_id)
        assert reply.status == 200, await reply.json()
    return upload_id


async def one_chunk_on_the_first_of_two(stack):
    """Two instances; a 3-chunk upload whose first chunk the first instance stored (and remembers)."""
    first, second = await stack.client(), await stack.client()
    user = await stack.user(first)
    data = os.urandom(3 * WEB_CLIENT_CHUNK)
    return first, second, user, data, await first_chunks(first, user["auth"], data, 1)


async def assert_stored(client, auth, upload_id: str, data: bytes) -> None:
    done = await complete(client, auth, upload_id, data, "document")
    media = await done.json()
    assert done.status == 201, media
    served = await client.get(path_of(media["url"]), headers=auth)
    assert hashlib.md5(await served.read()).hexdigest() == hashlib.md5(data).hexdigest() == media["md5"]


async def test_later_chunks_on_the_same_instance_read_no_session(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(6 * WEB_CLIENT_CHUNK)
    upload_id = await first_chunks(client, user["auth"], data, 2)
    store = client.app[DOCUMENTS].name
    before = await backend_requests(client)
    for start in range(2 * WEB_CLIENT_CHUNK, len(data), WEB_CLIENT_CHUNK):
        reply = await send_chunk(client, user["auth"], data[start:start + WEB_CLIENT_CHUNK], start, len(data),
                                 upload_id)
        assert reply.status == 200
    after = await backend_requests(client)
    assert after.get((store, "get"), 0) == before.get((store, "get"), 0)
    assert after[(store, "update")] - before[(store, "update")] == 4  # one compare-and-set a chunk
    assert after.get((store, "delete_blobs"), 0) == before.get((store, "delete_blobs"), 0)  # nothing to drop
    await assert_stored(client, user["auth"], upload_id, data)


async def test_a_chunk_repeated_where_the_upload_moved_on_elsewhere_gets_the_stored_offset(stack):
    first, second, user, data, upload_id = await one_chunk_on_the_first_of_two(stack)
    piece = data[WEB_CLIENT_CHUNK:2 * WEB_CLIENT_CHUNK]
    assert (await send_chunk(second, user["auth"], piece, WEB_CLIENT_CHUNK, len(data), upload_id)).status == 200
    # The first instance remembers the upload at the first chunk's end; the store knows better.
    again = await send_chunk(first, user["auth"], os.urandom(WEB_CLIENT_CHUNK), WEB_CLIENT_CHUNK, len(data),
                             upload_id)
    body = await again.json()
    assert (again.status, body["code"], body["offset"]) == (400, "invalid_offset", 2 * WEB_CLIENT_CHUNK)
    last = await send_chunk(first, user["auth"], data[2 * WEB_CLIENT_CHUNK:], 2 * WEB_CLIENT_CHUNK, len(data),
                            upload_id)
    assert last.status == 200
    await assert_stored(first, user["auth"], upload_id, data)


async def test_an_upload_ended_elsewhere_is_refused_as_the_stored_session_says(stack):
    first, second, user, data, upload_id = await one_chunk_on_the_first_of_two(stack)
    session = await second.app[DOCUMENTS].get("uploads", upload_id)
    await second.app[UPLOADS].discard(session)  # as the other instance's sweeper ends an expired upload
    reply = await send_chunk(first, user["auth"], data[WEB_CLIENT_CHUNK:2 * WEB_CLIENT_CHUNK], WEB_CLIENT_CHUNK,
                             len(data), upload_id)
    body = await reply.json()
    assert (reply.status, body["code"]) == (410, "upload_expired"), body
    stored = await first.app[DOCUMENTS].get("uploads", upload_id)
    assert (stored["status"], stored["offset"]) == ("expired", WEB_CLIENT_CHUNK)


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_part_after_a_failed_attempt_elsewhere_is_taken_by_the_instance_that_remembers_the_upload(stack):
    """The failed attempt took the session's lease (its epoch moved on) and let it go; the
    first instance still remembers the epoch before and must not answer 409 for ever."""
    first, second = await stack.client(), await stack.client()
    user = await stack.user(first)
    chunk = 1 * MiB
    data = os.urandom(7 * chunk)
    upload_id = await first_chunks(first, user["auth"], data, 4, chunk)  # 4 MiB staged, below the 5 MiB part
    start, filling = 4 * chunk, data[4 * chunk:5 * chunk]
    short = FormData(quote_fields=False)
    short.add_field("upload_id", upload_id)
    short.add_field("image", filling[:1000], filename="file.bin", content_type="application/octet-stream")
    failed = await second.post(CHUNK, data=short, headers={**user["auth"], **content_range(start, chunk, len(data))})
    assert (failed.status, (await failed.json())["code"]) == (400, "invalid_chunk_length")
    epoch_after_the_failure = (await second.app[DOCUMENTS].get("uploads", upload_id))["epoch"]
    reply = await send_chunk(first, user["auth"], filling, start, len(data), upload_id)
    assert reply.status == 200, await reply.json()
    assert (await first.app[DOCUMENTS].get("uploads", upload_id))["epoch"] == epoch_after_the_failure + 1
    for start in range(5 * chunk, len(data), chunk):
        assert (await send_chunk(first, user["auth"], data[start:start + chunk], start, len(data),
                                 upload_id)).status == 200
    await assert_stored(first, user["auth"], upload_id, data)
