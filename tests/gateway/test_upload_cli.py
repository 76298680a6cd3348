"""``gateway upload`` and the ops commands, driven as subprocesses against a real ``gateway serve``."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from tests.console.seeding import seed_failed_job
from tests.gateway.processes import gateway_env, run, running_gateway
from tests.media_files import jpeg

MiB = 1024 * 1024


def fetch(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def add_user(env: dict, name: str, *flags: str) -> str:
    added = run(["users", "add", name, *flags], env)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip().splitlines()[-1]


def client_env(tmp_path: Path, port: int, token: str) -> dict:
    # GATEWAY_URL/GATEWAY_TOKEN instead of flags; the resume state goes to the test's own cache dir.
    return gateway_env(tmp_path, GATEWAY_URL=f"http://127.0.0.1:{port}", GATEWAY_TOKEN=token,
                       XDG_CACHE_HOME=str(tmp_path / "cache"))


def upload_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "upload", *args]


def media_of(url: str, token: str, port: int) -> dict:
    """The media JSON for a content URL printed by the CLI (found in the user's list)."""
    status, body = fetch(f"http://127.0.0.1:{port}/api/v2/media/?limit=100", token)
    assert status == 200
    return next(m for m in json.loads(body)["results"] if m["url"] == url)


@pytest.mark.slow
def test_upload_several_files_prints_their_urls_and_stores_every_byte(tmp_path):
    photo, blob = tmp_path / "photo.jpg", tmp_path / "data.bin"
    photo.write_bytes(jpeg(320, 240))
    blob.write_bytes(os.urandom(3 * MiB + 123))
    with running_gateway(tmp_path) as (_, port, _log):
        token = add_user(gateway_env(tmp_path), "alice")
        done = subprocess.run(upload_cmd(str(photo), str(blob), "--chunk-size", "1M", "--parallel", "2"),
                              env=client_env(tmp_path, port, token), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        urls = dict(line.split("\t") for line in done.stdout.strip().splitlines())
        assert set(urls) == {str(photo), str(blob)}
        for path in (photo, blob):
            media = media_of(urls[str(path)], token, port)
            assert media["md5"] == hashlib.md5(path.read_bytes()).hexdigest()
            assert fetch(urls[str(path)])[1] == path.read_bytes()
        assert media_of(urls[str(photo)], token, port)["type"] == "image"
        assert media_of(urls[str(blob)], token, port)["type"] == "document"
        assert json.loads((tmp_path / "cache" / "media-gateway" / "uploads.json").read_text()) == {}

        # One bad file (missing, empty) fails the run, the others still upload.
        empty = tmp_path / "empty.txt"
        empty.write_bytes(b"")
        mixed = subprocess.run(upload_cmd(str(photo), str(empty), str(tmp_path / "missing.bin")),
                               env=client_env(tmp_path, port, token), capture_output=True, text=True, timeout=60)
        assert mixed.returncode == 1
        assert str(photo) in mixed.stdout and "2 of 3 files failed" in mixed.stderr
        refused = subprocess.run(upload_cmd(str(photo), "--token", "wrong"), env=client_env(tmp_path, port, token),
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "401" in refused.stderr
        for bad in (["--chunk-size", "0"], ["--chunk-size", "lots"], ["--parallel", "0"]):
            usage = subprocess.run(upload_cmd(str(photo), *bad), env=client_env(tmp_path, port, token),
                                   capture_output=True, text=True, timeout=60)
            assert usage.returncode == 2 and usage.stdout == "", bad


def wait_for_partial_upload(env: dict, timeout: float = 60.0) -> str:
    """The upload_id once the server holds some but not all of it (read through `gateway uploads list`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = run(["uploads", "list", "--user", "alice"], env)
        assert listed.returncode == 0, listed.stderr
        for line in listed.stdout.splitlines():
            upload_id, user, _name, progress, _expires = line.split("\t")
            offset, total = (int(n) for n in progress.split("/"))
            if 0 < offset < total:
                return upload_id
        time.sleep(0.05)
    raise AssertionError("the upload never got under way")


@pytest.mark.slow
def test_an_interrupted_upload_resumes_from_the_server_offset(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * MiB))
    with running_gateway(tmp_path) as (_, port, _log):
        server_env = gateway_env(tmp_path)
        token = add_user(server_env, "alice")
        env = client_env(tmp_path, port, token)
        # Small chunks so the run is still under way when it is killed.
        first = subprocess.Popen(upload_cmd(str(big), "--chunk-size", "64K"), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            upload_id = wait_for_partial_upload(server_env)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        status, body = fetch(f"http://127.0.0.1:{port}/api/v2/media/upload/chunk/?upload_id={upload_id}", token)
        held = json.loads(body)["offset"]
        assert status == 200 and 0 < held < big.stat().st_size
        saved = json.loads((tmp_path / "cache" / "media-gateway" / "uploads.json").read_text())
        assert list(saved.values()) == [upload_id]

        resumed = subprocess.run(upload_cmd(str(big), "--chunk-size", "4M"), env=env, capture_output=True,
                                 text=True, timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming big.bin at" in resumed.stderr
        url = resumed.stdout.strip().split("\t")[1]
        media = media_of(url, token, port)
        assert media["size"] == big.stat().st_size
        assert media["md5"] == hashlib.md5(big.read_bytes()).hexdigest()
        assert fetch(url)[1] == big.read_bytes()
        assert run(["uploads", "list"], server_env).stdout == ""  # nothing left in progress


@pytest.mark.slow  # eight command runs, a second or more each
def test_jobs_list_and_retry_on_the_configured_store(tmp_path):
    env = gateway_env(tmp_path)
    seed_failed_job(env, "probe", 41)
    listed = run(["jobs", "list", "--failed"], env)
    assert listed.returncode == 0 and listed.stdout.startswith("probe:41\tfailed\t1\t")
    assert "decoder exploded" in listed.stdout and "1 of 1 jobs (failed)" in listed.stderr
    retried = run(["jobs", "retry", "probe:41"], env)
    assert retried.returncode == 0 and retried.stdout.strip() == "probe:41: queued again"
    assert run(["jobs", "list", "--failed"], env).stdout == ""
    assert "probe:41\tqueued\t0" in run(["jobs", "list"], env).stdout
    again = run(["jobs", "retry", "probe:41"], env)
    assert again.returncode == 1 and "this one is queued" in again.stderr
    missing = run(["jobs", "retry", "nope"], env)
    assert missing.returncode == 1 and "job not found" in missing.stderr
    assert run(["uploads", "list", "--user", "nobody"], env).returncode == 1



class FlakyProxy:
    """A loopback proxy in front of the gateway that makes chosen chunk requests fail: a 503 or 409
    before the gateway sees them, a dropped connection, or a 502 after the gateway stored the chunk
    (the reply is lost, so the client's retry meets the new offset)."""

    def __init__(self, upstream: str, faults: dict[int, str]) -> None:
        self.upstream = upstream
        self.faults = faults
        self.chunks = 0
        self.completes = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        fault = None
        if request.method == "POST" and request.path.endswith("/upload/chunk/"):
            self.chunks += 1
            fault = self.faults.get(self.chunks)
        elif request.path.endswith("/upload/complete/"):
            self.completes += 1
            fault = "503" if self.completes == 1 else None  # the first complete fails too
        if fault == "503":
            return web.json_response({"detail": "busy", "code": "backend_unavailable"}, status=503,
                                     headers={"Retry-After": "0"})
        if fault == "409":
            return web.json_response({"detail": "busy", "code": "chunk_in_progress"}, status=409)
        if fault == "drop":
            request.transport.abort()
            return web.Response(status=500)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length",
                                                                              "transfer-encoding")}
        async with ClientSession() as http:
            async with http.request(request.method, self.upstream + str(request.rel_url), headers=headers,
                                    data=body) as reply:
                answer = await reply.read()
                status = 502 if fault == "lost-reply" else reply.status
                return web.Response(status=status, body=answer, content_type=reply.content_type)


@pytest.mark.slow
async def test_upload_retries_through_5xx_409_dropped_connections_and_lost_replies(tmp_path):
    data = tmp_path / "flaky.bin"
    data.write_bytes(os.urandom(10 * 64 * 1024 + 5))  # 11 chunks of 64 KiB
    with running_gateway(tmp_path) as (_, port, _log):
        token = add_user(gateway_env(tmp_path), "alice")
        # The proxy does not pass Host on, so the media URL names the gateway itself.
        proxy = FlakyProxy(f"http://127.0.0.1:{port}", {2: "503", 4: "409", 6: "drop", 8: "lost-reply"})
        app = web.Application(client_max_size=16 * MiB)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            cli = await asyncio.create_subprocess_exec(
                *upload_cmd(str(data), "--chunk-size", "64K", "--url", f"http://127.0.0.1:{server.port}"),
                env=client_env(tmp_path, port, token), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(cli.communicate(), 120)
        finally:
            await server.close()
        assert cli.returncode == 0, err.decode()
        assert proxy.chunks == 11 + 4 and proxy.completes == 2  # each fault cost exactly one more request
        url = out.decode().strip().split("\t")[1]
        media = media_of(url, token, port)
        assert media["md5"] == hashlib.md5(data.read_bytes()).hexdigest() and media["size"] == data.stat().st_size


@pytest.mark.slow
def test_a_file_changed_behind_the_same_name_size_and_time_fails_once_then_starts_over(tmp_path):
    target = tmp_path / "changing.bin"
    target.write_bytes(os.urandom(24 * MiB))
    with running_gateway(tmp_path) as (_, port, _log):
        server_env = gateway_env(tmp_path)
        token = add_user(server_env, "alice")
        env = client_env(tmp_path, port, token)
        first = subprocess.Popen(upload_cmd(str(target), "--chunk-size", "64K"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_partial_upload(server_env)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        stat = target.stat()
        target.write_bytes(os.urandom(stat.st_size))  # new bytes, same size...
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same modification time

        mismatch = subprocess.run(upload_cmd(str(target)), env=env, capture_output=True, text=True, timeout=180)
        assert mismatch.returncode == 1 and "md5_mismatch" in mismatch.stderr
        fresh = subprocess.run(upload_cmd(str(target)), env=env, capture_output=True, text=True, timeout=180)
        assert fresh.returncode == 0, fresh.stderr
        assert "resuming" not in fresh.stderr
        media = media_of(fresh.stdout.strip().split("\t")[1], token, port)
        assert media["md5"] == hashlib.md5(target.read_bytes()).hexdigest()
