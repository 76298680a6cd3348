"""The decode memory budget: a weighted first-come-first-served semaphore, and the
header-only estimates it is fed with."""
from __future__ import annotations

import asyncio
import threading
import time

import psutil
import pytest
from PIL import Image

from tests.large_images import GRAY, RGB, RGBA, png_bytes
from workers.decode_budget import DecodeBudget, release_freed_memory
from gateway.core.sniff import NotAnImage as ImageRejected
from workers.imaging import decode_cost, make_thumbnails

MiB = 1024 * 1024


async def test_decodes_that_fit_run_together_and_the_rest_wait():
    budget = DecodeBudget(100)
    first, second = budget.reserve(60), budget.reserve(40)
    await first.__aenter__()
    await second.__aenter__()
    assert budget.in_use == 100
    third = asyncio.create_task(_hold(budget, 10))
    await asyncio.sleep(0.01)
    assert not third.done(), "went over the budget"
    await second.__aexit__(None, None, None)
    assert await asyncio.wait_for(third, 1) == 10
    await first.__aexit__(None, None, None)
    assert budget.in_use == 0


async def test_an_image_bigger_than_the_whole_budget_runs_alone():
    budget = DecodeBudget(100)
    small = budget.reserve(10)
    await small.__aenter__()
    huge = asyncio.create_task(_hold(budget, 10_000, seconds=0.05))
    await asyncio.sleep(0.01)
    assert not huge.done()  # it waits for the whole budget, not for an impossible 10 000
    await small.__aexit__(None, None, None)
    assert await asyncio.wait_for(huge, 1) == 100
    assert budget.in_use == 0


async def test_first_come_first_served_so_a_big_decode_is_not_starved():
    budget = DecodeBudget(100)
    running = budget.reserve(50)
    await running.__aenter__()
    order: list[str] = []
    big = asyncio.create_task(_hold(budget, 100, order=order, name="big"))
    await asyncio.sleep(0.01)
    small = asyncio.create_task(_hold(budget, 10, order=order, name="small"))  # would fit now, but queues
    await asyncio.sleep(0.01)
    assert order == []
    await running.__aexit__(None, None, None)
    await asyncio.wait_for(asyncio.gather(big, small), 1)
    assert order == ["big", "small"]


async def test_a_cancelled_waiter_gives_its_place_and_its_bytes_back():
    budget = DecodeBudget(100)
    running = budget.reserve(90)
    await running.__aenter__()
    blocked = asyncio.create_task(_hold(budget, 50))
    behind = asyncio.create_task(_hold(budget, 10))
    await asyncio.sleep(0.01)
    assert not behind.done()
    blocked.cancel()
    assert await asyncio.wait_for(behind, 1) == 10  # no longer queued behind the cancelled one
    await running.__aexit__(None, None, None)
    assert budget.in_use == 0


def test_budget_must_be_positive():
    with pytest.raises(ValueError):
        DecodeBudget(0)


@pytest.mark.parametrize("colour, bit_depth", [(GRAY, 16), (RGB, 16), (RGBA, 16), (RGB, 8)])
def test_estimate_covers_the_measured_pixel_memory(tmp_path, colour, bit_depth):
    """The process grows by no more than the estimate while thumbnailing."""
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(3000, 2000, bit_depth=bit_depth, colour=colour))
    estimate = decode_cost(path)
    peak = _peak_rss_growth(lambda: make_thumbnails(path))
    assert peak <= estimate, (peak // MiB, estimate // MiB)
    assert estimate <= 3 * peak + 32 * MiB  # and is not so generous that nothing runs concurrently


def test_jpeg_estimate_counts_the_scaled_down_decode(tmp_path):
    path = tmp_path / "camera.jpg"
    Image.new("RGB", (4800, 3200), (9, 99, 199)).save(path, "JPEG")
    png = tmp_path / "same.png"
    Image.new("RGB", (4800, 3200), (9, 99, 199)).save(png, "PNG")
    assert decode_cost(path) * 2 < decode_cost(png)  # libjpeg decodes it at half size for 1080 px


def test_estimate_refuses_what_make_thumbnails_would_refuse(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(3000, 2000))
    with pytest.raises(ImageRejected) as caught:
        decode_cost(path, max_pixels=3000 * 2000 - 1)
    assert caught.value.reason == "too_many_pixels"
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageRejected) as caught:
        decode_cost(text)
    assert caught.value.reason == "not_an_image"


def test_release_freed_memory_is_safe_to_call():
    release_freed_memory()


async def _hold(budget: DecodeBudget, cost: int, *, seconds: float = 0.0, order=None, name=""):
    async with budget.reserve(cost) as held:
        if order is not None:
            order.append(name)
        await asyncio.sleep(seconds)
        return held


def _peak_rss_growth(run) -> int:
    """How far the process's RSS rose above where it started while ``run`` ran,
    sampled by a thread every millisecond."""
    process = psutil.Process()
    release_freed_memory()
    start = process.memory_info().rss
    stop, peak = threading.Event(), [start]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        run()
    finally:
        stop.set()
        thread.join()
    return peak[0] - start
