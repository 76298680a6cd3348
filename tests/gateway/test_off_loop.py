"""Issue 8 A4: blocking work stays off the event loop, so every other request (health
checks too) keeps being served while it runs.

Each test makes one blocking call slow (a disk that takes 1.5 s per write, libmagic
taking 1.5 s on a pathological file) and watches how late the loop wakes up from
short sleeps meanwhile: on the loop, that call would freeze it for the whole 1.5 s.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import time

import magic
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS
from tests.chunking import complete, processed, upload_chunks, upload_media
from tests.media_files import jpeg

pytestmark = pytest.mark.slow

STALL = 1.5  # seconds one slowed call takes
LAG_BOUND = 1.0  # generous: a healthy loop answers within milliseconds


class LoopLag:
    """The worst delay with which the event loop woke up from 20 ms sleeps."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(0.02)
            self.worst = max(self.worst, loop.time() - started - 0.02)

    async def __aenter__(self) -> "LoopLag":
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()


def stalling(function):
    def slow(*args, **kwargs):
        time.sleep(STALL)
        return function(*args, **kwargs)
    return slow


@pytest.fixture
async def client(tmp_path):
    async def make(**env) -> TestClient:
        environ = {"GATEWAY_DATA_DIR": str(tmp_path), **{k.upper(): str(v) for k, v in env.items()}}
        started = TestClient(TestServer(create_app(load_settings(environ=environ)), host="127.0.0.1"))
        await started.start_server()
        made.append(started)
        return started

    made: list[TestClient] = []
    yield make
    for started in made:
        await started.close()


async def user_auth(client: TestClient, **roles) -> dict:
    user, token = await client.app[USERS].add(f"u{os.urandom(4).hex()}", **roles)
    return {"Authorization": f"Bearer {token}"}


async def test_files_api_upload_spools_to_disk_off_the_loop(client, monkeypatch):
    app = await client(gateway_workers=0)
    auth = await user_auth(app, admin=True)
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", stalling(tempfile.SpooledTemporaryFile.write))
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "writelines",
                        stalling(tempfile.SpooledTemporaryFile.writelines))
    data = os.urandom(1024 * 1024)
    form = FormData(quote_fields=False)
    form.add_field("f", data, filename="blob.bin", content_type="application/octet-stream")
    async with LoopLag() as lag:
        reply = await app.post("/api/media/files/", data=form, headers=auth)
    assert reply.status == 201, await reply.text()
    assert (await reply.json())["size"] == len(data)
    assert lag.worst < LAG_BOUND, f"the event loop stalled {lag.worst:.2f}s while the upload spooled"


async def test_complete_sniffs_the_file_off_the_loop(client, monkeypatch):
    app = await client(gateway_workers=0)
    auth = await user_auth(app)
    data = jpeg(300, 200)
    upload_id = await upload_chunks(app, auth, data, filename="photo.jpg")
    monkeypatch.setattr(magic, "from_buffer", stalling(magic.from_buffer))
    async with LoopLag() as lag:
        reply = await complete(app, auth, upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201, created
    assert (created["image_width"], created["image_height"]) == (300, 200)
    assert lag.worst < LAG_BOUND, f"the event loop stalled {lag.worst:.2f}s while complete sniffed the file"


async def test_job_downloads_write_to_disk_off_the_loop(client, monkeypatch):
    app = await client(gateway_workers=1)
    auth = await user_auth(app)
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):  # a slow disk under the workers' temporary files only
        opened = real_fdopen(fd, *args, **kwargs)
        return SlowFile(opened) if "gateway-job-" in os.readlink(f"/proc/self/fd/{fd}") else opened

    monkeypatch.setattr(os, "fdopen", fdopen)
    async with LoopLag() as lag:
        created = await upload_media(app, auth, jpeg(300, 200), filename="photo.jpg")
        media = await processed(app, auth, created["id"], timeout=30)
    assert media["processing"] == "done" and len(media["thumbnails"]) == 4, media
    assert lag.worst < LAG_BOUND, f"the event loop stalled {lag.worst:.2f}s while a job downloaded its file"


class SlowFile:
    def __init__(self, wrapped) -> None:
        self._wrapped = wrapped
        self.write = stalling(wrapped.write)
        self.writelines = stalling(wrapped.writelines)

    def __getattr__(self, name):
        return getattr(self._wrapped, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._wrapped.close()
