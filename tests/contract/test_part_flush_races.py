"""Races around the background part upload ("flush") of S3 staging: sequences around a
flush that is held, failed or cancelled, each asserting what a user (or the bill for
the document store) sees. Every test here failed on 252d6a4 (found by attacking it)."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from gateway.keys import DOCUMENTS, OBJECTS, UPLOADS
from storage.errors import ObjectNotFound
from tests.chunking import WEB_CLIENT_CHUNK, complete, send_chunk
from tests.contract.test_part_flush import FILLING, HeldParts, after_a_failed_flush, target, until
from tests.contract.test_remembered_sessions import first_chunks
from tests.contract.test_staging import S3_STACKS

MiB = 1024 * 1024


class RecordedStaging:
    """The staging store of one instance, remembering every key it was asked to write."""

    def __init__(self, staging) -> None:
        self._staging = staging
        self.written: list[str] = []

    def __getattr__(self, name):
        return getattr(self._staging, name)

    async def put_blob(self, key: str, data: bytes) -> None:
        self.written.append(key)
        await self._staging.put_blob(key, data)


def recorded_staging(client) -> RecordedStaging:
    store = client.app[OBJECTS]
    store.staging = RecordedStaging(store.staging)
    return store.staging


async def still_stored(client, keys: list[str]) -> list[str]:
    kept = []
    for key in keys:
        try:
            await client.app[DOCUMENTS].get_blobs([key])
        except ObjectNotFound:
            continue
        kept.append(key)
    return kept


async def failed_flush(stack, caplog, **env):
    """One instance whose S3 refused one part; a 12 MiB upload whose first flush failed."""
    return await after_a_failed_flush(stack, caplog, 1, 12 * MiB, **env)


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_chunks_refused_while_s3_refuses_parts_leave_no_staged_piece_behind(stack, caplog):
    client, user, s3, data, upload_id = await failed_flush(stack, caplog)
    s3.failing = 100
    staging = recorded_staging(client)
    at = FILLING * WEB_CLIENT_CHUNK
    for _ in range(3):  # a client retrying its chunk while S3 is away
        refused = await send_chunk(client, user["auth"], data[at:at + WEB_CLIENT_CHUNK], at, len(data), upload_id)
        assert refused.status == 503, await refused.json()
    # Nothing of the refused chunk is in the session; nothing of it may stay in the store
    # either, or staging grows by a chunk per retry for as long as S3 is away.
    named = {key for key, _ in (await target(client, upload_id))["staged"]}
    assert await still_stored(client, [key for key in staging.written if key not in named]) == []


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_chunk_waiting_for_its_flush_when_the_upload_is_aborted_gets_an_answer(stack, caplog):
    client, user, s3, data, upload_id = await failed_flush(stack, caplog)
    s3.release.clear()  # the next flush (which the chunk waits for, after a failed one) hangs
    at = FILLING * WEB_CLIENT_CHUNK
    sending = asyncio.create_task(
        send_chunk(client, user["auth"], data[at:at + WEB_CLIENT_CHUNK], at, len(data), upload_id))
    await until(lambda: s3.started == 2)
    # The upload ends meanwhile (here: the sweeper finds it expired; a tus DELETE is the same
    # call), which cancels the flush the chunk is waiting for.
    await client.app[DOCUMENTS].update("uploads", upload_id, {"expires_at": 0.0})
    assert await client.app[UPLOADS].sweep() == 1
    reply = await sending  # a dropped connection (ServerDisconnectedError) on 252d6a4
    assert reply.status in (404, 410), await reply.text()


class HeldCompletes(HeldParts):
    """``HeldParts`` whose CompleteMultipartUpload also waits (for ``completing``), and
    which records every ETag each part number was uploaded with."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self.completing = asyncio.Event()
        self.completes = 0
        self.etags: dict[tuple[str, int], set[str]] = {}

    async def upload_part(self, **kwargs):
        reply = await super().upload_part(**kwargs)
        self.etags.setdefault((kwargs["UploadId"], kwargs["PartNumber"]), set()).add(reply["ETag"])
        return reply

    async def complete_multipart_upload(self, **kwargs):
        self.completes += 1
        await self.completing.wait()
        return await super().complete_multipart_upload(**kwargs)


