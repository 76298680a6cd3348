"""Speak the SelfCommunity web client's chunk protocol over HTTP, for tests and benchmarks."""
from __future__ import annotations

import asyncio
import hashlib

from aiohttp import FormData

CHUNK = "/api/v2/media/upload/chunk/"
COMPLETE = "/api/v2/media/upload/complete/"
WEB_CLIENT_CHUNK = 204_800


def chunk_form(data: bytes, *, upload_id: str | None = None, field: str = "image",
               filename: str = "file.bin") -> FormData:
    form = FormData(quote_fields=False)  # browsers send file names unquoted
    if upload_id:
        form.add_field("upload_id", upload_id)
    form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return form


def content_range(start: int, length: int, total: int) -> dict[str, str]:
    return {"Content-Range": f"bytes {start}-{start + length - 1}/{total}"}


async def send_chunk(client, auth: dict, data: bytes, start: int, total: int, upload_id: str | None = None,
                     **form):
    return await client.post(CHUNK, data=chunk_form(data, upload_id=upload_id, **form),
                             headers={**auth, **content_range(start, len(data), total)})


async def upload_chunks(clients, auth: dict, data: bytes, chunk_size: int = WEB_CLIENT_CHUNK,
                        field: str = "image", filename: str = "file.bin") -> str:
    """Send every chunk (round-robin over ``clients``); returns the upload_id."""
    clients = clients if isinstance(clients, (list, tuple)) else [clients]
    upload_id, offset, turn = None, 0, 0
    while offset < len(data):
        piece = data[offset:offset + chunk_size]
        reply = await send_chunk(clients[turn % len(clients)], auth, piece, offset, len(data), upload_id,
                                 field=field, filename=filename)
        body = await reply.json()
        assert reply.status == 200, body
        assert body["offset"] == offset + len(piece)
        upload_id, offset, turn = body["upload_id"], body["offset"], turn + 1
    return upload_id


async def complete(client, auth: dict, upload_id: str, data: bytes, media_type: str = "image", md5=None):
    form = FormData(quote_fields=False)  # browsers send file names unquoted
    form.add_field("upload_id", upload_id)
    form.add_field("type", media_type)
    form.add_field("md5", md5 or hashlib.md5(data).hexdigest())
    return await client.post(COMPLETE, data=form, headers=auth)


async def upload_media(client, auth: dict, data: bytes, media_type: str = "image", **options) -> dict:
    """Upload ``data`` in chunks and complete it; the created Media (201 asserted)."""
    upload_id = await upload_chunks(client, auth, data, **options)
    reply = await complete(client, auth, upload_id, data, media_type)
    media = await reply.json()
    assert reply.status == 201, media
    return media


async def processed(client, auth: dict, media_id: int, timeout: float = 20.0) -> dict:
    """The Media once its background processing is no longer pending."""
    async with asyncio.timeout(timeout):
        while True:
            media = await (await client.get(f"/api/v2/media/{media_id}/", headers=auth)).json()
            if media["processing"] != "pending":
                return media
            await asyncio.sleep(0.1)


def path_of(url: str) -> str:
    """The path of an absolute URL the gateway handed out (tests talk to the test client)."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]
