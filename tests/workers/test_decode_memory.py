"""Issue 8 A9: peak memory of image decodes is bounded by GATEWAY_DECODE_MEMORY whatever
the number of workers, and handed back to the OS afterwards.

Five workers each decoding a 7000x7000 16-bit PNG (196 MB of pixels apiece) used to
take the process from 120 MB to 908 MB and leave it at 853 MB.
"""
from __future__ import annotations

import asyncio
import threading
import time

import psutil
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS
from tests.chunking import processed, upload_media
from tests.large_images import RGB, png_bytes
from workers.decode_budget import release_freed_memory

MiB = 1024 * 1024
BUDGET = 320 * MiB  # one 7000x7000 RGB decode (about 300 MB estimated) at a time
SLACK = 200 * MiB  # downloads, thumbnails, Python objects, allocator rounding
IMAGES = 10  # two rounds for five workers: glibc arenas kept the first round's peak


class PeakRss:
    """The process's resident set size, sampled by a thread every few milliseconds."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def _client(tmp_path, workers: int) -> TestClient:
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": str(workers),
                                      "GATEWAY_DECODE_MEMORY": str(BUDGET)})
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.mark.slow
async def test_concurrent_big_decodes_stay_within_the_budget_and_memory_is_given_back(tmp_path):
    data = png_bytes(7000, 7000, bit_depth=16, colour=RGB)
    # Upload everything on an instance that runs no jobs, so that the one with five
    # workers finds them all queued and starts five decodes at once.
    uploader = await _client(tmp_path, workers=0)
    try:
        _, token = await uploader.app[USERS].add("painter")
        auth = {"Authorization": f"Bearer {token}"}
        created = [await upload_media(uploader, auth, data, filename=f"scan{n}.png") for n in range(IMAGES)]
    finally:
        await uploader.close()

    release_freed_memory()
    baseline = psutil.Process().memory_info().rss
    with PeakRss() as rss:
        worker = await _client(tmp_path, workers=5)
        try:
            done = await asyncio.gather(*(processed(worker, auth, media["id"], timeout=120) for media in created))
            await asyncio.sleep(0.2)
            after = psutil.Process().memory_info().rss  # a server's executor threads live on
        finally:
            await worker.close()

    assert all(media["processing"] == "done" and len(media["thumbnails"]) == 4 for media in done), done
    grown = rss.peak - baseline
    print(f"peak +{grown // MiB} MiB, after +{(after - baseline) // MiB} MiB, budget {BUDGET // MiB} MiB")
    assert grown <= BUDGET + SLACK, f"peak grew by {grown // MiB} MiB over a {BUDGET // MiB} MiB budget"
    assert after - baseline <= 150 * MiB, f"{(after - baseline) // MiB} MiB still held after the decodes"
