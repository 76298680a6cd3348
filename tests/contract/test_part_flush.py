"""A small chunk that completes a part is answered once it is staged; the part is uploaded
to S3 from the staged pieces in the background and folded into the session by the
upload's next chunk (or its complete). The pieces stay staged until then, so a flush
that is slow, fails, or dies with its instance costs time, never bytes."""
from __future__ import annotations

import asyncio
import logging
import os

import pytest
from botocore.exceptions import ClientError

from gateway.keys import DOCUMENTS, OBJECTS
from tests.chunking import WEB_CLIENT_CHUNK, send_chunk
from tests.contract.test_remembered_sessions import assert_stored, first_chunks
from tests.contract.test_staging import S3_STACKS, assert_gone
from tests.faults.aws_parts import AwsLikeParts

MiB = 1024 * 1024
PART = 5 * MiB  # the test stacks' part size
FILLING = -(-PART // WEB_CLIENT_CHUNK)  # 26 chunks of 204 800 bytes reach a part


class HeldParts(AwsLikeParts):
    """The S3 client with part uploads that wait until ``release`` is set, and fail while
    ``failing`` is; parts are kept the AWS way (the last upload of a number wins)."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self.release = asyncio.Event()
        self.failing = 0
        self.started = 0

    async def upload_part(self, **kwargs):
        self.started += 1
        await self.release.wait()
        if self.failing:
            self.failing -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
        return await super().upload_part(**kwargs)


def held_parts(client) -> HeldParts:
    store = client.app[OBJECTS]
    store._s3 = HeldParts(store._s3)
    return store._s3


async def target(client, upload_id: str) -> dict:
    return (await client.app[DOCUMENTS].get("uploads", upload_id))["target"]


async def send_chunks(client, auth, data: bytes, upload_id: str, start: int, end: int | None = None) -> None:
    """The web client's chunks of ``data`` from ``start`` up to ``end`` (default: the end)."""
    for at in range(start, len(data) if end is None else end, WEB_CLIENT_CHUNK):
        reply = await send_chunk(client, auth, data[at:at + WEB_CLIENT_CHUNK], at, len(data), upload_id)
        assert reply.status == 200, await reply.json()


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_the_chunk_that_fills_a_part_is_answered_before_the_part_is_uploaded(stack):
    client = await stack.client()
    user = await stack.user(client)
    s3 = held_parts(client)
    data = os.urandom(8 * MiB)
    filled = FILLING * WEB_CLIENT_CHUNK
    upload_id = await first_chunks(client, user["auth"], data, FILLING)  # every one 200 while S3 holds the part

    assert s3.started == 1 and not s3.uploads
    flushing = await target(client, upload_id)
    assert flushing["parts"] == [] and flushing["flush"]["pieces"] == FILLING == len(flushing["staged"])
    await send_chunks(client, user["auth"], data, upload_id, filled, filled + WEB_CLIENT_CHUNK)
    assert len((await target(client, upload_id))["staged"]) == FILLING + 1  # still held: staged on top

    s3.release.set()
    await until(lambda: s3.uploads)
    await send_chunks(client, user["auth"], data, upload_id, filled + WEB_CLIENT_CHUNK, filled + 2 * WEB_CLIENT_CHUNK)
    folded = await target(client, upload_id)
    assert [number for number, _ in folded["parts"]] == [flushing["flush"]["number"]]
    assert len(folded["staged"]) == 2 and not folded["flush"]
    await assert_gone(client, [key for key, _ in flushing["staged"]])  # the flushed pieces left the staging

    await send_chunks(client, user["auth"], data, upload_id, filled + 2 * WEB_CLIENT_CHUNK)
    await assert_stored(client, user["auth"], upload_id, data)
    assert len(s3.uploads) == 2  # 5.1 MiB flushed, then the 2.9 MiB tail: no byte sent twice


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_complete_waits_for_the_running_flush_rather_than_upload_its_bytes_again(stack):
    client = await stack.client()
    user = await stack.user(client)
    s3 = held_parts(client)
    data = os.urandom(FILLING * WEB_CLIENT_CHUNK)  # the last chunk fills the only part
    upload_id = await first_chunks(client, user["auth"], data, FILLING)
    assert (await target(client, upload_id))["flush"]

    completing = asyncio.create_task(assert_stored(client, user["auth"], upload_id, data))
    await asyncio.sleep(0.2)
    assert not completing.done()
    s3.release.set()
    await completing
    assert len(s3.uploads) == 1


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_flush_that_dies_with_its_instance_loses_nothing(stack):
    first, second = await stack.client(), await stack.client()
    user = await stack.user(first)
    held = held_parts(first)  # never released while the upload goes on: the instance is as good as dead
    s3 = held_parts(second)
    s3.release.set()
    data = os.urandom(12 * MiB)
    upload_id = await first_chunks(first, user["auth"], data, FILLING)
    abandoned = (await target(first, upload_id))["flush"]["number"]

    # The second instance stages on top of the first one's flush until another part's worth
    # has come, then flushes everything itself under a new part number.
    await send_chunks(second, user["auth"], data, upload_id, FILLING * WEB_CLIENT_CHUNK)
    await until(lambda: s3.uploads)
    assert all(number > abandoned for _, number in s3.uploads)
    held.release.set()  # the stalled flush lands at last: a part number nobody lists
    await until(lambda: held.uploads)
    await assert_stored(second, user["auth"], upload_id, data)


async def after_a_failed_flush(stack, caplog, failures: int, size: int = 8 * MiB, **env):
    """An upload's first part's worth sent, its flush failed (S3 refuses ``failures`` parts)."""
    caplog.set_level(logging.WARNING, "storage.s3")
    client = await stack.client(**env)
    user = await stack.user(client)
    s3 = held_parts(client)
    s3.release.set()
    s3.failing = failures
    data = os.urandom(size)
    upload_id = await first_chunks(client, user["auth"], data, FILLING)
    await until(lambda: "part flush failed" in caplog.text)
    return client, user, s3, data, upload_id


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_failed_flush_is_started_again_with_the_next_chunk(stack, caplog):
    client, user, s3, data, upload_id = await after_a_failed_flush(stack, caplog, 1)
    await send_chunks(client, user["auth"], data, upload_id, FILLING * WEB_CLIENT_CHUNK,
                      (FILLING + 1) * WEB_CLIENT_CHUNK)
    again = await target(client, upload_id)  # the next chunk waited for its flush, of every staged piece,
    assert again["flush"]["pieces"] == FILLING + 1 and len(s3.uploads) == 1  # which the chunk after folds in
    await send_chunks(client, user["auth"], data, upload_id, (FILLING + 1) * WEB_CLIENT_CHUNK)
    await assert_stored(client, user["auth"], upload_id, data)
    assert s3.started == 3  # the failed flush, the flush again, the tail


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_while_s3_refuses_parts_the_chunk_after_a_failed_flush_is_refused_and_nothing_is_lost(stack, caplog):
    client, user, s3, data, upload_id = await after_a_failed_flush(stack, caplog, 100)
    at = FILLING * WEB_CLIENT_CHUNK
    for _ in range(2):  # refused, and again: staging does not grow while S3 is away
        refused = await send_chunk(client, user["auth"], data[at:at + WEB_CLIENT_CHUNK], at, len(data), upload_id)
        body = await refused.json()
        assert refused.status == 503 and refused.headers["Retry-After"] and body["backend"] == "s3", body
    stored = await target(client, upload_id)
    assert stored["size"] == at and len(stored["staged"]) == FILLING and not stored["parts"]

    s3.failing = 0  # S3 is back: the same chunk goes through, and so does the rest
    await send_chunks(client, user["auth"], data, upload_id, at)
    await assert_stored(client, user["auth"], upload_id, data)
