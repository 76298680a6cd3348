"""tuspy (the PyPI tus client, unchanged) against the gateway's /files/: chunked uploads
with an Upload-Checksum on every PATCH, on local disk and on S3 (SeaweedFS)."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusUploadFailed
from tusclient.uploader import Uploader

from tests.tus.real_clients import KiB, MiB, assert_finished_upload, endpoint, head, write_file

OBJECT_STORES = pytest.mark.parametrize("stack", ["local+sqlite", "s3+sqlite"], indirect=True)


def uploader_with(algorithm: str) -> type[Uploader]:
    """tuspy hashes with sha1; its documented class attribute picks another algorithm."""
    pair = (algorithm, getattr(hashlib, algorithm))
    return type(f"{algorithm}Uploader", (Uploader,), {"CHECKSUM_ALGORITHM_PAIR": pair})


def upload_in_thread(url: str, auth: dict, path, algorithm: str, chunk_size: int, **metadata) -> Uploader:
    client = TusClient(url, headers=auth)
    uploader = uploader_with(algorithm)(file_path=str(path), client=client, chunk_size=chunk_size,
                                        upload_checksum=True, metadata=metadata)
    uploader.upload()
    return uploader


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """requests honours proxy variables; the gateway is on loopback."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.mark.slow
@OBJECT_STORES
@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
async def test_chunked_upload_with_checksums(stack, tmp_path, algorithm):
    client = await stack.client()
    user = await stack.user(client)
    data = write_file(tmp_path / "data.bin", 6 * MiB + 999)
    done = await asyncio.to_thread(upload_in_thread, endpoint(client), user["auth"], tmp_path / "data.bin",
                                   algorithm, 1 * MiB, filename="data.bin")
    assert done.offset == len(data) and done.url.startswith(endpoint(client))
    assert done.request.response_headers.get("media-id"), done.request.response_headers
    media = await assert_finished_upload(client, done.url, user["auth"], data)
    assert media["id"] == int(done.request.response_headers["media-id"]) and media["title"] == "data.bin"


@OBJECT_STORES
async def test_small_chunks_with_checksums(stack, tmp_path):
    client = await stack.client()
    user = await stack.user(client)
    data = write_file(tmp_path / "small.bin", 1 * MiB + 17)
    done = await asyncio.to_thread(upload_in_thread, endpoint(client), user["auth"], tmp_path / "small.bin",
                                   "sha1", 200 * KiB)
    await assert_finished_upload(client, done.url, user["auth"], data)


@OBJECT_STORES
async def test_a_chunk_that_does_not_match_its_checksum_is_refused_and_not_kept(stack, tmp_path):
    """A chunk whose Upload-Checksum does not match its bytes (as after corruption on
    the way) is 460 and nothing of it is kept; the next good chunk goes on from there."""
    client = await stack.client()
    user = await stack.user(client)
    write_file(tmp_path / "checked.bin", 600 * KiB)
    uploader = uploader_with("sha256")(file_path=str(tmp_path / "checked.bin"),
                                       client=TusClient(endpoint(client), headers=user["auth"]),
                                       chunk_size=256 * KiB, upload_checksum=True)
    await asyncio.to_thread(uploader.upload_chunk)
    assert uploader.offset == 256 * KiB

    wrong = type("WrongChecksum", (Uploader,), {"CHECKSUM_ALGORITHM_PAIR": (
        "sha256", lambda chunk: hashlib.sha256(b"not " + chunk))})
    # Given a URL, the constructor asks the server for the offset (a blocking HEAD): not on the loop.
    liar = await asyncio.to_thread(wrong, file_path=str(tmp_path / "checked.bin"), url=uploader.url,
                                   client=TusClient(endpoint(client), headers=user["auth"]), chunk_size=256 * KiB,
                                   upload_checksum=True)
    with pytest.raises(TusUploadFailed) as failed:
        await asyncio.to_thread(liar.upload_chunk)
    assert failed.value.status_code == 460
    assert (await head(client, uploader.url, user["auth"])).headers["Upload-Offset"] == str(256 * KiB)

    await asyncio.to_thread(uploader.upload)
    await assert_finished_upload(client, uploader.url, user["auth"], (tmp_path / "checked.bin").read_bytes())
