"""Link, Vimeo and embed media, and preview images, against a local web site.

The site runs on loopback and is reachable only because the gateway is told so
through GATEWAY_FETCH_ALLOW; nothing here leaves the machine.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import io
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from gateway.keys import DOCUMENTS, OBJECTS
from tests.chunking import processed
from storage.errors import ObjectNotFound
from tests.media_files import jpeg

MEDIA = "/api/v2/media/"


@functools.cache
def bomb_png() -> bytes:
    """20000x20000 pixels in about 50 KB (made once: it takes a moment)."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


class Site:
    """Pages with OpenGraph and oEmbed, a fake Vimeo oEmbed endpoint, images, traps."""

    def __init__(self) -> None:
        self.slow_left = 1
        self.release = asyncio.Event()  # lets /held answer
        app = web.Application()
        app.add_routes([
            web.get("/article", self.article), web.get("/oembed", self.oembed), web.get("/vimeo", self.vimeo),
            web.get("/img/{name}", self.image), web.get("/slow-once", self.slow_once),
            web.get("/to-metadata", self.to_metadata), web.get("/plain", self.plain), web.get("/raw-to", self.raw_to),
            web.get("/og-flood", self.og_flood), web.get("/deep-oembed", self.deep_oembed),
            web.get("/deep-oembed.json", self.deep_oembed_json), web.get("/slow-then-blocked", self.slow_then_blocked),
            web.get("/held", self.held), web.get("/koi8", self.koi8),
        ])
        self.server = TestServer(app, host="127.0.0.1")
        internal = web.Application()  # a loopback service the gateway is NOT allowed to reach
        internal.add_routes([web.get("/{tail:.*}", self.secret)])
        self.internal = TestServer(internal, host="127.0.0.1")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def article(self, request):
        return web.Response(content_type="text/html", text="""<html><head>
            <title>Fallback title</title>
            <meta property="og:title" content="Launch day">
            <meta property="og:description" content="We shipped it.">
            <meta name="keywords" content="launch, rockets">
            <meta property="og:image" content="/img/og.jpg">
            <meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">
            <meta name="twitter:image" content="http://169.254.169.254/latest/meta-data/x.png">
            <link rel="alternate" type="application/json+oembed" href="/oembed?url=x">
            </head><body><img src="/img/inline.jpg" width="640" height="480"><img src="/img/icon.png" width="16"
            height="16"><script>document.write('x')</script></body></html>""")

    async def oembed(self, request):
        return web.json_response({
            "type": "rich", "version": "1.0", "width": 480, "height": 270, "title": "Launch",
            "html": '<iframe src="https://127.0.0.1/embed/1" width="480" onload="steal()"></iframe>'
                    '<script src="https://evil.example/x.js"></script>',
            "thumbnail_url": f"{self.base}/img/thumb.jpg"})

    async def vimeo(self, request):
        assert request.query["url"].startswith("https://vimeo.com/")
        return web.json_response({
            "type": "video", "title": "A Vimeo film", "description": "Shot on film", "width": 640, "height": 360,
            "duration": 62, "thumbnail_url": f"{self.base}/img/vthumb.jpg",
            "html": '<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" width="640" height="360" '
                    'frameborder="0" allow="autoplay; fullscreen" allowfullscreen title="A Vimeo film" '
                    'onload="alert(1)"></iframe>'})

    async def image(self, request):
        name = request.match_info["name"]
        if name == "bomb.png":
            return web.Response(body=bomb_png(), content_type="image/png")
        return web.Response(body=jpeg(300, 200), content_type="image/jpeg")

    async def slow_once(self, request):
        if self.slow_left:
            self.slow_left -= 1
            await asyncio.sleep(2)
        return web.Response(content_type="text/html", text='<meta property="og:title" content="Worth the wait">')

    async def to_metadata(self, request):
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def plain(self, request):
        return web.Response(text="just text")

    async def raw_to(self, request):  # the Location exactly as given (HTTPFound would normalize it)
        return web.Response(status=302, headers={"Location": request.query["url"]})

    async def og_flood(self, request):  # 60 000 og:image tags, 3.9 MB
        tags = "".join(f'<meta property="og:image" content="/img/{n}.jpg">\n' for n in range(60_000))
        return web.Response(content_type="text/html", text=f"<html><head><title>Flood</title>{tags}</head></html>")

    async def deep_oembed(self, request):
        return web.Response(content_type="text/html", text='<title>Deep</title><link rel="alternate" '
                            'type="application/json+oembed" href="/deep-oembed.json">')

    async def deep_oembed_json(self, request):
        return web.Response(content_type="application/json", text="[" * 100_000)

    async def slow_then_blocked(self, request):  # too slow for the request, then refused for the job
        if self.slow_left:
            self.slow_left -= 1
            await asyncio.sleep(2)
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def koi8(self, request):  # the charset is only in the HTTP header, as many servers send it
        return web.Response(body="<title>Привет мир</title>".encode("koi8-r"),
                            headers={"Content-Type": "text/html; charset=koi8-r"})

    async def held(self, request):  # answers once the test lets it: the preview stays owed until then
        async with asyncio.timeout(20):
            await self.release.wait()
        return web.Response(content_type="text/html", text='<meta property="og:title" content="Held back">')

    async def secret(self, request):
        if request.path.endswith(".jpg"):
            return web.Response(body=jpeg(300, 200), content_type="image/jpeg")
        return web.Response(content_type="text/html", text='<meta property="og:title" content="internal secret">')


