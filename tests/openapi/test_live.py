"""The fuzz run's gateway (tests/openapi/live.py) serves a real socket and cannot reach
beyond loopback: DNS lookups and connections to other addresses are refused unsent."""
from __future__ import annotations

import json
import urllib.request

from config.settings import load_settings
from gateway.keys import USERS
from tests.openapi.live import LiveGateway


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.status, json.loads(reply.read())


def test_links_to_the_outside_are_refused_before_any_packet(tmp_path):
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "0",
                                      "GATEWAY_FETCH_TIMEOUT": "5"})
    with LiveGateway(settings) as live:
        _, token = live.run(lambda app: app[USERS].add("outbound", admin=True))
        for url in ("http://example.com/page", "http://93.184.215.14/page"):
            status, media = post_json(f"{live.url}/api/v2/media/", {"type": "url", "url": url}, token)
            # The site looks unreachable: the media is kept and its preview left to a job.
            assert status == 201 and media["oembed_preview_ready"] is False, media
        refused = list(live.loop.refused)
    assert ("dns", "example.com") in refused
    assert ("connect", "93.184.215.14") in refused
