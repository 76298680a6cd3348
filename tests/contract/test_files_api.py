"""Files API (Django file-manager shape): every verb and every permission case."""
from __future__ import annotations

import hashlib

import pytest
from aiohttp import FormData

from gateway.api.files import human_readable_size
from gateway.keys import DOCUMENTS, USERS
from tests.chunking import path_of, processed
from tests.media_files import jpeg, pdf_like

FILES = "/api/media/files/"


def token(user: dict) -> dict:
    """The Files API's own scheme (Bearer works too)."""
    return {"Authorization": "Token " + user["auth"]["Authorization"].split(" ", 1)[1]}


def file_form(data: bytes, filename: str, **fields) -> FormData:
    form = FormData(quote_fields=False)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("f", data, filename=filename, content_type="application/octet-stream")
    return form


@pytest.fixture
async def files(stack):
    client = await stack.client()
    manager = await stack.user(client, staff=True)
    await client.app[USERS].grant(manager["name"], "files")
    return client, manager


async def test_upload_read_list_update_delete(files, stack):
    client, manager = files
    data = jpeg(1200, 800)
    created = await client.post(FILES, data=file_form(data, "beach.jpg", description="sunset", type="video",
                                                       size="1"), headers=token(manager))
    body = await created.json()
    assert created.status == 201, body
    assert (body["name"], body["description"], body["type"], body["size"]) == ("beach.jpg", "sunset", "image",
                                                                               len(data))
    assert body["user"] == {"id": manager["id"], "username": manager["name"], "full_name": ""}
    assert body["human_readable_size"] == human_readable_size(len(data))
    assert body["f"].startswith("http://") and body["processing"] == "pending"
    fetched = await client.get(path_of(body["f"]))
    assert hashlib.md5(await fetched.read()).hexdigest() == hashlib.md5(data).hexdigest()

    await processed(client, manager["auth"], body["id"])
    got = await (await client.get(f"{FILES}{body['id']}", headers=token(manager))).json()
    assert (got["width"], got["height"], got["mode"]) == (1200, 800, "RGB")
    assert [t["size"] for t in got["thumbnails"]] == [64, 128, 512, 1080]
    assert set(got["thumbnails"][0]) >= {"id", "f", "size"}

    doc = await client.post(FILES, data=file_form(pdf_like(), "report.pdf", name="Q3"), headers=token(manager))
    assert doc.status == 201 and (await doc.json())["type"] == "document"
    listed = await (await client.get(FILES + "?limit=1", headers=token(manager))).json()
    assert listed["count"] == 2 and len(listed["results"]) == 1 and listed["previous"] is None
    assert listed["results"][0]["name"] == "Q3" and "offset=1" in listed["next"]
    images = await (await client.get(FILES + "?type=image", headers=token(manager))).json()
    assert [f["id"] for f in images["results"]] == [body["id"]]
    assert (await client.get(FILES + "?type=bogus", headers=token(manager))).status == 400

    patched = await client.patch(f"{FILES}{body['id']}", json={"description": "dusk", "width": 1, "type": "x",
                                                               "size": 5, "mode": "L"}, headers=token(manager))
    after = await patched.json()
    assert patched.status == 200 and (after["name"], after["description"]) == ("beach.jpg", "dusk")
    assert (after["width"], after["type"], after["size"], after["mode"]) == (1200, "image", len(data), "RGB")
    assert after["updated_at"] >= got["updated_at"]
    put = await client.put(f"{FILES}{body['id']}", json={"name": "renamed.jpg", "f": body["f"]},
                           headers=token(manager))
    assert put.status == 200 and (await put.json())["name"] == "renamed.jpg"

    assert (await client.delete(f"{FILES}{body['id']}", headers=token(manager))).status == 204
    assert (await client.get(f"{FILES}{body['id']}", headers=token(manager))).status == 404
    assert (await client.get(path_of(body["f"]))).status == 404


async def test_bad_updates_and_uploads_change_nothing(files):
    client, manager = files
    created = await (await client.post(FILES, data=file_form(b"hello\n" * 100, "notes.txt"),
                                       headers=token(manager))).json()
    url = f"{FILES}{created['id']}"
    cases = [
        (client.put(url, json={"description": "x"}, headers=token(manager)), 400, "name"),
        (client.patch(url, json={"f": "http://elsewhere.example/other.bin"}, headers=token(manager)), 400, "f"),
        (client.patch(url, data=file_form(b"new bytes", "new.txt"), headers=token(manager)), 400, "f"),
        (client.patch(url, json={"name": ""}, headers=token(manager)), 400, "name"),
        (client.patch(url, data=b"{not json", headers={**token(manager), "Content-Type": "application/json"}),
         400, None),
        (client.patch(f"{FILES}abc", json={}, headers=token(manager)), 400, None),
        (client.patch(f"{FILES}999999", json={}, headers=token(manager)), 404, None),
    ]
    for request, status, field in cases:
        reply = await request
        body = await reply.json()
        assert reply.status == status, body
        if field:
            assert field in body
    unchanged = await (await client.get(url, headers=token(manager))).json()
    assert (unchanged["name"], unchanged["description"]) == ("notes.txt", "")
    no_file = await client.post(FILES, data=FormData({"name": "x"}, default_to_multipart=True),
                                headers=token(manager))
    assert no_file.status == 400 and "f" in await no_file.json()
    empty = await client.post(FILES, data=file_form(b"", "empty.txt"), headers=token(manager))
    assert empty.status == 400 and (await empty.json())["code"] == "empty_file"
    listed = await (await client.get(FILES, headers=token(manager))).json()
    assert listed["count"] == 1


async def test_permissions(files, stack):
    client, manager = files
    created = await (await client.post(FILES, data=file_form(b"data" * 10, "a.bin"), headers=token(manager))).json()
    url = f"{FILES}{created['id']}"
    admin = await stack.user(client, admin=True)
    plain = await stack.user(client)
    staff_only = await stack.user(client, staff=True)
    for who, status in ((None, 401), (plain, 403), (staff_only, 403), (manager, 200), (admin, 200)):
        headers = token(who) if who else {}
        assert (await client.get(FILES, headers=headers)).status == status
        assert (await client.get(url, headers=headers)).status == status
        patched = await client.patch(url, json={"description": "by someone"}, headers=headers)
        assert patched.status == status
    bearer = await client.get(url, headers=manager["auth"])
    assert bearer.status == 200
    wrong = await client.get(url, headers={"Authorization": "Token not-a-real-token"})
    assert wrong.status == 401
    for who in (plain, staff_only):
        assert (await client.delete(url, headers=token(who))).status == 403
        assert (await client.post(FILES, data=file_form(b"x", "x.bin"), headers=token(who))).status == 403
    assert (await client.delete(url, headers=token(admin))).status == 204


def test_human_readable_size():
    assert [human_readable_size(n) for n in (0, 1023, 1413, 5 * 1024 * 1024, 3 * 1024 ** 3)] == [
        "0.00 B", "1023.00 B", "1.38 KB", "5.00 MB", "3.00 GB"]


async def test_file_over_the_size_limit_is_413_and_stores_nothing(stack):
    client = await stack.client(gateway_max_upload_size="1000")
    manager = await stack.user(client, admin=True)
    reply = await client.post(FILES, data=file_form(b"x" * 5000, "big.bin"), headers=token(manager))
    assert reply.status == 413 and (await reply.json())["code"] == "upload_too_large"
    assert (await (await client.get(FILES, headers=token(manager))).json())["count"] == 0
    assert await client.app[DOCUMENTS].count("uploads") == 0