@pytest.fixture
async def site():
    await asyncio.get_running_loop().run_in_executor(None, bomb_png)
    created = Site()
    await created.server.start_server()
    await created.internal.start_server()
    yield created
    await created.internal.close()
    await created.server.close()


@pytest.fixture
async def linked(stack, site):
    port = site.server.port
    client = await stack.client(gateway_fetch_allow=f"127.0.0.1:{port}", gateway_fetch_timeout="1",
                                gateway_vimeo_oembed_url=f"{site.base}/vimeo", gateway_job_backoff="0.1")
    return client, await stack.user(client), await stack.user(client), site


async def test_url_media_gets_a_safe_preview(linked):
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/article"}, headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201, media
    assert (media["title"], media["description"], media["keywords"]) == ("Launch day", "We shipped it.",
                                                                          "launch, rockets")
    assert media["image"] == f"{site.base}/img/og.jpg" and (media["image_width"], media["image_height"]) == (1200, 630)
    assert media["choice_images"] == [f"{site.base}/img/og.jpg", f"{site.base}/img/inline.jpg",
                                      f"{site.base}/img/thumb.jpg"]  # the blocked twitter image and the icon left out
    assert media["oembed_preview_ready"] is True and media["oembed_available"] is True
    assert media["oembed_html"] == '<iframe src="https://127.0.0.1/embed/1" width="480"></iframe>'
    got = await (await client.get(f"{MEDIA}{media['id']}/", headers=user["auth"])).json()
    assert got["title"] == "Launch day"


