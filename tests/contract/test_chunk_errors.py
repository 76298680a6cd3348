"""Every bad input gets a JSON error with the right status and changes nothing."""
from __future__ import annotations

import hashlib
import os

import pytest
from aiohttp import FormData

from gateway.keys import DOCUMENTS
from tests.chunking import CHUNK, COMPLETE, chunk_form, complete, send_chunk, upload_chunks
from tests.media_files import jpeg

PIECE = 100_000
TOTAL = 3 * PIECE
DATA = os.urandom(TOTAL)


@pytest.fixture
async def started(stack):
    """An upload with its first chunk stored: (client, user, upload_id)."""
    client = await stack.client(gateway_max_upload_size=10_000_000)
    user = await stack.user(client)
    reply = await send_chunk(client, user["auth"], DATA[:PIECE], 0, TOTAL)
    assert reply.status == 200
    return client, user, (await reply.json())["upload_id"]


BAD_CHUNKS = [
    # (case, Content-Range, body length, status, code)
    ("wrong start", f"bytes {2 * PIECE}-{3 * PIECE - 1}/{TOTAL}", PIECE, 400, "invalid_offset"),
    ("start behind", f"bytes 0-{PIECE - 1}/{TOTAL}", PIECE, 400, "invalid_offset"),
    ("malformed", "bytes=100000-199999/300000", PIECE, 400, "invalid_content_range"),
    ("not a number", f"bytes {PIECE}-x/{TOTAL}", PIECE, 400, "invalid_content_range"),
    ("missing", None, PIECE, 400, "invalid_content_range"),
    ("end before start", f"bytes {PIECE}-{PIECE - 5}/{TOTAL}", PIECE, 400, "invalid_content_range"),
    ("end past total", f"bytes {PIECE}-{TOTAL}/{TOTAL}", PIECE + 1, 400, "invalid_content_range"),
    ("body shorter than range", f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL}", PIECE - 10, 400, "invalid_chunk_length"),
    ("body longer than range", f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL}", PIECE + 10, 400, "invalid_chunk_length"),
    ("total changed", f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL + 5}", PIECE, 400, "total_changed"),
    ("over max size", f"bytes {PIECE}-{2 * PIECE - 1}/20000000", PIECE, 413, "upload_too_large"),
]


@pytest.mark.parametrize("case,content_range,length,status,code", BAD_CHUNKS, ids=[c[0] for c in BAD_CHUNKS])
async def test_bad_chunk_is_refused_and_changes_nothing(started, case, content_range, length, status, code):
    client, user, upload_id = started
    headers = dict(user["auth"])
    if content_range:
        headers["Content-Range"] = content_range
    reply = await client.post(CHUNK, data=chunk_form(os.urandom(length), upload_id=upload_id), headers=headers)
    body = await reply.json()
    assert (reply.status, body["code"]) == (status, code), body
    assert reply.content_type == "application/json"
    if code == "invalid_offset":
        assert body["offset"] == PIECE
    session = await client.app[DOCUMENTS].get("uploads", upload_id)
    assert session["offset"] == PIECE and session["lease_id"] is None
    # and the upload still finishes with the right bytes
    for start in (PIECE, 2 * PIECE):
        ok = await send_chunk(client, user["auth"], DATA[start:start + PIECE], start, TOTAL, upload_id)
        assert ok.status == 200, await ok.json()
    assert (await complete(client, user["auth"], upload_id, DATA, "document")).status == 201


async def test_first_chunk_must_start_at_zero_and_fit(stack):
    client = await stack.client(gateway_max_upload_size=1000)
    user = await stack.user(client)
    late = await send_chunk(client, user["auth"], b"x" * 10, 10, 100)
    assert late.status == 400 and (await late.json())["offset"] == 0
    huge = await send_chunk(client, user["auth"], b"x" * 10, 0, 5000)
    assert huge.status == 413
    assert await client.app[DOCUMENTS].count("uploads") == 0


