"""Small chunks on S3 are staged in the document store, not as S3 objects: S3 sees
one request per part, staged pieces are removed once their part is uploaded or the
session expires, and no staged piece is bigger than 4 MiB."""
from __future__ import annotations

import hashlib
import os

import pytest

from gateway.keys import DOCUMENTS, UPLOADS, USERS
from storage.errors import ObjectNotFound
from tests.chunking import complete, path_of, send_chunk, upload_chunks

MiB = 1024 * 1024
S3_STACKS = ["s3+sqlite", "s3+mongodb"]


async def backend_requests(client) -> dict[tuple[str, str], float]:
    text = await (await client.get("/metrics")).text()
    counts = {}
    for line in text.splitlines():
        if line.startswith("gateway_backend_requests_total{"):
            labels, value = line[len("gateway_backend_requests_total{"):].rsplit("} ", 1)
            pairs = dict(item.split("=", 1) for item in labels.split(","))
            counts[(pairs["backend"].strip('"'), pairs["operation"].strip('"'))] = float(value)
    return counts


async def staged_keys(client, upload_id: str) -> list[str]:
    session = await client.app[DOCUMENTS].get("uploads", upload_id)
    return [key for key, _ in session["target"]["staged"]]


async def assert_gone(client, keys: list[str]) -> None:
    for key in keys:
        with pytest.raises(ObjectNotFound):
            await client.app[DOCUMENTS].get_blobs([key])


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_small_chunks_cost_one_s3_request_per_part(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(12 * MiB)
    before = await backend_requests(client)
    upload_id = await upload_chunks(client, user["auth"], data)
    staged_before_complete = await staged_keys(client, upload_id)
    assert staged_before_complete  # the last 2 MiB wait in the document store
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201
    after = await backend_requests(client)
    s3 = {op: after[key] - before.get(key, 0) for key in after if key[0] == "s3" for op in [key[1]]
          if after[key] - before.get(key, 0)}
    # 12 MiB at a 5 MiB part size: 5 + 5 + 2, one request per part and nothing staged in S3;
    # then the finished object's stat and the probe's read of its head
    assert s3 == {"CreateMultipartUpload": 1, "UploadPart": 3, "CompleteMultipartUpload": 1, "HeadObject": 1,
                  "GetObject": 1}, s3
    assert after[(client.app[DOCUMENTS].name, "put_blob")] > before.get((client.app[DOCUMENTS].name, "put_blob"), 0)
    await assert_gone(client, staged_before_complete)
    served = await client.get(path_of((await done.json())["url"]), headers=user["auth"])
    assert hashlib.md5(await served.read()).hexdigest() == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_an_expired_sessions_staged_pieces_are_swept(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(3 * 204_800)
    reply = await send_chunk(client, user["auth"], data[:204_800], 0, len(data))
    upload_id = (await reply.json())["upload_id"]
    reply = await send_chunk(client, user["auth"], data[204_800:409_600], 204_800, len(data), upload_id)
    assert reply.status == 200
    keys = await staged_keys(client, upload_id)
    assert len(keys) == 2
    await client.app[DOCUMENTS].update("uploads", upload_id, {"expires_at": 0.0})
    assert await client.app[UPLOADS].sweep() == 1
    await assert_gone(client, keys)
    gone = await send_chunk(client, user["auth"], data[409_600:], 409_600, len(data), upload_id)
    assert gone.status == 410


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_staged_pieces_are_at_most_4_mib(stack):
    client = await stack.client(GATEWAY_S3_PART_SIZE=str(16 * MiB))
    user = await stack.user(client)
    data = os.urandom(9 * MiB + 5)
    upload_id = await upload_chunks(client, user["auth"], data, chunk_size=9 * MiB)  # 9 MiB, then 5 bytes
    sizes = [size for _, size in (await client.app[DOCUMENTS].get("uploads", upload_id))["target"]["staged"]]
    assert sizes == [4 * MiB, 4 * MiB, MiB, 5]
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201 and (await done.json())["md5"] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("stack", ["s3+sqlite"], indirect=True)
async def test_tiny_chunks_are_compacted_so_the_session_stays_small(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(100 * 1024)
    upload_id = await upload_chunks(client, user["auth"], data, chunk_size=1024)
    staged = (await client.app[DOCUMENTS].get("uploads", upload_id))["target"]["staged"]
    assert len(staged) <= 64 and sum(size for _, size in staged) == len(data)
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201 and (await done.json())["md5"] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("stack", ["local+sqlite"], indirect=True)
async def test_a_revoked_token_stops_working_within_the_token_cache_time(stack):
    one = await stack.client(GATEWAY_TOKEN_CACHE="0.5")
    other = await stack.client(GATEWAY_TOKEN_CACHE="0.5")  # a second instance, on the same stores
    user = await stack.user(one)
    assert (await other.get("/api/v2/media/", headers=user["auth"])).status == 200  # now cached there
    await one.app[USERS].new_token(user["name"])
    assert (await one.get("/api/v2/media/", headers=user["auth"])).status == 401  # at once where revoked
    import asyncio

    await asyncio.sleep(0.6)
    assert (await other.get("/api/v2/media/", headers=user["auth"])).status == 401


@pytest.mark.parametrize("stack", ["s3+sqlite"], indirect=True)
async def test_complete_streams_the_staged_tail_instead_of_holding_it(stack):
    """Issue 10: 16 concurrent completes each joined their staged tail (up to a part) in
    memory, and the gateway's peak RSS reached 337-410 MiB. The tail now streams."""
    import tracemalloc

    client = await stack.client(GATEWAY_S3_PART_SIZE=str(16 * MiB))
    user = await stack.user(client)
    data = os.urandom(12 * MiB)
    upload_id = await upload_chunks(client, user["auth"], data)
    assert sum(size for _, size in (await client.app[DOCUMENTS].get("uploads", upload_id))["target"]["staged"]) \
        == len(data)  # all 12 MiB staged, below the 16 MiB part
    tracemalloc.start()
    try:
        done = await complete(client, user["auth"], upload_id, data, "document")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.status == 201 and (await done.json())["md5"] == hashlib.md5(data).hexdigest()
    assert peak < 4 * MiB, f"complete allocated {peak / MiB:.1f} MiB at its peak for a 12 MiB staged tail"