async def test_vimeo_media_uses_the_provider_endpoint_and_keeps_only_the_player(linked):
    client, user, _, site = linked
    reply = await client.post(MEDIA, data={"type": "vimeo", "url": "https://vimeo.com/76979871"},
                              headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201, media
    assert (media["title"], media["oembed_type"], media["oembed_duration"]) == ("A Vimeo film", "video", 62)
    assert (media["oembed_width"], media["oembed_height"]) == (640, 360)
    assert media["oembed_html"] == ('<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" '
                                    'width="640" height="360" frameborder="0" allow="autoplay; fullscreen" '
                                    'allowfullscreen title="A Vimeo film"></iframe>')
    assert media["image"] == f"{site.base}/img/vthumb.jpg"
    not_vimeo = await client.post(MEDIA, json={"type": "vimeo", "url": f"{site.base}/article"}, headers=user["auth"])
    assert not_vimeo.status == 400 and "url" in await not_vimeo.json()


async def test_slow_site_replies_at_once_and_a_job_finishes_the_preview(linked):
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/slow-once"}, headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201 and media["oembed_preview_ready"] is False
    assert media["processing"] == "pending"  # the preview job is still owed
    listed = await (await client.get(MEDIA, headers=user["auth"])).json()
    assert [m["processing"] for m in listed["results"]] == ["pending"]
    media = await processed(client, user["auth"], media["id"], timeout=15)
    assert (media["processing"], media["processing_error"]) == ("done", None)
    assert media["oembed_preview_ready"] is True and media["title"] == "Worth the wait"


async def test_a_preview_job_that_gives_up_marks_the_media_failed(linked):
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/slow-then-blocked"},
                              headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201 and media["processing"] == "pending"
    media = await processed(client, user["auth"], media["id"], timeout=15)
    assert media["processing"] == "failed" and media["oembed_preview_ready"] is False
    assert media["processing_error"].startswith("link_preview: blocked_address"), media


async def test_deeply_nested_oembed_is_no_oembed(linked):
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/deep-oembed"}, headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201, media
    assert (media["title"], media["oembed_available"], media["oembed_preview_ready"]) == ("Deep", False, True)
    assert media["processing"] == "done"


async def test_embed_metadata_nested_too_deep_is_a_400(linked):
    client, user, *_ = linked
    reply = await client.post(MEDIA, json={"type": "embed", "embed_type": "t", "embed_id": "1",
                                           "metadata": "[" * 100_000}, headers=user["auth"])
    assert reply.status == 400 and "metadata" in await reply.json()
    assert (await (await client.get(MEDIA, headers=user["auth"])).json())["count"] == 0


async def _worst_lag(stop: asyncio.Event, period: float = 0.05) -> float:
    """The longest the event loop was late waking a task that sleeps ``period`` at a time."""
    loop, worst = asyncio.get_running_loop(), 0.0
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(period)
        worst = max(worst, loop.time() - started - period)
    return worst


async def test_a_page_with_60000_images_neither_freezes_the_loop_nor_floods_the_choices(linked):
    client, user, _, site = linked
    # The test process, not the gateway, holds millions of objects by now (earlier tests'
    # botocore models): a full collection of them, which parsing 60 000 tags can trigger,
    # stops every thread for 5-7 s. Frozen, they are not scanned; what the gateway itself
    # allocates still is.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    lag = asyncio.create_task(_worst_lag(stop))
    try:
        reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/og-flood"}, headers=user["auth"])
        assert reply.status == 201
        media = await processed(client, user["auth"], (await reply.json())["id"], timeout=30)
    finally:
        stop.set()
        gc.unfreeze()
    assert await lag < 1.0
    assert media["processing"] == "done" and media["title"] == "Flood"
    assert 0 < len(media["choice_images"]) <= 100 and media["image"] == f"{site.base}/img/0.jpg"


@pytest.mark.parametrize("url,code", [
    ("http://127.0.0.1:1/", "blocked_address"),
    ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
    ("http://[::ffff:127.0.0.1]/", "blocked_address"),
    ("http://2130706433/", "blocked_address"),
    ("file:///etc/passwd", "invalid_url"),
    ("gopher://example.com/", "invalid_url"),
    ("not a url", "invalid_url"),
    ("{site}/to-metadata", "blocked_address"),
])
async def test_bad_or_blocked_urls_are_400_and_store_nothing(linked, url, code):
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": url.format(site=site.base)}, headers=user["auth"])
    body = await reply.json()
    assert reply.status == 400 and body["code"] == code, body
    assert (await (await client.get(MEDIA, headers=user["auth"])).json())["count"] == 0


async def test_embed_media_needs_type_and_id_and_fetches_nothing(linked):
    client, user, *_ = linked
    for body, missing in (({"type": "embed", "embed_id": "42"}, "embed_type"),
                          ({"type": "embed", "embed_type": "sc_event"}, "embed_id")):
        reply = await client.post(MEDIA, json=body, headers=user["auth"])
        assert reply.status == 400 and missing in await reply.json()
    reply = await client.post(MEDIA, json={"type": "embed", "embed_type": "sc_event", "embed_id": "42",
                                           "url": "https://example.com/e/42", "metadata": {"a": 1}},
                              headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201
    assert media["embed"] == {"id": media["embed"]["id"], "embed_type": "sc_event", "embed_id": "42",
                              "url": "https://example.com/e/42", "metadata": {"a": 1}}
    assert (media["embed_type"], media["embed_id"], media["type"]) == ("sc_event", "42", "embed")
    assert (await client.post(MEDIA, json={"type": "bogus"}, headers=user["auth"])).status == 400
    assert (await client.post(MEDIA, json={"type": "url"}, headers=user["auth"])).status == 400


async def test_preview_image_is_fetched_checked_and_copied(linked):
    client, user, other, site = linked
    media = await (await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/article"},
                                     headers=user["auth"])).json()
    url = f"{MEDIA}{media['id']}/"
    chosen = await client.put(url, json={"image": media["choice_images"][1]}, headers=user["auth"])
    body = await chosen.json()
    assert chosen.status == 200, body
    assert body["image_source"] == media["choice_images"][1]
    assert (body["image_width"], body["image_height"]) == (300, 200)
    copy = await client.get("/" + body["image"].split("://", 1)[1].split("/", 1)[1])
    assert copy.status == 200 and copy.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(await copy.read())) as img:
        assert img.size == (300, 200)
    body = await processed(client, user["auth"], media["id"])  # the copy gets thumbnails like any image
    assert body["processing"] == "done", body
    assert [(t["size"], max(t["width"], t["height"])) for t in body["thumbnails"]] == [
        (64, 64), (128, 128), (512, 300), (1080, 300)]
    arbitrary = await client.patch(url, json={"image": f"{site.base}/img/any.jpg"}, headers=user["auth"])
    assert arbitrary.status == 200

    for image, code in ((f"{site.base}/plain", "not_an_image"), (f"{site.base}/img/bomb.png", "too_many_pixels"),
                        ("http://169.254.169.254/latest/meta-data/x.png", "blocked_address")):
        refused = await client.put(url, json={"image": image}, headers=user["auth"])
        assert refused.status == 400 and (await refused.json())["code"] == code
    assert (await client.put(url, json={"image": f"{site.base}/img/x.jpg"}, headers=other["auth"])).status == 403
    after = await (await client.get(url, headers=user["auth"])).json()
    assert after["image_source"] == f"{site.base}/img/any.jpg"


