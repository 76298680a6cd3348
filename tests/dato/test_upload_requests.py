"""POST /dato/upload-requests and the single-use gateway URL the file is PUT to, on every backend."""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time

import pytest
from botocore.exceptions import ClientError

from gateway.core.errors import GatewayError
from gateway.keys import DOCUMENTS, OBJECTS, UPLOAD_REQUESTS
from storage.errors import ObjectNotFound
from tests.dato.helpers import DATO_HEADERS, REQUESTS, ask, dato_code, local_path, put_file, take

MiB = 1024 * 1024


async def stored(client, key: str) -> bytes:
    return await (await client.app[OBJECTS].get(key)).read_all()


async def refused_take(client, account, path) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await take(client, account, path)
    assert caught.value.status == 422 and caught.value.extra["field"] == "path"
    return caught.value


@pytest.mark.parametrize("size", [11, 9 * MiB + 3])  # one put; several blocks (multipart on S3)
async def test_a_file_put_without_auth_is_taken_with_its_size_and_md5(stack, size):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "photo.png")
    assert re.fullmatch(rf"/{account['id']}/[0-9a-f]{{32}}-photo\.png", path)
    assert url.startswith(f"http://127.0.0.1:{client.port}/dato/upload-requests/content?token=")
    data = os.urandom(size)
    reply = await put_file(client, url, data)
    assert reply.status == 200 and "application/json" in reply.headers["Content-Type"]
    assert await reply.json() == {}
    taken = await take(client, account, path)
    hash_code = path.split("/")[2].split("-")[0]
    assert (taken.size, taken.md5, taken.hash_code, taken.filename) == (
        size, hashlib.md5(data).hexdigest(), hash_code, "photo.png")
    assert taken.key == f"dato/{account['id']}/{hash_code}/photo.png"
    assert await stored(client, taken.key) == data
    error = await refused_take(client, account, path)  # a path makes one upload
    assert error.extra["reason"] == "taken"


