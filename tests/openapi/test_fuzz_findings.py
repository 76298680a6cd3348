"""Defects the schemathesis run (test_fuzz.py) found, pinned as plain regression tests."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS

BOUNDARY = "fuzzboundary"
# A form part whose header holds a control character: aiohttp's multipart parser raises
# InvalidHeader (an HttpProcessingError, not a ValueError) on it.
BAD_PART_HEADER = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="\x06x"\r\n\r\nvalue\r\n'
                   f'--{BOUNDARY}--\r\n').encode()


@pytest.fixture
async def admin(tmp_path):
    client = TestClient(TestServer(create_app(load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path)})),
                                   host="127.0.0.1"))
    await client.start_server()
    _, token = await client.app[USERS].add("fuzz-admin", admin=True)
    yield client, {"Authorization": f"Bearer {token}"}
    await client.close()


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/v2/category/"), ("PUT", "/api/v2/tag/1/"), ("POST", "/api/v2/media/"),
    ("PATCH", "/api/v2/media/1/"), ("POST", "/api/v2/media/upload/complete/")
])
async def test_a_form_with_a_malformed_part_header_is_a_400(admin, method, path):
    client, auth = admin
    reply = await client.request(method, path, data=BAD_PART_HEADER, headers={
        **auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    body = await reply.json()
    assert reply.status == 400, body
    assert body["code"] == "malformed_body"
