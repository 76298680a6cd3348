"""tus-js-client (the official npm package, Node build, unchanged) against the gateway's /files/.

Every flow runs on local disk and on S3 (SeaweedFS), both with SQLite, over a real
loopback socket; each asserts that the bytes served back are the file.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.chunking import path_of, processed
from tests.media_files import jpeg
from tests.tus.real_clients import (KiB, MiB, assert_finished_upload, endpoint, head, install_tus_js_client,
                                    media_id_of, served_bytes, tus_js, write_file)

OBJECT_STORES = pytest.mark.parametrize("stack", ["local+sqlite", "s3+sqlite"], indirect=True)


@pytest.fixture(scope="session")
def tus_js_client():
    return install_tus_js_client()


@pytest.fixture
async def gateway(stack):
    client = await stack.client()
    user = await stack.user(client)
    return client, user, user["auth"]["Authorization"].split(" ", 1)[1]


def plan(client, token: str, file, **options) -> dict:
    return {"endpoint": endpoint(client), "token": token, "file": str(file), "action": "upload", "log": True,
            **options}


def patches(exchanges: list[dict]) -> list[dict]:
    return [e for e in exchanges if e["method"] == "PATCH" and "status" not in e]


@OBJECT_STORES
async def test_whole_file_in_one_patch(gateway, tus_js_client, tmp_path):
    client, user, token = gateway
    data = write_file(tmp_path / "one.bin", 6 * MiB + 123)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "one.bin"))
    assert code == 0, err
    done = steps["done"]
    assert len(patches(done["exchanges"])) == 1
    assert done["url"].startswith(endpoint(client)) and done["mediaId"], done
    media = await assert_finished_upload(client, done["url"], user["auth"], data)
    assert media["id"] == int(done["mediaId"])


@OBJECT_STORES
@pytest.mark.parametrize("option", ["uploadDataDuringCreation", "uploadLengthDeferred"])
async def test_creation_with_upload_and_deferred_length(gateway, tus_js_client, tmp_path, option):
    """The client's switches for the creation-with-upload and creation-defer-length extensions."""
    client, user, token = gateway
    data = write_file(tmp_path / "ext.bin", 3 * MiB + 11)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "ext.bin", chunkSize=1 * MiB,
                                         clientOptions={option: True}, buffer=True))
    assert code == 0, err
    requests = [e["method"] for e in steps["done"]["exchanges"] if "status" not in e]
    assert requests == ["POST"] + ["PATCH"] * (3 if option == "uploadDataDuringCreation" else 4), requests
    await assert_finished_upload(client, steps["done"]["url"], user["auth"], data)


@pytest.mark.slow
@OBJECT_STORES
async def test_256_kib_chunks(gateway, tus_js_client, tmp_path):
    client, user, token = gateway
    data = write_file(tmp_path / "chunks.bin", 6 * MiB + 5)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "chunks.bin", chunkSize=256 * KiB))
    assert code == 0, err
    sent = patches(steps["done"]["exchanges"])
    assert [int(p["offset"]) for p in sent] == list(range(0, len(data), 256 * KiB))
    await assert_finished_upload(client, steps["done"]["url"], user["auth"], data)


@pytest.mark.slow
@OBJECT_STORES
@pytest.mark.parametrize("chunk_size", [None, 256 * KiB], ids=["one-patch", "256KiB"])
async def test_abort_at_40_percent_and_resume_from_a_new_upload(gateway, tus_js_client, tmp_path, chunk_size):
    """A new process (as after a page reload) finds the upload through its file
    storage and sends only what the server does not have yet; the server kept every
    byte that arrived before the abort, also of a PATCH cut in the middle (with one
    PATCH for the whole file, that is all of them)."""
    client, user, token = gateway
    file, storage = tmp_path / "resume.bin", tmp_path / "tus-urls.json"
    data = write_file(file, 12 * MiB + 77)
    common = dict(chunkSize=chunk_size, urlStorage=str(storage))
    code, steps, err = await tus_js(plan(client, token, file, action="abort", abortAt=0.4, **common))
    assert code == 0, err
    aborted = steps["aborted"]
    assert aborted["sent"] == int(0.4 * len(data)) and aborted["url"]

    # How soon the server reports them is test_head_right_after_an_abort_reports_what_arrived's business.
    kept = await settled_offset(client, aborted["url"], user["auth"], aborted["sent"])
    assert kept == aborted["sent"], "every byte that arrived before the cut is kept"

    code, steps, err = await tus_js(plan(client, token, file, action="resume", **common))
    assert code == 0, err
    assert steps["previous"] == [aborted["url"]]
    done = steps["done"]
    assert done["url"] == aborted["url"]
    assert not [e for e in done["exchanges"] if e["method"] == "POST"], "resumed, so nothing is created"
    assert int(patches(done["exchanges"])[0]["offset"]) == kept
    await assert_finished_upload(client, done["url"], user["auth"], data)


