"""The chunk upload protocol end to end, on every backend stack."""
from __future__ import annotations

import asyncio
import hashlib
import os

from gateway.keys import DOCUMENTS, OBJECTS
from storage.errors import ObjectNotFound
from tests.chunking import COMPLETE, WEB_CLIENT_CHUNK, complete, path_of, send_chunk, upload_chunks, upload_media
from tests.media_files import jpeg, pdf_like, png

MiB = 1024 * 1024


async def test_official_web_client_flow_12_mib(stack):
    """Exactly what @selfcommunity/react-ui sends: 204 800-byte chunks, file part
    `image`, inclusive Content-Range, upload_id as a form field, complete as a
    multipart form, Bearer auth; then the bytes come back from the Media url."""
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg(1200, 900, pad_to=12 * MiB)
    upload_id = await upload_chunks(client, user["auth"], data, WEB_CLIENT_CHUNK, filename="holiday.jpg")
    reply = await complete(client, user["auth"], upload_id, data, "image")
    media = await reply.json()
    assert reply.status == 201, media
    assert media["md5"] == hashlib.md5(data).hexdigest()
    assert (media["type"], media["title"], media["size"]) == ("image", "holiday.jpg", len(data))
    assert (media["image_width"], media["image_height"], media["mime_type"]) == (1200, 900, "image/jpeg")
    assert isinstance(media["id"], int) and media["hash_code"] and media["added_at"].endswith("Z")
    for key in ("description", "url", "image", "order", "embed", "embed_type", "embed_id"):
        assert key in media
    served = await client.get(path_of(media["url"]))
    body = await served.read()
    assert served.status == 200
    assert hashlib.md5(body).hexdigest() == media["md5"]
    assert served.headers["ETag"] == f'"{media["md5"]}"'
    again = await client.get(f"/api/v2/media/{media['id']}/", headers=user["auth"])
    assert again.status == 200 and (await again.json())["id"] == media["id"]


async def test_two_instances_alternate_chunks_and_either_completes(stack):
    first, second = await stack.client(), await stack.client()
    user = await stack.user(first)
    data = pdf_like() + os.urandom(6 * MiB)
    upload_id = await upload_chunks([first, second], user["auth"], data, 700_000, field="document",
                                    filename="report.pdf")
    reply = await complete(second, user["auth"], upload_id, data, "document")
    media = await reply.json()
    assert reply.status == 201, media
    assert (media["type"], media["mime_type"], media["image"]) == ("document", "application/pdf", None)
    served = await first.get(path_of(media["url"]))
    assert await served.read() == data
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["X-Content-Type-Options"] == "nosniff"


