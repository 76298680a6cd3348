"""Upload requests on S3 with GATEWAY_S3_PUBLIC_ENDPOINT: the client PUTs straight to S3."""
from __future__ import annotations

import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.core.errors import GatewayError
from gateway.keys import DOCUMENTS, OBJECTS, UPLOAD_REQUESTS
from storage.errors import ObjectNotFound
from tests.dato.helpers import ask, put_file, take

S3_STACKS = ["s3+sqlite", "s3+mongodb"]


async def presigning(stack, **env):
    endpoint = stack.settings_env["GATEWAY_S3_ENDPOINT"]
    client = await stack.client(GATEWAY_S3_PUBLIC_ENDPOINT=endpoint, **env)
    return client, endpoint


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_the_url_is_a_presigned_s3_put_that_signs_no_content_type(stack):
    client, endpoint = await presigning(stack)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "photo.png")
    assert url.startswith(f"{endpoint}/{stack.settings_env['GATEWAY_S3_BUCKET']}/dato/{account['id']}/")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert 3500 <= int(query["X-Amz-Expires"][0]) <= 3600
    data = os.urandom(300_000)
    forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert (await put_file(client, forged, data, "image/png")).status == 403  # S3 checks what it signed
    reply = await put_file(client, url, data, "image/png")  # no Authorization, the client's own type
    assert reply.status == 200, await reply.text()
    taken = await take(client, account, path)
    assert (taken.size, taken.md5, taken.filename) == (len(data), None, "photo.png")  # md5: a worker's job
    assert await (await client.app[OBJECTS].get(taken.key)).read_all() == data


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_presigned_file_over_the_limit_is_deleted_at_take(stack):
    client, _ = await presigning(stack, GATEWAY_MAX_UPLOAD_SIZE=1000)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "big.bin")
    assert (await put_file(client, url, os.urandom(2000), "application/octet-stream")).status == 200
    with pytest.raises(GatewayError) as caught:
        await take(client, account, path)
    assert caught.value.status == 422 and caught.value.extra["reason"] == "too_big"
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat((await client.app[DOCUMENTS].get("upload_requests", path))["key"])
    with pytest.raises(GatewayError):
        await take(client, account, path)


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_presigned_request_is_takeable_only_once_its_file_is_there(stack):
    client, _ = await presigning(stack)
    account, other = await stack.user(client), await stack.user(client)
    path, url = await ask(client, account["auth"], "doc.pdf")
    with pytest.raises(GatewayError) as caught:
        await take(client, account, path)
    assert caught.value.extra["reason"] == "not_uploaded"
    assert (await put_file(client, url, b"%PDF-1.4", "application/pdf")).status == 200
    with pytest.raises(GatewayError) as caught:
        await take(client, other, path)  # bound to the user who asked
    assert caught.value.extra["reason"] == "unknown"
    assert (await take(client, account, path)).size == 8


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_presigned_objects_are_swept_after_a_grace_for_late_puts(stack):
    client, _ = await presigning(stack)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "late.bin")
    assert (await put_file(client, url, b"bytes", "application/octet-stream")).status == 200
    documents = client.app[DOCUMENTS]
    key = (await documents.get("upload_requests", path))["key"]
    await documents.update("upload_requests", path, {"expires_at": time.time() - 60})
    assert await client.app[UPLOAD_REQUESTS].sweep() == 0  # a big PUT begun before expiry may still finish
    assert (await client.app[OBJECTS].stat(key)).size == 5
    await documents.update("upload_requests", path, {"expires_at": 0.0})
    assert await client.app[UPLOAD_REQUESTS].sweep() == 1
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(key)
    assert await documents.get("upload_requests", path) is None


@pytest.mark.parametrize("stack", S3_STACKS, indirect=True)
async def test_a_put_after_the_take_changes_nothing_taken(stack):
    """The URL stays valid until it expires: bytes PUT after the take (here bigger than the limit)
    must not become the upload's, and are deleted once the URL is dead."""
    client, _ = await presigning(stack, GATEWAY_MAX_UPLOAD_SIZE=6 * 1024 * 1024)
    account = await stack.user(client)
    path, url = await ask(client, account["auth"], "clip.bin")
    first = os.urandom(5 * 1024 * 1024 + 11)  # more than a part: copied inside S3
    assert (await put_file(client, url, first, "application/octet-stream")).status == 200
    taken = await take(client, account, path)
    documents, objects = client.app[DOCUMENTS], client.app[OBJECTS]
    original = (await documents.get("upload_requests", path))["key"]
    assert taken.key != original and taken.size == len(first)
    assert (await put_file(client, url, os.urandom(7 * 1024 * 1024), "application/octet-stream")).status == 200
    assert await (await objects.get(taken.key)).read_all() == first
    await documents.update("upload_requests", path, {"expires_at": 0.0})
    await client.app[UPLOAD_REQUESTS].sweep()
    with pytest.raises(ObjectNotFound):
        await objects.stat(original)
    assert (await objects.stat(taken.key)).size == len(first)
