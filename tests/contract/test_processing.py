"""Uploads are probed and thumbnailed by the background workers, on every backend."""
from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from gateway.keys import DOCUMENTS, OBJECTS
from storage.errors import ObjectNotFound

from tests.chunking import complete, path_of, processed, upload_chunks, upload_media
from tests.large_images import bomb_png_bytes
from tests.media_files import jpeg


async def test_5_mib_jpeg_gets_four_thumbnails_within_seconds(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg(3300, 2200)  # a real 7-megapixel photo-sized JPEG, no padding
    assert len(data) >= 5 * 1024 * 1024
    upload_id = await upload_chunks(client, user["auth"], data, filename="photo.jpg")
    started = time.monotonic()
    reply = await complete(client, user["auth"], upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201 and created["processing"] == "pending" and created["thumbnails"] == []
    media = await processed(client, user["auth"], created["id"])
    elapsed = time.monotonic() - started
    assert media["processing"] == "done", media
    assert [t["size"] for t in media["thumbnails"]] == [64, 128, 512, 1080]
    for thumb in media["thumbnails"]:
        served = await client.get(path_of(thumb["f"]))
        assert served.status == 200 and served.headers["Content-Type"] == "image/jpeg"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        with Image.open(io.BytesIO(await served.read())) as img:
            assert max(img.size) == thumb["size"] and img.size == (thumb["width"], thumb["height"])
    print(f"{stack.name}: thumbnails ready {elapsed:.2f}s after complete")


async def test_corrupt_image_shows_failed_processing_with_a_reason(stack):
    client = await stack.client(gateway_job_backoff="0.05")
    user = await stack.user(client)
    whole = jpeg(800, 600)
    data = whole[: len(whole) // 3]  # the header parses, the pixels are cut off
    created = await upload_media(client, user["auth"], data, filename="cut.jpg")
    media = await processed(client, user["auth"], created["id"])
    assert media["processing"] == "failed" and "corrupt_image" in media["processing_error"]
    assert media["thumbnails"] == [] and (media["image_width"], media["image_height"]) == (800, 600)


async def test_deleting_media_removes_its_thumbnails(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg(300, 200)
    created = await upload_media(client, user["auth"], data, filename="small.jpg")
    media = await processed(client, user["auth"], created["id"])
    urls = [path_of(t["f"]) for t in media["thumbnails"]]
    keys = [t["key"] for t in (await client.app[DOCUMENTS].get("media", media["id"]))["thumbnails"]]
    assert len(urls) == len(keys) == 4
    assert [(await client.get(url)).status for url in urls] == [200] * 4
    assert (await client.delete(f"/api/v2/media/{media['id']}/", headers=user["auth"])).status == 204
    assert [(await client.get(url)).status for url in urls] == [404] * 4
    for key in keys:
        with pytest.raises(ObjectNotFound):
            await client.app[OBJECTS].stat(key)


async def test_metrics_expose_jobs_queue_depth_and_loop_lag(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg(200, 100)
    created = await upload_media(client, user["auth"], data, filename="m.jpg")
    await processed(client, user["auth"], created["id"])
    # the media says done as soon as the job's work is stored; the job's own outcome follows
    async with asyncio.timeout(10):
        while 'gateway_jobs_total{kind="thumbnails",outcome="done"} 1.0' not in (
                text := await (await client.get("/metrics")).text()):
            await asyncio.sleep(0.05)
    assert 'gateway_jobs_total{kind="probe",outcome="done"} 1.0' in text
    assert "gateway_job_queue_depth 0.0" in text and "gateway_event_loop_lag_seconds" in text


async def test_image_header_past_the_probe_head_is_still_measured(stack):
    """A JPEG whose frame header follows a 1.5 MiB ICC profile: the head is not enough.
    Complete used to read only 256 KiB and refuse it with type=image (400 not_an_image)."""
    client = await stack.client()
    user = await stack.user(client)
    out = io.BytesIO()
    Image.new("RGB", (321, 123), (200, 10, 10)).save(out, "JPEG", icc_profile=b"\0" * (1536 * 1024))
    data = out.getvalue()
    upload_id = await upload_chunks(client, user["auth"], data, chunk_size=1024 * 1024, filename="icc.jpg")
    reply = await complete(client, user["auth"], upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201, created
    assert (created["type"], created["image_width"], created["image_height"]) == ("image", 321, 123)
    media = await processed(client, user["auth"], created["id"])
    assert (media["image_width"], media["image_height"], media["size"]) == (321, 123, len(data))
    assert media["processing"] == "done" and [t["size"] for t in media["thumbnails"]] == [64, 128, 512, 1080]


async def test_exif_rotated_photo_reports_the_same_shown_size_at_complete_and_after(stack):
    """Issue 8 A11: a camera photo stored 300x200 with EXIF Orientation 6 (rotate 90
    degrees) is shown 200x300; complete's 201 used to say 300x200 and a later GET 200x300."""
    client = await stack.client()
    user = await stack.user(client)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 10, 10)).save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    upload_id = await upload_chunks(client, user["auth"], data, filename="portrait.jpg")
    reply = await complete(client, user["auth"], upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201, created
    assert (created["image_width"], created["image_height"]) == (200, 300)
    media = await processed(client, user["auth"], created["id"])
    assert media["processing"] == "done", media
    assert (media["image_width"], media["image_height"]) == (200, 300)
    assert (media["thumbnails"][-1]["width"], media["thumbnails"][-1]["height"]) == (200, 300)


async def test_image_over_pillows_bomb_limit_is_an_image_too_large_to_process(stack):
    """Issue 8 A9: 20000x20000 is over twice Image.MAX_IMAGE_PIXELS, where Pillow's own
    Image.open raises DecompressionBombError; complete called that 400 not_an_image.
    It is an image: stored and described (201, kind image, its size), and processing
    fails with too_many_pixels, like any image over GATEWAY_MAX_IMAGE_PIXELS."""
    client = await stack.client(gateway_job_backoff="0.05")
    user = await stack.user(client)
    data = bomb_png_bytes(20000, 20000)
    assert 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS
    upload_id = await upload_chunks(client, user["auth"], data, filename="huge-scan.png")
    reply = await complete(client, user["auth"], upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201, created
    assert (created["type"], created["image_width"], created["image_height"]) == ("image", 20000, 20000)
    media = await processed(client, user["auth"], created["id"])
    assert media["processing"] == "failed" and "too_many_pixels" in media["processing_error"], media
    stored = await client.app[DOCUMENTS].get("media", created["id"])
    assert (stored["kind"], stored["mime_type"]) == ("image", "image/png")
    assert (media["image_width"], media["image_height"]) == (20000, 20000) and media["thumbnails"] == []
