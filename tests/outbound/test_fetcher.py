"""The fetcher against real loopback servers, reachable only through the allow list."""
from __future__ import annotations

import asyncio
import gzip

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.outbound import FetchError, Fetcher


async def site() -> TestServer:
    async def page(request):
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def hop(request):
        left = int(request.match_info["n"])
        raise web.HTTPFound("/page" if left == 0 else f"/hop/{left - 1}")

    async def to(request):
        raise web.HTTPFound(request.query["url"])

    async def raw_to(request):  # the Location header exactly as given (HTTPFound would normalize it)
        return web.Response(status=302, headers={"Location": request.query["url"]})

    async def huge(request):
        if "length" in request.query:
            return web.Response(body=b"x" * 3000)
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 1000)
        return response

    async def bomb(request):
        return web.Response(body=gzip.compress(b"\0" * 1_000_000), headers={"Content-Encoding": "gzip"})

    async def slow(request):
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def missing(request):
        raise web.HTTPNotFound()

    app = web.Application()
    app.add_routes([web.get("/page", page), web.get("/hop/{n}", hop), web.get("/to", to), web.get("/raw-to", raw_to),
                    web.get("/huge", huge), web.get("/bomb", bomb), web.get("/slow", slow), web.get("/missing", missing)])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def server():
    started = await site()
    yield started
    await started.close()


@pytest.fixture
async def internal():
    """A loopback service the fetcher is NOT allowed to reach."""
    started = await site()
    yield started
    await started.close()


@pytest.fixture
async def fetcher(server):
    async with Fetcher(allow=frozenset({("127.0.0.1", server.port)}), timeout=2) as guarded:
        yield guarded


def url(server, path):
    return f"http://127.0.0.1:{server.port}{path}"


async def test_page_and_redirect_chain(fetcher, server):
    page = await fetcher.fetch(url(server, "/page"), max_bytes=1000)
    assert (page.status, page.content_type, page.body) == (200, "text/html", b"<html>hello</html>")
    followed = await fetcher.fetch(url(server, "/hop/2"), max_bytes=1000)
    assert followed.url.endswith("/page") and followed.body.startswith(b"<html>")


@pytest.mark.parametrize("path,code", [
    ("/hop/6", "too_many_redirects"),
    ("/to?url=http://169.254.169.254/latest/meta-data/", "blocked_address"),
    ("/to?url=http://127.0.0.1:1/", "blocked_address"),  # loopback, but not on the allow list
    ("/to?url=file:///etc/passwd", "invalid_url"),
    ("/huge", "too_large"),
    ("/huge?length=1", "too_large"),
    ("/bomb", "too_large"),
    ("/slow", "timeout"),
    ("/missing", "fetch_failed"),
])
async def test_refusals(fetcher, server, path, code):
    with pytest.raises(FetchError) as refused:
        await fetcher.fetch(url(server, path), max_bytes=2000, timeout=0.5 if path == "/slow" else None)
    assert refused.value.code == code


async def test_loopback_without_allow_is_blocked(server):
    async with Fetcher() as plain:
        with pytest.raises(FetchError) as refused:
            await plain.fetch(url(server, "/page"), max_bytes=1000)
    assert refused.value.code == "blocked_address"


async def test_localhost_name_is_checked_after_dns(server):
    async with Fetcher() as plain:
        with pytest.raises(FetchError) as refused:
            await plain.fetch(f"http://localhost:{server.port}/page", max_bytes=1000)
    assert refused.value.code == "blocked_address"


async def test_proxy_environment_is_ignored(fetcher, server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    assert (await fetcher.fetch(url(server, "/page"), max_bytes=1000)).status == 200


UNICODE_LOOPBACK = ["１２７.０.０.１", "127。0。0。1", "①②⑦.0.0.1"]


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_unicode_loopback_spellings_do_not_reach_an_internal_port(fetcher, internal, host):
    with pytest.raises(FetchError) as refused:
        await fetcher.fetch(f"http://{host}:{internal.port}/page", max_bytes=1000)
    assert refused.value.code == "blocked_address"


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_unicode_loopback_spellings_in_a_redirect_do_not_reach_an_internal_port(fetcher, server, internal,
                                                                                     host):
    with pytest.raises(FetchError) as refused:
        await fetcher.fetch(url(server, f"/raw-to?url=http://{host}:{internal.port}/page"), max_bytes=1000)
    assert refused.value.code == "blocked_address"


async def test_unicode_spelling_of_an_allowed_address_is_that_address(fetcher, server):
    page = await fetcher.fetch(f"http://１２７.０.０.１:{server.port}/page", max_bytes=1000)
    assert page.url == url(server, "/page") and page.body == b"<html>hello</html>"