async def test_retried_chunk_changes_nothing(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(3 * WEB_CLIENT_CHUNK)
    first = await send_chunk(client, user["auth"], data[:WEB_CLIENT_CHUNK], 0, len(data))
    upload_id = (await first.json())["upload_id"]
    second = await send_chunk(client, user["auth"], data[WEB_CLIENT_CHUNK:2 * WEB_CLIENT_CHUNK],
                              WEB_CLIENT_CHUNK, len(data), upload_id)
    assert second.status == 200
    retry = await send_chunk(client, user["auth"], os.urandom(WEB_CLIENT_CHUNK), WEB_CLIENT_CHUNK, len(data),
                             upload_id)
    body = await retry.json()
    assert retry.status == 400 and body["offset"] == 2 * WEB_CLIENT_CHUNK and body["code"] == "invalid_offset"
    last = await send_chunk(client, user["auth"], data[2 * WEB_CLIENT_CHUNK:], 2 * WEB_CLIENT_CHUNK, len(data),
                            upload_id)
    assert last.status == 200
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201
    assert (await (await client.get(path_of((await done.json())["url"]))).read()) == data


async def test_concurrent_chunks_with_the_same_start_leave_the_upload_consistent(stack):
    one, two = await stack.client(), await stack.client()
    user = await stack.user(one)
    data = os.urandom(2 * MiB)
    start = await send_chunk(one, user["auth"], data[:MiB], 0, len(data))
    upload_id = (await start.json())["upload_id"]
    rival = os.urandom(MiB)  # a different body for the same range: only one may win
    replies = await asyncio.gather(
        send_chunk(one, user["auth"], data[MiB:], MiB, len(data), upload_id),
        send_chunk(two, user["auth"], rival, MiB, len(data), upload_id),
    )
    statuses = sorted(r.status for r in replies)
    assert statuses[0] == 200 and statuses[1] in (400, 409), statuses
    winner = data if replies[0].status == 200 else data[:MiB] + rival
    loser = await replies[1].json() if replies[0].status == 200 else await replies[0].json()
    assert loser["code"] in ("invalid_offset", "chunk_in_progress")
    wrong = await complete(one, user["auth"], upload_id, data, "document",
                           md5=hashlib.md5(data[:MiB] + (rival if winner == data else data[MiB:])).hexdigest())
    assert wrong.status == 400
    done = await complete(two, user["auth"], upload_id, winner, "document")
    assert done.status == 201
    assert await (await one.get(path_of((await done.json())["url"]))).read() == winner


async def test_wrong_md5_keeps_the_session_usable(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = png()
    upload_id = await upload_chunks(client, user["auth"], data, filename="dot.png")
    wrong = await complete(client, user["auth"], upload_id, data, "image", md5="0" * 32)
    assert wrong.status == 400 and (await wrong.json())["code"] == "md5_mismatch"
    right = await complete(client, user["auth"], upload_id, data, "image")
    media = await right.json()
    assert right.status == 201 and (media["image_width"], media["image_height"]) == (32, 16)
    retried = await complete(client, user["auth"], upload_id, data, "image")
    assert retried.status == 201 and (await retried.json())["id"] == media["id"]
    served = await client.get(path_of(media["url"]))
    assert "Content-Disposition" not in served.headers  # a safe raster image is shown inline
    assert served.headers["Content-Type"] == "image/png"


async def test_delete_removes_media_and_stored_object(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg()
    media = await upload_media(client, user["auth"], data)
    key = (await client.app[DOCUMENTS].get("media", media["id"]))["key"]
    assert (await client.app[OBJECTS].stat(key)).size == len(data)
    gone = await client.delete(f"/api/v2/media/{media['id']}/", headers=user["auth"])
    assert gone.status == 204
    assert (await client.get(f"/api/v2/media/{media['id']}/", headers=user["auth"])).status == 404
    assert (await client.get(path_of(media["url"]))).status == 404
    try:
        await client.app[OBJECTS].stat(key)
        raise AssertionError("object still stored")
    except ObjectNotFound:
        pass


async def test_expired_session_answers_410_and_is_swept(stack):
    client = await stack.client(gateway_upload_expiry=1, gateway_sweep_interval=0.2)
    user = await stack.user(client)
    data = os.urandom(3 * WEB_CLIENT_CHUNK)
    first = await send_chunk(client, user["auth"], data[:WEB_CLIENT_CHUNK], 0, len(data))
    upload_id = (await first.json())["upload_id"]
    session = await client.app[DOCUMENTS].get("uploads", upload_id)
    await asyncio.sleep(1.6)
    late = await send_chunk(client, user["auth"], data[WEB_CLIENT_CHUNK:2 * WEB_CLIENT_CHUNK], WEB_CLIENT_CHUNK,
                            len(data), upload_id)
    assert late.status == 410 and (await late.json())["code"] == "upload_expired"
    swept = await client.app[DOCUMENTS].get("uploads", upload_id)
    assert swept["status"] == "expired"
    assert not await _staged_bytes_exist(client, session["target"])
    finishing = await client.post(COMPLETE, json={"upload_id": upload_id, "type": "document", "md5": "0" * 32},
                                  headers=user["auth"])
    assert finishing.status == 410


async def _staged_bytes_exist(client, target: dict) -> bool:
    store = client.app[OBJECTS]
    if store.name == "local":
        return (store.uploads / target["file"]).exists()
    listed = await store._s3.list_objects_v2(Bucket=store.bucket, Prefix=f"_staging/{target['token']}/")
    return listed.get("KeyCount", 0) > 0