async def settled_offset(client, url: str, auth: dict, expected: int, timeout: float = 5.0) -> int:
    """The upload's offset once it reaches ``expected`` (or whatever it is after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await head(client, url, auth)
        assert reply.status == 200 and reply.headers.get("Media-Id") is None, (reply.status, dict(reply.headers))
        offset = int(reply.headers["Upload-Offset"])
        if offset == expected or asyncio.get_running_loop().time() > deadline:
            return offset
        await asyncio.sleep(0.05)


@OBJECT_STORES
async def test_head_right_after_an_abort_reports_what_arrived(gateway, tus_js_client, tmp_path):
    """tus-js-client retries a dropped PATCH at once (retryDelays starts at 0): its HEAD
    must see the bytes the cut PATCH delivered, or it re-sends them and then meets a 409."""
    client, user, token = gateway
    data = write_file(tmp_path / "cut.bin", 8 * MiB)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "cut.bin", action="abort", abortAt=0.4))
    assert code == 0, err
    reply = await head(client, steps["aborted"]["url"], user["auth"])
    assert reply.status == 200 and reply.headers["Upload-Length"] == str(len(data))
    assert reply.headers["Upload-Offset"] == str(steps["aborted"]["sent"])


@pytest.mark.slow
@OBJECT_STORES
@pytest.mark.parametrize("size", [1 * MiB + 1, 16 * MiB + 3], ids=["partials-under-5MiB", "partials-over-5MiB"])
async def test_parallel_uploads_concatenate(gateway, tus_js_client, tmp_path, size):
    """parallelUploads: 3 partial uploads, then a final one made by Upload-Concat;
    partials under 5 MiB cannot be S3 copy sources except as the last part."""
    client, user, token = gateway
    data = write_file(tmp_path / "parallel.bin", size)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "parallel.bin", parallelUploads=3,
                                         metadata={"filename": "parallel.bin"}))
    assert code == 0, err
    created = [e for e in steps["done"]["exchanges"] if e["method"] == "POST" and "status" not in e]
    assert sorted(c["concat"].split(";")[0] for c in created) == ["final", "partial", "partial", "partial"]
    media = await assert_finished_upload(client, steps["done"]["url"], user["auth"], data)
    assert media["title"] == "parallel.bin"


@OBJECT_STORES
async def test_metadata_names_the_media_and_filetype_is_only_a_hint(gateway, tus_js_client, tmp_path):
    client, user, token = gateway
    data = jpeg(900, 600)
    (tmp_path / "photo").write_bytes(data)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "photo", metadata={
        "filename": "Beach day, 2026.jpg", "filetype": "application/pdf"}))
    assert code == 0, err
    url = steps["done"]["url"]
    media_id = await media_id_of(client, url, user["auth"])
    assert await served_bytes(client, url, user["auth"]) == data
    media = await processed(client, user["auth"], media_id, timeout=60)
    assert (media["title"], media["type"], media["mime_type"]) == ("Beach day, 2026.jpg", "image", "image/jpeg")
    assert (media["image_width"], media["image_height"]) == (900, 600)
    assert [t["size"] for t in media["thumbnails"]] == [64, 128, 512, 1080]
    listed = await (await client.get("/api/v2/media/", headers=user["auth"])).json()
    assert media["id"] in [m["id"] for m in listed["results"]], listed


@OBJECT_STORES
async def test_abort_true_terminates_the_upload(gateway, tus_js_client, tmp_path):
    client, user, token = gateway
    write_file(tmp_path / "gone.bin", 3 * MiB)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "gone.bin", action="abort", abortAt=0.4,
                                         chunkSize=256 * KiB, terminate=True))
    assert code == 0, err
    url = steps["aborted"]["url"]
    deleted = [e for e in steps["aborted"]["exchanges"] if e["method"] == "DELETE" and "status" in e]
    assert [e["status"] for e in deleted] == [204]
    assert (await head(client, url, user["auth"])).status in (404, 410)
    assert (await client.get(path_of(url), headers=user["auth"])).status in (404, 410)


@OBJECT_STORES
async def test_another_users_upload_is_not_found(gateway, tus_js_client, tmp_path, stack):
    client, user, token = gateway
    write_file(tmp_path / "mine.bin", 300 * KiB)
    code, steps, err = await tus_js(plan(client, token, tmp_path / "mine.bin"))
    assert code == 0, err
    other = await stack.user(client)
    url = steps["done"]["url"]
    assert (await head(client, url, other["auth"])).status == 404
    assert (await client.get(path_of(url), headers=other["auth"])).status == 404
    assert await served_bytes(client, url, user["auth"]) == (tmp_path / "mine.bin").read_bytes()
