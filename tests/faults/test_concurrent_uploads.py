"""200 uploads at once on one gateway instance, over a real loopback socket: files of
varied sizes (one chunk, several chunks, more than an S3 part), every byte checked
against its md5 from ``/content``, and not one 5xx on the way."""
from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter

import aiohttp
import pytest

from tests.chunking import COMPLETE, WEB_CLIENT_CHUNK, chunk_form, content_range, path_of
from tests.faults.conftest import MiB

pytestmark = pytest.mark.slow
UPLOADS = 200
USERS = 10


def file_sizes() -> list[int]:
    """Mostly one-chunk files, one in five spans a few chunks, four span more than a 5 MiB part."""
    rng = random.Random(8)
    sizes = []
    for i in range(UPLOADS):
        if i % 50 == 0:
            sizes.append(6 * MiB + rng.randrange(1, 100_000))
        elif i % 5 == 0:
            sizes.append(rng.randrange(WEB_CLIENT_CHUNK + 1, 5 * WEB_CLIENT_CHUNK))
        else:
            sizes.append(rng.randrange(1, WEB_CLIENT_CHUNK))
    return sizes


async def upload_and_read_back(http: aiohttp.ClientSession, base: str, auth: dict, data: bytes,
                               statuses: Counter) -> None:
    """One client's whole upload, the way the web client sends it; then the bytes back."""
    upload_id, offset = None, 0
    while offset < len(data):
        piece = data[offset:offset + WEB_CLIENT_CHUNK]
        async with http.post(f"{base}/api/v2/media/upload/chunk/", data=chunk_form(piece, upload_id=upload_id,
                                                                                   field="document"),
                             headers={**auth, **content_range(offset, len(piece), len(data))}) as reply:
            statuses[reply.status] += 1
            body = await reply.json()
            assert reply.status == 200, body
        upload_id, offset = body["upload_id"], body["offset"]
    form = aiohttp.FormData({"upload_id": upload_id, "type": "document", "md5": hashlib.md5(data).hexdigest()})
    async with http.post(f"{base}{COMPLETE}", data=form, headers=auth) as reply:
        statuses[reply.status] += 1
        media = await reply.json()
        assert reply.status == 201, media
    async with http.get(f"{base}{path_of(media['url'])}") as reply:
        statuses[reply.status] += 1
        served = await reply.read()
    assert reply.status == 200
    assert (len(served), hashlib.md5(served).hexdigest()) == (len(data), hashlib.md5(data).hexdigest())


@pytest.mark.parametrize("objects,documents", [("s3", "sqlite"), ("local", "sqlite"), ("local", "mongodb")])
async def test_200_concurrent_uploads_every_byte_checked(gateways, objects, documents):
    # The production backend timeout (the outage tests shorten it): 200 requests at once on
    # two shared cores queue for S3 connections and CPU, which is load, not an outage.
    client = await gateways.start(objects, documents, GATEWAY_BACKEND_TIMEOUT=30)
    users = [await gateways.user(client) for _ in range(USERS)]
    files = [random.Random(i).randbytes(size) for i, size in enumerate(file_sizes())]
    statuses: Counter = Counter()
    base = str(client.make_url("")).rstrip("/")
    # One connection per client, as 200 browsers would have: no pool limit in the way.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        results = await asyncio.gather(
            *(upload_and_read_back(http, base, users[i % USERS], data, statuses) for i, data in enumerate(files)),
            return_exceptions=True)
    failures = [f"upload {i} ({len(files[i])} bytes): {result!r}"[:300]
                for i, result in enumerate(results) if result is not None]
    assert not failures, f"{len(failures)} of {UPLOADS} failed; statuses {dict(statuses)}:\n" + "\n".join(failures[:10])
    assert not [status for status in statuses if status >= 500], dict(statuses)
