"""Every reply names its request: the client's X-Request-ID, or one the gateway makes up."""
from __future__ import annotations

import os
import re

from config.settings import load_settings
from gateway.app import create_app
from gateway.middlewares import _RequestIds


async def test_each_request_gets_its_own_id_unless_the_client_sent_one(aiohttp_client, tmp_path):
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "0"})
    client = await aiohttp_client(create_app(settings))
    ids = [(await client.get("/health/live")).headers["X-Request-ID"] for _ in range(50)]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)
    echoed = await client.get("/health/live", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["X-Request-ID"] == "trace-42"
    refused = await client.post("/api/v2/media/upload/chunk/")  # an error reply names its request too
    assert refused.status == 401 and re.fullmatch(r"[0-9a-f]{32}", refused.headers["X-Request-ID"])


def test_a_forked_process_draws_its_own_prefix():
    ids = _RequestIds()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writer, ids.next().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(reader, 64).decode()[:16] != ids.next()[:16]
