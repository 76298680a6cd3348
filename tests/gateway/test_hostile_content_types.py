"""Content-Type headers that aiohttp's ``email``-based parser raises IndexError on, sent to
every handler that reads a body: each answers a JSON 4xx (tus creation may ignore a body that is
not ``application/offset+octet-stream`` and create the upload), never a 500 (see api.common.media_type)."""
from __future__ import annotations

import pytest

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS

HOSTILE = ["multipart/form-data;b*", "application/x-www-form-urlencoded;b*", "application/json;b*",
           "application/offset+octet-stream;b*", "Multipart/Form-Data ; \t é*", "b*"]
ROUTES = [("POST", "/api/v2/media/upload/complete/", {}), ("POST", "/api/media/files/", {}),
          ("POST", "/api/v2/status/", {}), ("PATCH", "/api/v2/media/1/", {}),
          ("POST", "/files/", {"Tus-Resumable": "1.0.0", "Upload-Length": "3"}),
          ("POST", "/dato/uploads", {}), ("POST", "/dato/upload-requests", {})]


@pytest.fixture
async def gateway(aiohttp_client, tmp_path):
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "0"})
    client = await aiohttp_client(create_app(settings))
    _, token = await client.app[USERS].add("hostile", admin=True, staff=True)
    return client, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("content_type", HOSTILE)
async def test_no_body_reading_handler_fails_on_a_hostile_content_type(gateway, quiet_log, content_type):
    client, auth = gateway
    for method, path, extra in ROUTES:
        reply = await client.request(method, path, data=b"x=1&y=2", headers={**auth, **extra,
                                                                              "Content-Type": content_type})
        assert reply.status < 500, (method, path, reply.status, await reply.text())
        if path != "/files/":
            assert reply.status >= 400 and "application/json" in reply.headers["Content-Type"], (method, path)
