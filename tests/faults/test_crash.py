"""kill -9 of a gateway in the middle of a chunk and of a job: a new process takes
over within seconds, the upload resumes from its acknowledged offset, and the job
the dead process held is run again."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import time

import aiohttp
import pytest
from PIL import Image

from tests.chunking import chunk_form, content_range
from tests.gateway import processes

LEASE = 2.0
MiB = 1024 * 1024
PIECE = 204_800


class Gateway:
    """A real ``gateway serve`` process (tests/gateway/processes.py), killed with SIGKILL."""

    def __init__(self, tmp_path, **env) -> None:
        self.tmp_path = tmp_path
        self.env = processes.gateway_env(tmp_path, GATEWAY_UPLOAD_LEASE=str(LEASE), GATEWAY_JOB_LEASE=str(LEASE),
                               GATEWAY_WORKERS="1", GATEWAY_JOB_BACKOFF="0.1", **env)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def cli(self, *args: str) -> str:
        done = processes.run(list(args), self.env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    async def start(self) -> None:
        port, log = processes.free_port(), self.tmp_path / f"gateway-{time.monotonic_ns()}.log"
        self.url = f"http://127.0.0.1:{port}"
        self.process = processes.start(self.env, port, log)
        await asyncio.to_thread(processes.wait_until_ready, self.process, port, log)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def rows(data_dir, collection: str) -> list[dict]:
    with sqlite3.connect(data_dir / "var" / "gateway.sqlite3", timeout=5) as db:
        return [json.loads(doc) for (doc,) in db.execute(f'SELECT doc FROM "{collection}"')]


async def send_chunk(http, gateway, auth, data, start, total, upload_id=None, filename="f.bin"):
    async with http.post(gateway.url + "/api/v2/media/upload/chunk/",
                         data=chunk_form(data, upload_id=upload_id, filename=filename),
                         headers={**auth, **content_range(start, len(data), total)}) as reply:
        return reply.status, await reply.json()


async def upload(http, gateway, auth, data, chunk, media_type, filename):
    upload_id = None
    for start in range(0, len(data), chunk):
        status, body = await send_chunk(http, gateway, auth, data[start:start + chunk], start, len(data), upload_id,
                                        filename)
        assert status == 200, body
        upload_id = body["upload_id"]
    form = {"upload_id": upload_id, "type": media_type, "md5": hashlib.md5(data).hexdigest()}
    async with http.post(gateway.url + "/api/v2/media/upload/complete/", json=form, headers=auth) as reply:
        assert reply.status == 201, await reply.text()
        return await reply.json()


async def assert_completed_as(http, gateway, auth, upload_id: str, data: bytes) -> None:
    form = {"upload_id": upload_id, "type": "document", "md5": hashlib.md5(data).hexdigest()}
    async with http.post(gateway.url + "/api/v2/media/upload/complete/", json=form, headers=auth) as reply:
        document = await reply.json()
        assert reply.status == 201, document
    async with http.get(document["url"]) as reply:
        assert await reply.read() == data


def big_png() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((4000, 4000), 80).convert("RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


async def hang_mid_chunk(gateway, auth, data, start, total, upload_id):
    """Send the headers and half of a chunk, and keep the connection open."""
    form = chunk_form(data, upload_id=upload_id)
    body = form()
    payload = io.BytesIO()

    class Sink:
        async def write(self, chunk):
            payload.write(chunk)

    await body.write(Sink())
    raw = payload.getvalue()
    host, port = gateway.url.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (f"POST /api/v2/media/upload/chunk/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Range: bytes {start}-{start + len(data) - 1}/{total}\r\n"
            f"Content-Type: {body.content_type}\r\nContent-Length: {len(raw)}\r\n\r\n")
    writer.write(head.encode() + raw[:len(raw) // 2])
    await writer.drain()
    return writer


@pytest.mark.slow
@pytest.mark.parametrize("objects", ["local", "s3"])
async def test_kill_9_mid_chunk_and_mid_job_then_a_new_process_takes_over(tmp_path, request, objects):
    env = {}
    if objects == "s3":  # the chunk in flight is a part: its upload holds the session's lease
        s3 = request.getfixturevalue("seaweedfs")
        env = {"GATEWAY_OBJECT_STORE": "s3", "GATEWAY_S3_ENDPOINT": s3.endpoint, "GATEWAY_S3_BUCKET": "crash",
               "GATEWAY_S3_ACCESS_KEY": s3.access_key, "GATEWAY_S3_SECRET_KEY": s3.secret_key,
               "GATEWAY_S3_PART_SIZE": str(5 * MiB)}
    gateway = Gateway(tmp_path, **env)
    token = gateway.cli("users", "add", "crash").strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    middle = 5 * MiB if objects == "s3" else PIECE
    data = os.urandom(PIECE + middle + PIECE)
    image = big_png()
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await send_chunk(http, gateway, auth, data[:PIECE], 0, len(data))
            upload_id = body["upload_id"]
            media = await upload(http, gateway, auth, image, 8 * MiB, "image", "noise.png")
            hanging = await hang_mid_chunk(gateway, auth, data[PIECE:PIECE + middle], PIECE, len(data), upload_id)

            async def crash_point():  # half the chunk is in (and, on S3, its lease held) and a job is running
                while True:
                    session = [s for s in rows(tmp_path, "uploads") if s["id"] == upload_id][0]
                    if ((session["lease_id"] or objects == "local")
                            and any(j["status"] == "running" for j in rows(tmp_path, "jobs"))):
                        return
                    await asyncio.sleep(0.005)

            await asyncio.wait_for(crash_point(), 20)
            gateway.kill()
            killed_at = time.monotonic()
            hanging.close()
            assert any(j["status"] == "running" for j in rows(tmp_path, "jobs"))

            await gateway.start()
            while True:  # the client retries the chunk, as the web client does on 409
                status, body = await send_chunk(http, gateway, auth, data[PIECE:PIECE + middle], PIECE, len(data),
                                                upload_id)
                if status != 409:
                    break
                await asyncio.sleep(0.2)
            resumed_after = time.monotonic() - killed_at
            assert status == 200, body
            assert resumed_after < LEASE + 3, resumed_after
            status, body = await send_chunk(http, gateway, auth, data[PIECE + middle:], PIECE + middle, len(data),
                                            upload_id)
            assert status == 200, body
            await assert_completed_as(http, gateway, auth, upload_id, data)

            async with asyncio.timeout(30):  # the job the dead process held runs again here
                while True:
                    async with http.get(f"{gateway.url}/api/v2/media/{media['id']}/", headers=auth) as reply:
                        current = await reply.json()
                    if current["processing"] != "pending":
                        break
                    await asyncio.sleep(0.2)
            assert current["processing"] == "done", current
            assert [t["size"] for t in current["thumbnails"]] == [64, 128, 512, 1080]
    finally:
        gateway.kill()


@pytest.mark.slow
async def test_kill_9_while_a_part_is_flushed_loses_no_acknowledged_byte(tmp_path, weed):
    gateway = Gateway(tmp_path, GATEWAY_OBJECT_STORE="s3", GATEWAY_S3_ENDPOINT=weed.endpoint,
                      GATEWAY_S3_BUCKET="crash-flush", GATEWAY_S3_ACCESS_KEY=weed.access_key,
                      GATEWAY_S3_SECRET_KEY=weed.secret_key, GATEWAY_S3_PART_SIZE=str(5 * MiB))
    token = gateway.cli("users", "add", "flush").strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    data = os.urandom(8 * MiB)
    filling = -(-5 * MiB // PIECE)  # the chunk that completes the first part
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            upload_id = None
            for start in range(0, filling * PIECE, PIECE):
                if start == (filling - 1) * PIECE:
                    weed.pause()  # S3 frozen: the part's background upload cannot finish
                status, body = await send_chunk(http, gateway, auth, data[start:start + PIECE], start, len(data),
                                                upload_id)
                assert status == 200, body  # staged chunks need no S3
                upload_id = body["upload_id"]
            session = [s for s in rows(tmp_path, "uploads") if s["id"] == upload_id][0]
            assert session["target"]["flush"] and not session["target"]["parts"]
            gateway.kill()
            weed.resume()

            await gateway.start()
            for start in range(filling * PIECE, len(data), PIECE):
                status, body = await send_chunk(http, gateway, auth, data[start:start + PIECE], start, len(data),
                                                upload_id)
                assert status == 200, body
            await assert_completed_as(http, gateway, auth, upload_id, data)
    finally:
        gateway.kill()
