"""tus 1.0 over HTTP: every status code of the protocol, the extensions, and a PATCH
cut short, on local disk and on S3 (one verb or extension per test)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os

import pytest

from gateway.keys import DOCUMENTS, OBJECTS, UPLOADS
from storage.errors import ObjectNotFound

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}
STACKS = ["local+sqlite", "s3+sqlite"]
pytestmark = pytest.mark.parametrize("stack", STACKS, indirect=True)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def started(stack, **env):
    client = await stack.client(**env)
    user = await stack.user(client)
    return client, {**user["auth"], **TUS}


async def create(client, auth, length: int | None, **headers):
    sizing = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    reply = await client.post("/files/", headers={**auth, **sizing, **headers})
    assert reply.status == 201, await reply.text()
    location = reply.headers["Location"]
    assert location.startswith("http://") and "/files/" in location
    return "/files/" + location.rsplit("/", 1)[1], reply


async def patch(client, auth, path, offset, data, **headers):
    return await client.patch(path, data=data, headers={**auth, **OCTETS, "Upload-Offset": str(offset), **headers})


async def head(client, auth, path):
    return await client.head(path, headers=auth)


async def finished_bytes(client, auth, path) -> bytes:
    reply = await client.get(path, headers=auth)
    assert reply.status == 200, await reply.text()
    return await reply.read()


async def test_options_needs_no_token_and_lists_the_extensions(stack):
    client, _ = await started(stack)
    reply = await client.options("/files/", headers={"Origin": "https://app.example", "Access-Control-Request-Method":
                                                     "PATCH"})
    assert reply.status == 204
    assert reply.headers["Tus-Version"] == "1.0.0" and reply.headers["Tus-Resumable"] == "1.0.0"
    assert set(reply.headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "termination", "checksum", "expiration",
        "concatenation"}
    assert reply.headers["Tus-Max-Size"] == str(5 * 1024 ** 3)
    assert set(reply.headers["Tus-Checksum-Algorithm"].split(",")) == {"md5", "sha1", "sha256"}
    assert "Upload-Offset" in reply.headers["Access-Control-Expose-Headers"]
    assert "Location" in reply.headers["Access-Control-Expose-Headers"]
    assert "PATCH" in reply.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0"])
async def test_missing_or_unsupported_version_is_412_with_tus_version(stack, version):
    client, auth = await started(stack)
    headers = {k: v for k, v in auth.items() if k != "Tus-Resumable"}
    if version:
        headers["Tus-Resumable"] = version
    reply = await client.post("/files/", headers={**headers, "Upload-Length": "10"})
    assert reply.status == 412 and reply.headers["Tus-Version"] == "1.0.0"
    assert await client.app[DOCUMENTS].find("uploads") == []


async def test_a_whole_file_in_one_patch_becomes_a_media(stack):
    client, auth = await started(stack)
    data = os.urandom(6 * MiB + 123)
    path, created = await create(client, auth, len(data),
                                 **{"Upload-Metadata": f"filename {b64('clip.bin')},filetype {b64('video/mp4')}"})
    assert "Upload-Expires" in created.headers
    state = await head(client, auth, path)
    assert state.status == 200 and state.headers["Upload-Offset"] == "0"
    assert state.headers["Upload-Length"] == str(len(data)) and state.headers["Cache-Control"] == "no-store"
    assert state.headers["Upload-Metadata"].startswith("filename ")
    reply = await patch(client, auth, path, 0, data)
    assert reply.status == 204 and reply.headers["Upload-Offset"] == str(len(data))
    media_id = reply.headers["Media-Id"]
    assert (await head(client, auth, path)).headers["Media-Id"] == media_id
    media = await (await client.get(f"/api/v2/media/{media_id}/", headers=auth)).json()
    assert media["title"] == "clip.bin" and media["md5"] == hashlib.md5(data).hexdigest()
    assert media["type"] == "document"  # filetype is a hint; the bytes are not a video
    assert await finished_bytes(client, auth, path) == data


async def test_chunked_patches_with_checksums_and_a_mismatch_that_keeps_nothing(stack):
    client, auth = await started(stack)
    data = os.urandom(300_000)
    path, _ = await create(client, auth, len(data))
    offset = 0
    for algorithm in ("sha1", "md5", "sha256"):
        piece = data[offset:offset + 100_000]
        digest = base64.b64encode(hashlib.new(algorithm, piece).digest()).decode()
        wrong = await patch(client, auth, path, offset, piece[:-1] + b"x",
                            **{"Upload-Checksum": f"{algorithm} {digest}"})
        assert wrong.status == 460
        assert (await head(client, auth, path)).headers["Upload-Offset"] == str(offset)
        reply = await patch(client, auth, path, offset, piece, **{"Upload-Checksum": f"{algorithm} {digest}"})
        assert reply.status == 204, await reply.text()
        offset += len(piece)
    assert reply.headers["Upload-Offset"] == str(len(data)) and "Media-Id" in reply.headers
    unknown = await patch(client, auth, path, offset, b"", **{"Upload-Checksum": "crc32 AAAA"})
    assert unknown.status == 400
    assert await finished_bytes(client, auth, path) == data


async def test_status_codes_of_a_patch(stack):
    client, auth = await started(stack)
    other = await stack.user(client)
    path, _ = await create(client, auth, 100)
    cases = [
        (await client.patch(path, data=b"x", headers={**auth, "Content-Type": "application/octet-stream",
                                                      "Upload-Offset": "0"}), 415),
        (await patch(client, auth, path, 5, b"x"), 409),
        (await patch(client, auth, path, 0, b"x" * 101), 413),
        (await patch(client, auth, path, 0, b"x", **{"Upload-Offset": "²"}), 400),
        (await patch(client, {**TUS}, path, 0, b"x"), 401),
        (await patch(client, {**other["auth"], **TUS}, path, 0, b"x"), 404),
        (await patch(client, auth, "/files/nosuchupload", 0, b"x"), 404),
        (await client.post("/files/", headers={**auth}), 400),
        (await client.post("/files/", headers={**auth, "Upload-Length": str(6 * 1024 ** 3)}), 413),
        (await client.post("/files/", headers={**auth, "Upload-Length": "1", "Upload-Metadata": "filename ***"}), 400),
    ]
    assert [reply.status for reply, _ in cases] == [status for _, status in cases]
    for reply, _ in cases:
        assert reply.headers["Tus-Resumable"] == "1.0.0" and "Access-Control-Expose-Headers" in reply.headers
    assert (await head(client, auth, path)).headers["Upload-Offset"] == "0"


async def test_deferred_length_creation_with_upload_and_method_override(stack):
    client, auth = await started(stack)
    data = os.urandom(250_000)
    path, created = await create(client, auth, None, **OCTETS)
    assert created.headers.get("Upload-Offset") in (None, "0")
    reply = await client.post(path, data=data[:100_000], headers={**auth, **OCTETS, "Upload-Offset": "0",
                                                                   "X-HTTP-Method-Override": "PATCH"})
    assert reply.status == 204 and reply.headers["Upload-Offset"] == "100000"
    assert (await head(client, auth, path)).headers["Upload-Defer-Length"] == "1"
    reply = await patch(client, auth, path, 100_000, data[100_000:], **{"Upload-Length": str(len(data))})
    assert reply.status == 204 and "Media-Id" in reply.headers
    assert await finished_bytes(client, auth, path) == data
    # creation-with-upload
    body = os.urandom(1000)
    reply = await client.post("/files/", data=body, headers={**auth, **OCTETS, "Upload-Length": "1000"})
    assert reply.status == 201 and reply.headers["Upload-Offset"] == "1000" and "Media-Id" in reply.headers


async def test_termination_removes_the_upload(stack):
    client, auth = await started(stack)
    path, _ = await create(client, auth, 3 * MiB)
    assert (await patch(client, auth, path, 0, os.urandom(MiB))).status == 204
    assert (await client.delete(path, headers=auth)).status == 204
    assert (await head(client, auth, path)).status in (404, 410)
    assert (await patch(client, auth, path, MiB, b"x")).status in (404, 410)


async def test_expired_uploads_and_unused_partials_are_swept(stack):
    client, auth = await started(stack)
    path, _ = await create(client, auth, 10)
    assert (await patch(client, auth, path, 0, b"12345")).status == 204
    partial, _ = await create(client, auth, 3, **{"Upload-Concat": "partial"})
    assert (await patch(client, auth, partial, 0, b"abc")).status == 204
    assert await finished_bytes(client, auth, partial) == b"abc"
    for upload in (path, partial):
        await client.app[DOCUMENTS].update("uploads", upload.rsplit("/", 1)[1], {"expires_at": 0.0})
    assert (await head(client, auth, path)).status == 410
    assert await client.app[UPLOADS].sweep() == 2
    assert (await head(client, auth, path)).status == 410
    assert (await head(client, auth, partial)).status in (404, 410)
    key = (await client.app[DOCUMENTS].get("uploads", partial.rsplit("/", 1)[1]))["target"]["key"]
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(key)


async def test_a_patch_cut_short_keeps_what_arrived(stack):
    client, auth = await started(stack)
    data = os.urandom(12 * MiB)
    path, _ = await create(client, auth, len(data))
    sent = 7 * MiB
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head_lines = (f"PATCH {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {auth['Authorization']}\r\n"
                  f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n")
    writer.write(head_lines.encode() + data[:sent])
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()
    offset = 0
    async with asyncio.timeout(10):
        while offset < sent - MiB:
            await asyncio.sleep(0.1)
            offset = int((await head(client, auth, path)).headers["Upload-Offset"])
    assert sent - MiB <= offset <= sent
    reply = await patch(client, auth, path, offset, data[offset:])
    assert reply.status == 204 and "Media-Id" in reply.headers
    assert await finished_bytes(client, auth, path) == data


async def test_concatenation_of_partial_uploads(stack):
    client, auth = await started(stack)
    pieces = [os.urandom(6 * MiB), os.urandom(1000), os.urandom(2 * MiB), os.urandom(5)]
    partials = []
    for piece in pieces:
        path, _ = await create(client, auth, len(piece), **{"Upload-Concat": "partial"})
        assert (await patch(client, auth, path, 0, piece)).status == 204
        assert (await head(client, auth, path)).headers["Upload-Concat"] == "partial"
        partials.append(path)
    final, _ = await create(client, auth, None, **{"Upload-Concat": "final;" + " ".join(partials),
                                                  "Upload-Metadata": f"filename {b64('all.bin')}"})
    assert (await patch(client, auth, final, 0, b"x")).status == 403
    async with asyncio.timeout(30):
        while "Media-Id" not in (state := await head(client, auth, final)).headers:
            await asyncio.sleep(0.1)
    whole = b"".join(pieces)
    assert state.headers["Upload-Offset"] == state.headers["Upload-Length"] == str(len(whole))
    media = await (await client.get(f"/api/v2/media/{state.headers['Media-Id']}/", headers=auth)).json()
    assert media["md5"] == hashlib.md5(whole).hexdigest() and media["title"] == "all.bin"
    assert await finished_bytes(client, auth, final) == whole
    bad = await client.post("/files/", headers={**auth, "Upload-Concat": "final;/files/nosuch"})
    assert bad.status == 400
