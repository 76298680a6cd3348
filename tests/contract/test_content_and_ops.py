"""Content delivery headers and ranges, health, readiness and metrics."""
from __future__ import annotations

import hashlib

import pytest

from storage.documents.mongo import MongoDocumentStore
from tests.chunking import path_of, upload_media
from tests.media_files import jpeg, pdf_like


@pytest.fixture
async def served(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = pdf_like()
    media = await upload_media(client, user["auth"], data, "document", field="document", filename="Q3 report.pdf")
    return client, data, path_of(media["url"]), media


async def test_full_body_headers(served):
    client, data, path, media = served
    reply = await client.get(path)
    assert reply.status == 200 and await reply.read() == data
    assert reply.headers["Content-Length"] == str(len(data))
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert reply.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Content-Type"] == "application/pdf"
    assert reply.headers["Content-Disposition"] == "attachment; filename*=UTF-8''Q3%20report.pdf"
    head = await client.head(path)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(data))
    cached = await client.get(path, headers={"If-None-Match": reply.headers["ETag"]})
    assert cached.status == 304


RANGES = [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, None),
    ("bytes=-500", -500, None),
    ("bytes=10-10", 10, 10),
    ("bytes=100-99999999", 100, None),
]


@pytest.mark.parametrize("header,start,end", RANGES)
async def test_single_byte_range(served, header, start, end):
    client, data, path, _ = served
    reply = await client.get(path, headers={"Range": header})
    expected = data[start:] if end is None else data[start:end + 1]
    assert reply.status == 206 and await reply.read() == expected
    first = start if start >= 0 else len(data) + start
    assert reply.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert reply.headers["Content-Length"] == str(len(expected))


async def test_unsatisfiable_and_ignored_ranges(served):
    client, data, path, _ = served
    outside = await client.get(path, headers={"Range": f"bytes={len(data) + 10}-"})
    assert outside.status == 416 and outside.headers["Content-Range"] == f"bytes */{len(data)}"
    multi = await client.get(path, headers={"Range": "bytes=0-1,5-6"})
    assert multi.status == 200 and await multi.read() == data
    stale = await client.get(path, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert stale.status == 200


async def test_unknown_content_is_404_json(served):
    client, *_ = served
    reply = await client.get("/content/doesnotexist/x.bin")
    assert reply.status == 404 and (await reply.json())["code"] == "not_found"


async def test_health_ready_and_metrics(stack):
    client = await stack.client()
    assert (await client.get("/health/live")).status == 200
    ready = await client.get("/health/ready")
    assert ready.status == 200, await ready.json()
    user = await stack.user(client)
    data = jpeg()
    await upload_media(client, user["auth"], data)  # asserts 201
    text = await (await client.get("/metrics")).text()
    assert 'gateway_requests_total{method="POST",route="/api/v2/media/upload/chunk/",status="200"}' in text
    assert f"gateway_upload_bytes_received_total {float(len(data))}" in text
    assert "gateway_uploads_completed_total 1.0" in text
    assert "gateway_request_duration_seconds_bucket" in text


async def test_document_store_down_gives_503_with_retry_after(stack, unused_tcp_port):
    """A MongoDB that does not answer (a closed loopback port) makes readiness fail
    naming the store, and requests answer 503 with Retry-After, not 500."""
    stack.make_documents = lambda: _unreachable_mongo(unused_tcp_port)
    client = await stack.client()
    ready = await client.get("/health/ready")
    body = await ready.json()
    assert ready.status == 503 and body["failing"] == ["document_store:mongodb"]
    reply = await client.get("/api/v2/media/1/", headers={"Authorization": "Bearer whatever"})
    assert reply.status == 503 and reply.headers["Retry-After"]
    assert (await reply.json())["code"] == "backend_unavailable"


class _LazyMongo(MongoDocumentStore):
    async def open(self) -> None:  # start even though the server is down, like a restart during an outage
        try:
            await super().open()
        except Exception:
            pass


def _unreachable_mongo(port: int) -> MongoDocumentStore:
    return _LazyMongo(f"mongodb://127.0.0.1:{port}/", "down", timeout=0.5)