async def test_a_page_is_read_in_the_charset_its_server_names(linked):
    """The HTTP charset never reached parse_page, so a KOI8-R page's title came out as mojibake."""
    client, user, _, site = linked
    reply = await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/koi8"}, headers=user["auth"])
    media = await reply.json()
    assert reply.status == 201 and media["title"] == "Привет мир", media


async def test_thumbnails_of_a_chosen_image_do_not_finish_a_link_whose_preview_is_owed(linked):
    """The owner sets a preview image while the link_preview job is still owed: its
    thumbnails job used to write processing "done" before the preview came in."""
    client, user, _, site = linked
    media = await (await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/held"},
                                     headers=user["auth"])).json()
    assert media["processing"] == "pending"
    url = f"{MEDIA}{media['id']}/"
    chosen = await client.put(url, json={"image": f"{site.base}/img/a.jpg"}, headers=user["auth"])
    assert chosen.status == 200, await chosen.text()
    async with asyncio.timeout(15):
        while not (media := await (await client.get(url, headers=user["auth"])).json())["thumbnails"]:
            await asyncio.sleep(0.05)
    assert (media["processing"], media["oembed_preview_ready"]) == ("pending", False), media
    site.release.set()
    media = await processed(client, user["auth"], media["id"])
    assert (media["processing"], media["processing_error"], media["title"]) == ("done", None, "Held back")
    assert media["image_source"] == f"{site.base}/img/a.jpg" and len(media["thumbnails"]) == 4


