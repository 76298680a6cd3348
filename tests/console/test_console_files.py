"""The console's files: served from the package with a strict CSP; nothing else is reachable there."""
from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app


@pytest.fixture
async def client(tmp_path):
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "0",
                                      "GATEWAY_PUBLIC_URL": "https://media.example.org/base"})
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize("path, content_type", [
    ("/console/", "text/html"), ("/console", "text/html"), ("/console/app.js", "text/javascript"),
    ("/console/md5.js", "text/javascript"), ("/console/style.css", "text/css")])
async def test_console_files_carry_a_strict_policy(client, path, content_type):
    reply = await client.get(path)
    assert reply.status == 200 and reply.content_type == content_type
    policy = reply.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert "img-src 'self' blob: data: https://media.example.org;" in policy  # media links use the public URL
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_page_has_no_inline_script_or_style(client):
    page = await (await client.get("/console/")).text()
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers


@pytest.mark.parametrize("path, status", [
    ("/console/missing.js", 404), ("/console/..%2Fapp.py", 400),
    ("/console/.hidden.js", 400), ("/console/app.py", 400), ("/console/__init__.py", 400)])
async def test_nothing_but_console_files(client, path, status):
    reply = await client.get(path)
    assert reply.status == status and "code" in await reply.json()