async def test_a_second_put_with_the_same_token_is_refused(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    assert (await put_file(client, url, b"first")).status == 200
    again = await put_file(client, url, b"second")
    assert again.status == 409 and "application/json" in again.headers["Content-Type"]
    assert (await again.json())["data"][0]["attributes"]["details"]["code"] == "upload_request_used"
    taken = await take(client, account, path)
    assert await stored(client, taken.key) == b"first"


async def test_two_puts_at_once_with_one_token_store_one_file(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    go = asyncio.Event()

    async def slow_body():
        yield b"slow "
        await go.wait()
        yield b"body"

    first = asyncio.create_task(put_file(client, url, slow_body(), headers={"Content-Length": "9"}))
    async with asyncio.timeout(10):  # the first PUT holds the request once its claim is stored
        while (await client.app[DOCUMENTS].get("upload_requests", path))["status"] != "receiving":
            await asyncio.sleep(0.02)
    second = await put_file(client, url, b"other")
    assert second.status == 409
    go.set()
    assert (await first).status == 200
    assert await stored(client, (await take(client, account, path)).key) == b"slow body"


async def test_an_expired_request_is_refused(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    await client.app[DOCUMENTS].update("upload_requests", path, {"expires_at": 0.0})
    reply = await put_file(client, url, b"late")
    assert reply.status == 410 and "application/json" in reply.headers["Content-Type"]
    assert (await refused_take(client, account, path)).extra["reason"] == "expired"


async def test_a_body_over_the_limit_is_refused_by_its_length_and_nothing_is_stored(stack):
    client = await stack.client(GATEWAY_MAX_UPLOAD_SIZE=1000)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    reply = await put_file(client, url, os.urandom(2000))
    assert reply.status == 413 and dato_code(await reply.json()) == "FILE_TOO_BIG"
    key = (await client.app[DOCUMENTS].get("upload_requests", path))["key"]
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(key)
    assert (await refused_take(client, account, path)).extra["reason"] == "not_uploaded"
    assert (await put_file(client, url, b"x" * 1000)).status == 200  # the request is still usable
    assert (await take(client, account, path)).size == 1000


async def test_a_body_without_a_length_is_refused(stack):
    client = await stack.client()
    account = await stack.user(client)
    _, url = await ask(client, account["auth"])

    async def chunked():
        yield b"no length"

    reply = await put_file(client, url, chunked())
    assert reply.status == 411 and "application/json" in reply.headers["Content-Type"]


async def test_unknown_wrong_and_missing_tokens_look_the_same(stack):
    client = await stack.client()
    account = await stack.user(client)
    _, url = await ask(client, account["auth"])
    base = url.split("?")[0]
    for other in (f"{base}?token={'A' * 43}", f"{base}?token=x", base, url + "x"):
        reply = await put_file(client, other, b"data")
        assert reply.status == 404, other
        assert dato_code(await reply.json()) == "NOT_FOUND"
    assert (await put_file(client, url, b"data")).status == 200  # the right one still works


async def test_another_users_path_and_an_unknown_one_are_invalid_at_take(stack):
    client = await stack.client()
    owner, other = await stack.user(client), await stack.user(client)
    path, url = await ask(client, owner["auth"])
    assert (await put_file(client, url, b"mine")).status == 200
    assert (await refused_take(client, other, path)).extra["reason"] == "unknown"
    unknown = path.replace(path.split("/")[2][:32], "0" * 32)
    assert (await refused_take(client, owner, unknown)).extra["reason"] == "unknown"
    assert (await refused_take(client, owner, "x" * 5000)).extra["reason"] == "unknown"
    assert (await take(client, owner, path)).size == 4  # the refusals changed nothing


async def test_a_request_with_no_file_yet_cannot_be_taken(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, _ = await ask(client, account["auth"])
    assert (await refused_take(client, account, path)).extra["reason"] == "not_uploaded"


async def test_sweep_removes_what_expired_untaken_and_keeps_taken_files(stack):
    client = await stack.client()
    account = await stack.user(client)
    unused, unused_url = await ask(client, account["auth"], "unused.bin")
    assert (await put_file(client, unused_url, b"never taken")).status == 200
    empty, _ = await ask(client, account["auth"], "empty.bin")
    kept, kept_url = await ask(client, account["auth"], "kept.bin")
    assert (await put_file(client, kept_url, b"taken")).status == 200
    taken = await take(client, account, kept)
    documents = client.app[DOCUMENTS]
    unused_key = (await documents.get("upload_requests", unused))["key"]
    fresh, _ = await ask(client, account["auth"], "fresh.bin")
    for path in (unused, empty, kept):
        await documents.update("upload_requests", path, {"expires_at": 0.0})
    assert await client.app[UPLOAD_REQUESTS].sweep() == 2
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(unused_key)
    assert await stored(client, taken.key) == b"taken"  # a media owns it now
    assert [await documents.get("upload_requests", path) for path in (unused, empty, kept)] == [None] * 3
    assert await documents.get("upload_requests", fresh) is not None
    assert (await put_file(client, unused_url, b"again")).status == 404


async def test_a_put_cut_midway_leaves_the_request_usable(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    data = os.urandom(9 * MiB)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"PUT {local_path(url)} HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:6 * MiB])
    await writer.drain()
    async with asyncio.timeout(10):
        while (await client.app[DOCUMENTS].get("upload_requests", path))["status"] != "receiving":
            await asyncio.sleep(0.02)
    writer.close()
    async with asyncio.timeout(10):
        while (doc := await client.app[DOCUMENTS].get("upload_requests", path))["status"] != "open":
            await asyncio.sleep(0.05)
    assert doc["target"] is None and doc["claim"] is None
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(doc["key"])
    assert (await refused_take(client, account, path)).extra["reason"] == "not_uploaded"
    assert (await put_file(client, url, data)).status == 200
    taken = await take(client, account, path)
    assert taken.md5 == hashlib.md5(data).hexdigest() and await stored(client, taken.key) == data


async def test_asking_needs_a_token_and_a_filename(stack):
    client = await stack.client()
    account = await stack.user(client)
    anonymous = await client.post(REQUESTS, headers=DATO_HEADERS,
                                  json={"data": {"type": "upload_request", "attributes": {"filename": "a.png"}}})
    assert anonymous.status == 401 and dato_code(await anonymous.json()) == "INVALID_AUTHORIZATION_HEADER"
    for attributes in ({}, {"filename": ""}, {"filename": 7}, {"filename": "x" * 2000}):
        reply = await client.post(REQUESTS, headers={**DATO_HEADERS, **account["auth"]},
                                  json={"data": {"type": "upload_request", "attributes": attributes}})
        body = await reply.json()
        assert reply.status == 422 and dato_code(body) == "INVALID_FIELD", attributes
        assert body["data"][0]["attributes"]["details"]["field"] == "filename"


async def test_a_filename_is_made_safe_in_the_path_and_key(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "../../etc/in\u202evoice<gpj>.png")
    assert re.fullmatch(rf"/{account['id']}/[0-9a-f]{{32}}-invoice_gpj_\.png", path), path
    assert (await put_file(client, url, b"safe")).status == 200
    taken = await take(client, account, path)
    assert taken.key.endswith("/invoice_gpj_.png") and await stored(client, taken.key) == b"safe"


async def test_replies_match_the_openapi_document(stack):
    from tests.openapi.test_document import Conforms

    client = await stack.client()
    account = await stack.user(client)
    conforms = Conforms(await (await client.get("/openapi.json")).json())
    reply = await client.post(REQUESTS, headers={**DATO_HEADERS, **account["auth"]},
                              json={"data": {"type": "upload_request", "attributes": {"filename": "a.txt"}}})
    body = await reply.json()
    conforms(body, REQUESTS, "post", 201)
    url = body["data"]["attributes"]["url"]
    conforms(await (await put_file(client, url, b"text", "text/plain")).json(), "/dato/upload-requests/content",
             "put", 200)
    conforms(await (await put_file(client, url, b"text", "text/plain")).json(), "/dato/upload-requests/content",
             "put", 409)
    invalid = await client.post(REQUESTS, headers={**DATO_HEADERS, **account["auth"]},
                                json={"data": {"type": "upload_request", "attributes": {}}})
    conforms(await invalid.json(), REQUESTS, "post", 422)


async def test_a_claim_left_by_a_dead_instance_frees_when_its_lease_runs_out(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    documents = client.app[DOCUMENTS]
    await documents.update("upload_requests", path, {"status": "receiving", "claim": "dead",
                                                     "lease_until": time.time() + 60})
    assert (await put_file(client, url, b"too soon")).status == 409  # it might still be sending
    await documents.update("upload_requests", path, {"lease_until": 0.0})
    assert (await put_file(client, url, b"after")).status == 200
    assert await stored(client, (await take(client, account, path)).key) == b"after"


async def test_a_stalled_put_whose_lease_was_taken_over_changes_nothing(stack):
    client = await stack.client(GATEWAY_UPLOAD_LEASE=0.3)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"])
    go = asyncio.Event()

    async def stalled():
        yield b"stale "
        await go.wait()
        yield b"body"

    first = asyncio.create_task(put_file(client, url, stalled(), headers={"Content-Length": "10"}))
    async with asyncio.timeout(10):
        while (await client.app[DOCUMENTS].get("upload_requests", path))["status"] != "receiving":
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # past the lease: the stalled PUT is presumed dead
    assert (await put_file(client, url, b"fresh")).status == 200
    go.set()
    assert (await first).status == 409
    assert await stored(client, (await take(client, account, path)).key) == b"fresh"


async def test_sweep_aborts_the_multipart_upload_of_a_put_whose_instance_died(stack):
    client = await stack.client()
    account = await stack.user(client)
    path, _ = await ask(client, account["auth"])
    documents, objects = client.app[DOCUMENTS], client.app[OBJECTS]
    key = (await documents.get("upload_requests", path))["key"]
    target = await objects.begin(key, "image/png")
    await documents.update("upload_requests", path, {"status": "receiving", "claim": "dead", "lease_until": 0.0,
                                                     "target": target, "expires_at": 0.0})
    assert await client.app[UPLOAD_REQUESTS].sweep() == 1
    assert await documents.get("upload_requests", path) is None
    if stack.objects_kind == "local":
        assert not (objects.uploads / target["file"]).exists()
    else:  # S3 forgot the multipart upload
        with pytest.raises(ClientError) as gone:
            await objects._s3.list_parts(Bucket=objects.bucket, Key=key, UploadId=target["mpu"])
        assert gone.value.response["Error"]["Code"] == "NoSuchUpload"


@pytest.mark.parametrize("stack", ["local+sqlite"], indirect=True)
async def test_a_store_that_times_out_during_the_put_is_a_503_not_the_clients_fault(stack, monkeypatch):
    """Only the body's own breaks are the client's (499); a store that does not answer in time
    is the gateway's 503 with Retry-After, and the request stays usable."""
    client = await stack.client()
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "late.bin")
    objects = client.app[OBJECTS]
    real_put = objects.put

    async def timing_out(*args, **kwargs):
        raise asyncio.TimeoutError()

    monkeypatch.setattr(objects, "put", timing_out)
    reply = await put_file(client, url, b"some bytes")
    assert reply.status == 503 and reply.headers["Retry-After"], await reply.text()
    assert "application/json" in reply.headers["Content-Type"]
    monkeypatch.setattr(objects, "put", real_put)
    assert (await put_file(client, url, b"some bytes")).status == 200
    assert (await take(client, account, path)).size == 10