async def test_preview_image_only_for_links(linked, stack):
    client, user, _, site = linked
    embed = await (await client.post(MEDIA, json={"type": "embed", "embed_type": "t", "embed_id": "1"},
                                     headers=user["auth"])).json()
    reply = await client.put(f"{MEDIA}{embed['id']}/", json={"image": f"{site.base}/img/a.jpg"},
                             headers=user["auth"])
    assert reply.status == 400 and (await reply.json())["code"] == "not_a_link"


async def test_deleting_link_media_removes_the_copy(linked):
    client, user, _, site = linked
    media = await (await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/article"},
                                     headers=user["auth"])).json()
    body = await (await client.put(f"{MEDIA}{media['id']}/", json={"image": f"{site.base}/img/a.jpg"},
                                   headers=user["auth"])).json()
    copy_path = "/" + body["image"].split("://", 1)[1].split("/", 1)[1]
    copy_key = (await client.app[DOCUMENTS].get("media", media["id"]))["image_copy_key"]
    assert (await client.get(copy_path)).status == 200
    assert (await client.delete(f"{MEDIA}{media['id']}/", headers=user["auth"])).status == 204
    assert (await client.get(copy_path)).status == 404
    with pytest.raises(ObjectNotFound):
        await client.app[OBJECTS].stat(copy_key)
    listed = await (await client.get(MEDIA, headers=user["auth"])).json()
    assert listed["count"] == 0


UNICODE_LOOPBACK = ["１２７.０.０.１", "127。0。0。1", "①②⑦.0.0.1"]


def _spelled(host: str, port: int, path: str = "/") -> str:
    return f"http://{host}:{port}{path}"


async def _refused(reply) -> dict:
    body = await reply.json()
    assert reply.status == 400 and body["code"] == "blocked_address", body
    assert "secret" not in str(body)
    return body


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_unicode_loopback_url_is_refused(linked, host):
    client, user, _, site = linked
    for url in (_spelled(host, site.internal.port), f"{site.base}/raw-to?url={_spelled(host, site.internal.port)}"):
        await _refused(await client.post(MEDIA, json={"type": "url", "url": url}, headers=user["auth"]))
    assert (await (await client.get(MEDIA, headers=user["auth"])).json())["count"] == 0


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_unicode_loopback_preview_image_is_refused(linked, host):
    client, user, _, site = linked
    media = await (await client.post(MEDIA, json={"type": "url", "url": f"{site.base}/article"},
                                     headers=user["auth"])).json()
    image = _spelled(host, site.internal.port, "/img/secret.jpg")
    for url in (image, f"{site.base}/raw-to?url={image}"):
        await _refused(await client.put(f"{MEDIA}{media['id']}/", json={"image": url}, headers=user["auth"]))
    after = await (await client.get(f"{MEDIA}{media['id']}/", headers=user["auth"])).json()
    assert after["image_source"] is None and after["image"] == f"{site.base}/img/og.jpg"


async def test_a_blocked_host_answers_the_same_whether_its_port_is_open_closed_or_silent(linked):
    client, user, _, site = linked
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        answers = []
        for port in (site.internal.port, closed.getsockname()[1], silent.getsockname()[1]):
            for url in (_spelled("１２７.０.０.１", port), _spelled("127.0.0.1", port)):
                reply = await client.post(MEDIA, json={"type": "url", "url": url}, headers=user["auth"])
                answers.append((reply.status, await _refused(reply)))
    finally:
        silent.close()
        closed.close()
    assert all(answer == answers[0] for answer in answers), answers
