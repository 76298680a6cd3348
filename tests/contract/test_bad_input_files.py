"""Hostile input around files: long and bidi file names, link media seen through the
Files API, either trailing-slash form of a route, and upload byte metrics."""
from __future__ import annotations

import hashlib
from unicodedata import category

import pytest
from aiohttp import FormData

from gateway.keys import DOCUMENTS, USERS
from tests.chunking import path_of, upload_media
from tests.media_files import pdf_like

FILES = "/api/media/files/"
MEDIA = "/api/v2/media/"


pytestmark = pytest.mark.usefixtures("quiet_log")


@pytest.fixture
async def files(stack):
    client = await stack.client(gateway_workers="0")
    manager = await stack.user(client, staff=True)
    await client.app[USERS].grant(manager["name"], "files")
    return client, manager, await stack.user(client)


def file_form(data: bytes, filename: str) -> FormData:
    form = FormData(quote_fields=False)
    form.add_field("f", data, filename=filename, content_type="application/octet-stream")
    return form


NAMES = [
    ("漢" * 130 + ".pdf", "漢" * 65 + ".pdf"),  # 394 bytes of UTF-8: cut to 195 + ".pdf"
    ("😀" * 100 + ".pdf", "😀" * 49 + ".pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override would show "exe.pdf"
    ("\u2066a\u200fb\u200bc\u00ad.pdf", "abc.pdf"),
]


@pytest.mark.parametrize("filename,kept", NAMES, ids=["cjk", "emoji", "rlo", "isolates"])
async def test_long_and_bidi_file_names_are_cut_by_bytes(files, stack, filename, kept):
    client, manager, _ = files
    data = pdf_like()
    media = await upload_media(client, manager["auth"], data, "document", field="document", filename=filename)
    assert media["title"] == kept and len(kept.encode()) <= 200
    served = await client.get(path_of(media["url"]))
    assert served.status == 200 and hashlib.md5(await served.read()).hexdigest() == hashlib.md5(data).hexdigest()
    created = await client.post(FILES, data=file_form(data, filename), headers=manager["auth"])
    body = await created.json()  # a Files API name is a title of up to 255 characters: only cleaned
    assert created.status == 201 and body["name"] == "".join(c for c in filename if category(c) != "Cf"), body
    served = await client.get(path_of(body["f"]))
    assert served.status == 200 and hashlib.md5(await served.read()).hexdigest() == hashlib.md5(data).hexdigest()


async def test_link_and_embed_media_are_not_files(files):
    client, manager, owner = files
    embed = await (await client.post(MEDIA, json={"type": "embed", "embed_type": "t", "embed_id": "1"},
                                     headers=owner["auth"])).json()
    url = f"{FILES}{embed['id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "mine"}), ("PUT", {"name": "mine"}), ("DELETE", None)):
        reply = await client.request(method, url, json=body, headers=manager["auth"])
        assert (reply.status, (await reply.json())["code"]) == (404, "not_found"), method
    kept = await (await client.get(f"{MEDIA}{embed['id']}/", headers=owner["auth"])).json()
    assert kept["title"] == embed["title"] and kept["id"] == embed["id"]
    listed = await (await client.get(FILES, headers=manager["auth"])).json()
    assert listed["count"] == 0


async def test_routes_answer_with_or_without_a_trailing_slash(files):
    client, manager, _ = files
    created = await client.post(FILES, data=file_form(pdf_like(), "a.pdf"), headers=manager["auth"])
    file_id = (await created.json())["id"]
    for path in (f"{FILES}{file_id}/", f"{FILES}{file_id}", FILES.rstrip("/"), MEDIA.rstrip("/"),
                 f"{MEDIA}{file_id}", "/api/v2/status", "/health/live/"):
        reply = await client.get(path + "?limit=5", headers=manager["auth"])
        assert reply.status == 200, path
    status = await client.post("/api/v2/status", json={"action": "x", "categories": []}, headers=manager["auth"])
    assert status.status == 201, await status.json()  # not a redirect: the body arrives
    renamed = await client.patch(f"{FILES}{file_id}/", json={"name": "b.pdf"}, headers=manager["auth"])
    assert renamed.status == 200 and (await renamed.json())["name"] == "b.pdf"
    assert (await client.delete(f"{FILES}{file_id}/", headers=manager["auth"])).status == 204
    metrics = (await (await client.get("/metrics")).text())
    assert 'route="/api/v2/status/"' in metrics and "unmatched" not in metrics.split("gateway_requests_total")[-1]
    for path in ("/api/v2/nothing", "/api/v2/nothing/", "//", "/api/media/files/x/y"):
        missing = await client.get(path, headers=manager["auth"])
        assert missing.status == 404 and (await missing.json())["code"] == "not_found", path


async def test_metrics_count_files_api_upload_bytes(files):
    client, manager, _ = files
    data = pdf_like()
    assert (await client.post(FILES, data=file_form(data, "a.pdf"), headers=manager["auth"])).status == 201
    await upload_media(client, manager["auth"], b"x" * 1000, "document", field="document")
    metrics = await (await client.get("/metrics")).text()
    line = next(li for li in metrics.splitlines() if li.startswith("gateway_upload_bytes_received_total "))
    assert float(line.split()[1]) == len(data) + 1000
    assert await client.app[DOCUMENTS].count("media") == 2
