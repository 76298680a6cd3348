"""Images get the attributes DatoCMS shows (blurhash, thumbhash, colours, safe EXIF)
from the ``attributes`` job, and files whose bytes never streamed through the
gateway get their md5 from the ``probe`` job, on every backend."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import uuid

import blurhash
import thash
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

from gateway.core import clock
from gateway.core.media_model import Media
from gateway.core.processing import ATTRIBUTES, PROBE
from gateway.keys import JOBS, MEDIA, OBJECTS, PROCESSING

from tests.chunking import complete, processed, upload_chunks, upload_media
from tests.media_files import jpeg, pdf_like

RED, BLUE = (200, 30, 30), (20, 40, 220)


def photo(width: int = 600, height: int = 400, orientation: int = 6) -> bytes:
    """Red with a blue right quarter, as a phone stores it: EXIF camera, orientation, GPS."""
    img = Image.new("RGB", (width, height), RED)
    ImageDraw.Draw(img).rectangle((width * 3 // 4, 0, width - 1, height - 1), fill=BLUE)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Apple", "iPhone 15 Pro", orientation
    exif.get_ifd(0x8769).update({0x8827: 64, 0x829A: IFDRational(1, 120)})
    exif.get_ifd(0x8825).update({1: "N", 2: (IFDRational(45, 1), IFDRational(27, 1), IFDRational(0, 1))})
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def close_to(actual, expected, tolerance: int = 30) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


async def stored(client, media_id: int) -> Media:
    return await client.app[MEDIA].store.get(media_id)


async def failed_with(client, media_id: int, kind: str, timeout: float = 20.0) -> Media:
    """The media once ``kind`` has failed on it (it shows failed as soon as any one job fails)."""
    async with asyncio.timeout(timeout):
        while kind not in (media := await stored(client, media_id)).job_errors:
            await asyncio.sleep(0.05)
    return media


async def test_uploaded_photo_goes_pending_to_done_with_its_derived_attributes(stack):
    client = await stack.client()
    user = await stack.user(client)
    data = photo()
    upload_id = await upload_chunks(client, user["auth"], data, filename="IMG_0001.jpg")
    reply = await complete(client, user["auth"], upload_id, data, "image")
    created = await reply.json()
    assert reply.status == 201 and created["processing"] == "pending", created

    shown = await processed(client, user["auth"], created["id"])

    assert shown["processing"] == "done", shown
    assert shown["md5"] == hashlib.md5(data).hexdigest()  # the client's md5 stays
    media = await stored(client, created["id"])
    assert media.owed == () and not media.job_errors
    assert (media.image_width, media.image_height) == (400, 600)
    assert media.exif == {"make": "Apple", "model": "iPhone 15 Pro", "orientation": 6, "iso": 64,
                          "exposure_time": 0.00833333, "width": 400, "height": 600}
    assert "gps" not in json.dumps(media.to_doc()["exif"]).lower()
    assert close_to((media.colors[0]["red"], media.colors[0]["green"], media.colors[0]["blue"]), RED)
    top = blurhash.decode(media.blurhash, 30, 40)[2][15]  # shown upright: the blue quarter is at the bottom
    bottom = blurhash.decode(media.blurhash, 30, 40)[38][15]
    assert top[0] > top[2] + 80 and bottom[2] > bottom[0] + 40, (top, bottom)
    raw = list(base64.b64decode(media.thumbhash, validate=True))
    assert thash.thumb_hash_to_approximate_aspect_ratio(raw) < 1
    job = await client.app[JOBS].get(f"{ATTRIBUTES.name}:{media.id}")
    assert job["status"] == "done" and job["payload"] == {"key": media.key}


async def test_file_put_straight_into_the_store_gets_its_md5_from_the_probe(stack):
    """A presigned PUT leaves a media with no md5 (and here no size): the probe reads
    the object once, hashes it off the loop, and settles both with the probe results."""
    client = await stack.client()
    user = await stack.user(client)
    data = jpeg(640, 480, pad_to=3 * 1024 * 1024 + 123)  # several hash batches
    key = f"dato/{user['id']}/{uuid.uuid4().hex}/direct.jpg"
    await client.app[OBJECTS].put(key, data, "image/jpeg")
    store = client.app[MEDIA].store
    now = clock.now()
    media = await store.insert(Media(id=await store.new_id(), user_id=user["id"], hash_code=uuid.uuid4().hex,
                                     type="image", added_at=now, updated_at=now, title="direct.jpg", key=key,
                                     md5=None).owing(PROBE.name))
    await client.app[PROCESSING].start(media, PROBE)

    shown = await processed(client, user["auth"], media.id)

    assert shown["processing"] == "done", shown
    assert shown["md5"] == hashlib.md5(data).hexdigest() and shown["size"] == len(data)
    assert (shown["image_width"], shown["image_height"]) == (640, 480)
    done = await stored(client, media.id)
    assert done.blurhash and done.thumbhash and done.colors and done.exif == {"width": 640, "height": 480}


async def test_png_with_alpha_gets_colours_of_what_is_visible(stack):
    client = await stack.client()
    user = await stack.user(client)
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    img.paste((*BLUE, 255), (0, 0, 100, 100))
    out = io.BytesIO()
    img.save(out, "PNG")
    created = await upload_media(client, user["auth"], out.getvalue(), filename="logo.png")
    assert (await processed(client, user["auth"], created["id"]))["processing"] == "done"
    media = await stored(client, created["id"])
    assert [(c["red"], c["green"], c["blue"]) for c in media.colors] == [BLUE]
    assert thash.thumb_hash_to_average_rgba(list(base64.b64decode(media.thumbhash)))[3] < 1


async def test_document_never_owes_attributes(stack):
    client = await stack.client()
    user = await stack.user(client)
    created = await upload_media(client, user["auth"], pdf_like(), "document", filename="paper.pdf")
    assert (await processed(client, user["auth"], created["id"]))["processing"] == "done"
    media = await stored(client, created["id"])
    assert (media.blurhash, media.thumbhash, media.colors, media.exif) == (None, None, (), {})
    assert await client.app[JOBS].get(f"{ATTRIBUTES.name}:{media.id}") is None


async def test_corrupt_image_fails_the_attributes_job_at_once(stack):
    client = await stack.client(gateway_job_backoff="0.05")
    user = await stack.user(client)
    whole = jpeg(800, 600)
    created = await upload_media(client, user["auth"], whole[: len(whole) // 3], filename="cut.jpg")
    media = await failed_with(client, created["id"], ATTRIBUTES.name)
    assert "corrupt_image" in media.job_errors[ATTRIBUTES.name] and media.blurhash is None
    job = await client.app[JOBS].get(f"{ATTRIBUTES.name}:{media.id}")
    assert job["status"] == "failed" and job["attempts"] == 1  # permanent: never retried
    shown = await processed(client, user["auth"], created["id"])
    assert shown["processing"] == "failed" and "corrupt_image" in shown["processing_error"]
