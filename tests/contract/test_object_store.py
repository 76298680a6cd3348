"""The object store port, run against the local disk and S3 (SeaweedFS, staging small
chunks in SQLite) directly, like test_document_store.py: plain objects (put, get
with ranges, stat, delete, missing keys) and resumable upload targets (begin,
append, complete, abort). Fencing tokens come from a counter here; the core's come
from the session lease (tests/contract/test_staging.py covers that side).
"""
from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from storage.documents.sqlite import SqliteDocumentStore
from storage.errors import ObjectNotFound
from storage.objects.local import LocalObjectStore
from storage.objects.s3 import S3ObjectStore
from tests.conftest import S3_BUCKET

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part: appends below it are staged, above it become parts


@pytest.fixture(params=["local", "s3"])
async def object_store(request, tmp_path):
    staging = SqliteDocumentStore(tmp_path / "staging.sqlite3")
    await staging.open()
    if request.param == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        store = S3ObjectStore(endpoint=s3.endpoint, bucket=S3_BUCKET, region="us-east-1", access_key=s3.access_key,
                              secret_key=s3.secret_key, part_size=PART, staging=staging)
    else:
        store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    yield store
    await store.close()
    await staging.close()


def key(name: str) -> str:
    return f"contract/{uuid.uuid4().hex}/{name}"


async def pieces(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _append(store, state, offset: int, data: bytes, epoch: int):
    async def fence() -> int:
        return epoch

    new = await store.append(state, offset, pieces(data), len(data), fence=fence)
    await store.cleanup(keep=new, drop=state)  # what the core does once the new state is committed
    return new


async def _complete(store, state, epoch: int):
    return await store.complete(state, fence=epoch)


# ----------------------------------------------------------------------------- plain objects

async def test_put_stat_get_and_delete(object_store):
    name = key("hello.txt")
    info = await object_store.put(name, b"hello, world", "text/plain")
    assert (info.key, info.size, info.content_type) == (name, 12, "text/plain")
    assert (await object_store.stat(name)).size == 12
    body = await object_store.get(name)
    assert (body.start, body.end, body.info.size) == (0, 11, 12)
    assert await body.read_all() == b"hello, world"
    await object_store.delete(name)
    with pytest.raises(ObjectNotFound):
        await object_store.stat(name)
    await object_store.delete(name)  # idempotent


async def test_stat_is_exact_on_key_and_size_and_s3_keeps_what_it_was_told(object_store):
    """Local disk keeps no metadata (it guesses the type from the name and derives its own
    etag), so the port promises type and etag only where the store keeps them; media
    documents keep their own MIME type and md5."""
    name = key("report.bin")
    info = await object_store.put(name, b"%PDF-1.4", "application/pdf")
    stat = await object_store.stat(name)
    assert (stat.key, stat.size) == (info.key, info.size)
    if object_store.name == "s3":  # the port promises the rest only where the store keeps it
        assert stat == info
    state = await object_store.begin(key("upload.bin"), "application/pdf")
    state = await _append(object_store, state, 0, b"%PDF-1.4", 1)
    done = await _complete(object_store, state, 2)
    assert done.size == 8 and (object_store.name != "s3" or done.content_type == "application/pdf")


@pytest.mark.parametrize("start, end, expected", [
    (0, 0, b"0"), (3, 6, b"3456"), (7, None, b"789"), (9, 9, b"9"), (0, None, b"0123456789"), (2, 9, b"23456789"),
])
async def test_ranges_are_inclusive(object_store, start, end, expected):
    name = key("digits")
    await object_store.put(name, b"0123456789", "application/octet-stream")
    body = await object_store.get(name, start, end)
    assert (body.start, body.end) == (start, start + len(expected) - 1)
    assert await body.read_all() == expected


async def test_large_object_reads_back_in_pieces(object_store):
    name = key("big.bin")
    data = os.urandom(3 * MiB + 17)
    await object_store.put(name, data, "application/octet-stream")
    body = await object_store.get(name, MiB, 2 * MiB + 4)
    read = [piece async for piece in body.chunks]
    assert b"".join(read) == data[MiB:2 * MiB + 5]


async def test_missing_keys(object_store):
    name = key("never-written")
    with pytest.raises(ObjectNotFound):
        await object_store.stat(name)
    with pytest.raises(ObjectNotFound):
        await object_store.get(name)
    with pytest.raises(ObjectNotFound):
        await object_store.get(name, 0, 10)
    await object_store.delete(name)  # deleting what is not there is fine


# ----------------------------------------------------------------------------- upload targets

async def test_appends_then_complete_give_the_whole_object(object_store):
    name = key("upload.bin")
    chunks = [os.urandom(200 * 1024), os.urandom(3 * MiB), os.urandom(3 * MiB), os.urandom(1234)]
    state = await object_store.begin(name, "application/pdf")
    offset = 0
    for epoch, chunk in enumerate(chunks, 1):
        state = await _append(object_store, state, offset, chunk, epoch)
        offset += len(chunk)
    info = await _complete(object_store, state, len(chunks) + 1)
    whole = b"".join(chunks)
    assert (info.key, info.size) == (name, len(whole))
    assert hashlib.md5(await (await object_store.get(name)).read_all()).digest() == hashlib.md5(whole).digest()
    assert await (await object_store.get(name, len(whole) - 1234)).read_all() == chunks[-1]
    again = await _complete(object_store, state, len(chunks) + 1)  # a retried complete: the same object
    assert (again.key, again.size, again.etag) == (info.key, info.size, info.etag)


async def test_an_empty_upload_completes_as_an_empty_object(object_store):
    name = key("empty")
    state = await object_store.begin(name, "text/plain")
    info = await _complete(object_store, state, 1)
    assert info.size == 0 and (await object_store.stat(name)).size == 0


async def test_abort_leaves_no_object_and_is_idempotent(object_store):
    name = key("aborted.bin")
    state = await object_store.begin(name, "application/octet-stream")
    state = await _append(object_store, state, 0, os.urandom(300 * 1024), 1)
    await object_store.abort(state)
    await object_store.abort(state)
    with pytest.raises(ObjectNotFound):
        await object_store.stat(name)