def held_completes(client, shared: HeldCompletes | None = None) -> HeldCompletes:
    store = client.app[OBJECTS]
    store._s3 = HeldCompletes(store._s3)
    if shared is not None:  # one bucket: what one instance uploads, the other's complete sees
        store._s3.latest, store._s3.etags = shared.latest, shared.etags
    return store._s3


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_two_completes_of_one_upload_never_upload_one_part_number_with_different_bytes(stack):
    first, second = await stack.client(), await stack.client()
    user = await stack.user(first)
    one = held_completes(first)
    other = held_completes(second, shared=one)
    data = os.urandom((FILLING + 1) * WEB_CLIENT_CHUNK)
    # The 26th chunk starts a flush on the first instance (held there); the 27th, the last,
    # is staged on top of it.
    upload_id = await first_chunks(first, user["auth"], data, FILLING + 1)
    assert (await target(first, upload_id))["flush"]

    # The client sends complete, gives up waiting, and sends it again; it lands elsewhere.
    completing = asyncio.create_task(complete(first, user["auth"], upload_id, data, "document"))
    await until(lambda: one.started == 1)  # the first waits for its flush
    again = asyncio.create_task(complete(second, user["auth"], upload_id, data, "document"))
    await until(lambda: other.started == 1)  # the second uploads all staged bytes as the last part
    one.release.set()  # the flush lands; the first uploads the 27th chunk alone as the last part
    await until(lambda: one.completes == 1)
    other.release.set()
    await until(lambda: other.completes == 1)
    one.completing.set()
    other.completing.set()
    replies = [await completing, await again]
    bodies = [await reply.json() for reply in replies]
    twice = {number: etags for (_, number), etags in one.etags.items() if len(etags) > 1}
    assert not twice, f"part numbers uploaded with different bytes: {twice}"
    assert [reply.status for reply in replies] == [201, 201], bodies


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_chunk_that_loses_its_commit_after_its_flush_leaves_no_staged_piece_behind(stack, caplog):
    client, user, s3, data, upload_id = await failed_flush(stack, caplog)
    s3.release.clear()
    staging = recorded_staging(client)
    at = FILLING * WEB_CLIENT_CHUNK
    piece = data[at:at + WEB_CLIENT_CHUNK]
    # The chunk after a failed flush waits for its own flush (held)...
    waiting = asyncio.create_task(send_chunk(client, user["auth"], piece, at, len(data), upload_id))
    await until(lambda: s3.started == 2)
    # ...and the client, tired of waiting, sends it again: staged on top of the old flush, committed.
    again = await send_chunk(client, user["auth"], piece, at, len(data), upload_id)
    assert again.status == 200, await again.json()
    s3.release.set()  # the first attempt's flush lands, its commit finds the offset moved
    lost = await waiting
    assert lost.status == 400, await lost.json()
    named = {key for key, _ in (await target(client, upload_id))["staged"]}
    assert await still_stored(client, [key for key in staging.written if key not in named]) == []


@pytest.mark.slow  # waits for a lease to run out
@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_chunk_whose_flush_lost_its_pieces_to_a_racing_commit_gets_the_stored_offset(stack, caplog):
    # A lease shorter than S3's slowness: a chunk waiting for its flush does not renew it.
    client, user, s3, data, upload_id = await failed_flush(stack, caplog, upload_lease=0.3)
    other = await stack.client(upload_lease=0.3)
    s3.release.clear()
    # This instance's memory of the pieces it staged is only a shortcut, and 32 MiB shared by
    # every upload it serves: gone here, as with a few other uploads running.
    client.app[OBJECTS]._recent.items.clear()
    client.app[OBJECTS]._recent.size = 0
    at = FILLING * WEB_CLIENT_CHUNK
    # This instance's next chunk flushes every staged piece again and waits for it (held)...
    waiting = asyncio.create_task(
        send_chunk(client, user["auth"], data[at:at + WEB_CLIENT_CHUNK], at, len(data), upload_id))
    await until(lambda: s3.started == 2)
    async with asyncio.timeout(10):
        while (await client.app[DOCUMENTS].get("uploads", upload_id))["lease_until"] >= time.time():
            await asyncio.sleep(0.05)
    # ...while the client, tired of waiting, sends its next 6 MiB from there to the other
    # instance: one part with the staged bytes, committed, the staged pieces deleted.
    again = await send_chunk(other, user["auth"], data[at:at + 6 * MiB], at, len(data), upload_id)
    assert again.status == 200, await again.json()
    s3.release.set()
    lost = await waiting
    body = await lost.json()
    # A lost race is answered with the stored offset, as everywhere else; on 252d6a4 the
    # flush's failure (its pieces are gone) surfaces as 404 "object not found", as if the
    # upload were gone.
    assert (lost.status, body.get("code"), body.get("offset")) == (400, "invalid_offset", at + 6 * MiB), body