async def test_unknown_and_foreign_upload_ids_are_404(started, stack):
    client, user, upload_id = started
    other = await stack.user(client)
    for who, target in ((user, "f" * 32), (other, upload_id)):
        reply = await send_chunk(client, who["auth"], DATA[PIECE:2 * PIECE], PIECE, TOTAL, target)
        assert reply.status == 404 and (await reply.json())["code"] == "not_found"
        finish = await client.post(COMPLETE, json={"upload_id": target, "type": "document",
                                                   "md5": hashlib.md5(DATA).hexdigest()}, headers=who["auth"])
        assert finish.status == 404


async def test_missing_or_wrong_auth_is_401(started):
    client, _, upload_id = started
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}, {"Authorization": "Token"}):
        reply = await client.post(CHUNK, data=chunk_form(DATA[PIECE:2 * PIECE], upload_id=upload_id),
                                  headers={**headers, "Content-Range": f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL}"})
        assert reply.status == 401 and (await reply.json())["code"] == "not_authenticated"
        assert (await client.get("/api/v2/media/1/", headers=headers)).status == 401


async def test_token_scheme_works_like_bearer(started):
    client, user, upload_id = started
    token = user["auth"]["Authorization"].split(" ", 1)[1]
    reply = await send_chunk(client, {"Authorization": f"Token {token}"}, DATA[PIECE:2 * PIECE], PIECE, TOTAL,
                             upload_id)
    assert reply.status == 200


BAD_COMPLETES = [
    ("malformed json", b"{not json", "application/json", 400, "malformed_json"),
    ("json array", b"[1,2]", "application/json", 400, "malformed_json"),
    ("missing upload_id", b'{"type": "image", "md5": "00"}', "application/json", 400, "missing_upload_id"),
    ("bad type", b'{"upload_id": "UID", "type": "video", "md5": "00"}', "application/json", 400, "invalid_type"),
    ("incomplete", b'{"upload_id": "UID", "type": "document", "md5": "00"}', "application/json", 400,
     "upload_incomplete"),
]


@pytest.mark.parametrize("case,body,content_type,status,code", BAD_COMPLETES, ids=[c[0] for c in BAD_COMPLETES])
async def test_bad_complete_is_refused(started, case, body, content_type, status, code):
    client, user, upload_id = started
    reply = await client.post(COMPLETE, data=body.replace(b"UID", upload_id.encode()),
                              headers={**user["auth"], "Content-Type": content_type})
    payload = await reply.json()
    assert (reply.status, payload["code"]) == (status, code), payload
    assert (await client.app[DOCUMENTS].get("uploads", upload_id))["status"] == "uploading"


async def test_image_type_needs_an_image(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = b"just some plain text that was renamed to .jpg\n" * 100
    upload_id = await upload_chunks(client, user["auth"], data, filename="fake.jpg")
    refused = await complete(client, user["auth"], upload_id, data, "image")
    assert refused.status == 400 and (await refused.json())["code"] == "not_an_image"
    accepted = await complete(client, user["auth"], upload_id, data, "document")
    media = await accepted.json()
    assert accepted.status == 201 and media["mime_type"] == "text/plain"


async def test_media_access_rules(stack):
    client = await stack.client()
    owner, stranger = await stack.user(client), await stack.user(client)
    staff, admin = await stack.user(client, staff=True), await stack.user(client, admin=True)
    data = jpeg()

    async def new_media():
        upload_id = await upload_chunks(client, owner["auth"], data, field="eimage")
        reply = await complete(client, owner["auth"], upload_id, data, "eimage")
        assert reply.status == 201
        return await reply.json()

    media = await new_media()
    assert media["type"] == "editor_image"
    path = f"/api/v2/media/{media['id']}/"
    assert (await client.get(path, headers=stranger["auth"])).status == 403
    assert (await client.get(path, headers=staff["auth"])).status == 200
    assert (await client.get(path, headers=admin["auth"])).status == 200
    assert (await client.delete(path, headers=stranger["auth"])).status == 403
    assert (await client.delete(path, headers=staff["auth"])).status == 403
    assert (await client.get(path, headers=owner["auth"])).status == 200  # still there
    assert (await client.delete(path, headers=admin["auth"])).status == 204
    assert (await client.get(path, headers=owner["auth"])).status == 404
    for bad in ("abc", "-1", "1.5", "99999999999999999999999"):
        reply = await client.get(f"/api/v2/media/{bad}/", headers=owner["auth"])
        assert reply.status == 400 and (await reply.json())["code"] == "invalid_id"


async def test_chunk_body_must_be_multipart_with_a_file(started):
    client, user, upload_id = started
    headers = {**user["auth"], "Content-Range": f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL}"}
    raw = await client.post(CHUNK, data=DATA[PIECE:2 * PIECE], headers=headers)
    assert raw.status == 400 and (await raw.json())["code"] == "invalid_content_type"
    form = FormData(default_to_multipart=True)
    form.add_field("upload_id", upload_id)
    form.add_field("other", "x")
    no_file = await client.post(CHUNK, data=form, headers=headers)
    assert no_file.status == 400 and (await no_file.json())["code"] == "missing_file"
    broken = await client.post(CHUNK, data=b"--xyz\r\nnot a part", headers={
        **headers, "Content-Type": "multipart/form-data; boundary=xyz"})
    assert broken.status == 400
    assert (await client.app[DOCUMENTS].get("uploads", upload_id))["offset"] == PIECE


@pytest.mark.parametrize("content_type", ["multipart/form-data;b*", "Multipart/Form-Data ; \t é*",
                                          "text/plain;b*", "multipart/form-data(x); boundary=xyz"])
async def test_a_content_type_the_email_parser_chokes_on_is_a_400(started, content_type):
    """aiohttp's ``request.content_type`` parses with the ``email`` package, which raised
    IndexError (a 500) on these; the chunk handler now reads the media type itself."""
    client, user, upload_id = started
    headers = {**user["auth"], "Content-Range": f"bytes {PIECE}-{2 * PIECE - 1}/{TOTAL}",
               "Content-Type": content_type}
    reply = await client.post(CHUNK, data=b"--xyz\r\nnot a part", headers=headers)
    assert reply.status == 400, await reply.text()
    assert (await reply.json())["code"] in ("invalid_content_type", "malformed_multipart")
    assert (await client.app[DOCUMENTS].get("uploads", upload_id))["offset"] == PIECE


@pytest.mark.parametrize("delta", [-1000, 1000], ids=["short", "long"])
async def test_part_sized_chunk_with_wrong_length_changes_nothing(stack, delta):
    """A chunk big enough to stream straight into a multipart part (5 MiB here)."""
    client = await stack.client()
    user = await stack.user(client)
    data = os.urandom(6 * 1024 * 1024)
    first = await send_chunk(client, user["auth"], data[:100], 0, len(data))
    upload_id = (await first.json())["upload_id"]
    rest = data[100:]
    wrong = await client.post(CHUNK, data=chunk_form(rest[:len(rest) + delta] + (b"x" * max(delta, 0)),
                                                     upload_id=upload_id),
                              headers={**user["auth"], "Content-Range": f"bytes 100-{len(data) - 1}/{len(data)}"})
    assert wrong.status == 400 and (await wrong.json())["code"] == "invalid_chunk_length"
    assert (await client.app[DOCUMENTS].get("uploads", upload_id))["offset"] == 100
    assert (await send_chunk(client, user["auth"], rest, 100, len(data), upload_id)).status == 200
    done = await complete(client, user["auth"], upload_id, data, "document")
    assert done.status == 201 and (await done.json())["md5"] == hashlib.md5(data).hexdigest()


async def test_first_chunk_naming_an_upload_after_the_file_is_refused_and_discarded(started):
    """A chunk at offset 0 streams before later fields are seen; an upload_id that
    follows the file then cannot be honoured, so the bytes are dropped and it says so."""
    client, user, upload_id = started
    form = FormData(quote_fields=False)
    form.add_field("image", DATA[:PIECE], filename="file.bin", content_type="application/octet-stream")
    form.add_field("upload_id", upload_id)
    reply = await client.post(CHUNK, data=form, headers={**user["auth"], "Content-Range": f"bytes 0-{PIECE - 1}/{TOTAL}"})
    assert reply.status == 400 and (await reply.json())["code"] == "upload_id_after_file"
    live = await client.app[DOCUMENTS].find("uploads", {"status": "uploading"})
    assert [session["id"] for session in live] == [upload_id]
