"""An S3 that stops answering is BackendUnavailable (503), in bounded time.

GATEWAY_BACKEND_TIMEOUT bounds every S3 request, but not the uploading client's pace.
The fake server is a loopback socket that answers HEAD (so the store opens), cuts
``GET .../cut`` after 1 MiB of a 10 MiB body (S3 killed mid-download), and reads any
other request without ever replying, as a SIGSTOPped S3 does."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from storage.errors import BackendUnavailable
from storage.objects.s3 import S3ObjectStore

TIMEOUT = 0.5
SLOW_CLIENT_TIMEOUT = 1.5  # SeaweedFS may take over 0.5 s to store a 5 MiB part on a busy machine
MiB = 1024 * 1024


async def _frozen_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET ") and b"/cut " in head.split(b"\r\n", 1)[0]:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\nETag: \"e\"\r\n\r\n"
                             + b"x" * MiB)
                await writer.drain()
                return
            if not head.startswith(b"HEAD "):
                while await reader.read(65536):  # take the body, never answer
                    pass
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def fail_after(seconds: float):
    """Fail the test (instead of hanging it) when the block outlives ``seconds``."""
    handle = asyncio.get_running_loop().call_later(seconds, asyncio.current_task().cancel)
    try:
        yield
    except asyncio.CancelledError:
        pytest.fail(f"still waiting after {seconds} s")
    finally:
        handle.cancel()


@pytest.fixture
async def frozen_s3():
    server = await asyncio.start_server(_frozen_after_head, "127.0.0.1", 0)
    store = S3ObjectStore(endpoint=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", bucket="frozen",
                          region="us-east-1", access_key="k", secret_key="s", part_size=5 * MiB, staging=None,
                          timeout=TIMEOUT)
    await store.open()
    yield store
    await store.close()
    server.close()


@pytest.mark.parametrize("call", ["put", "get", "begin"])
async def test_a_frozen_s3_is_unavailable_within_the_timeout(frozen_s3, call):
    started = time.monotonic()
    # Before the deadline, a PutObject here never returned: fail rather than wait forever.
    with pytest.raises(BackendUnavailable) as raised, fail_after(5):
        if call == "put":
            await frozen_s3.put("staged", os.urandom(204_800))
        elif call == "get":
            await frozen_s3.get("media/x")
        else:
            await frozen_s3.begin("media/x", "application/octet-stream")
    assert raised.value.backend == "s3"
    assert time.monotonic() - started < TIMEOUT + 0.4  # one deadline, not attempts x read timeout


async def test_s3_gone_mid_download_is_unavailable(frozen_s3):
    """aiohttp's ClientPayloadError leaked out of the body stream untranslated (a 500)."""
    body = await frozen_s3.get("cut")
    with pytest.raises(BackendUnavailable) as raised, fail_after(5):
        await body.read_all()
    assert raised.value.backend == "s3"


@pytest.mark.slow
async def test_a_slow_client_is_not_a_slow_store(seaweedfs, document_store):
    """A part streamed from a client that pauses longer than the timeout still succeeds:
    waiting for the client's next piece does not count against the store's deadline."""
    store = S3ObjectStore(endpoint=seaweedfs.endpoint, bucket="gateway-deadline", region="us-east-1",
                          access_key=seaweedfs.access_key, secret_key=seaweedfs.secret_key, part_size=5 * MiB,
                          staging=document_store, timeout=SLOW_CLIENT_TIMEOUT)
    await store.open()
    try:
        data = os.urandom(5 * MiB + 1000)
        half = len(data) // 2 + 1

        async def trickle():
            for start in range(0, len(data), half):
                await asyncio.sleep(SLOW_CLIENT_TIMEOUT + 0.5)  # each pause alone outlasts the deadline
                yield data[start:start + half]

        async def fence():
            return 1

        state = await store.append(await store.begin("media/slow.bin", "application/octet-stream"), 0, trickle(),
                                   len(data), fence=fence)
        assert len(state["parts"]) == 1
        info = await store.complete(state, fence=2)
        assert info.size == len(data)
        assert await (await store.get("media/slow.bin")).read_all() == data
    finally:
        await store.close()
