"""Statuses: create, list, update, delete; validation; sanitizing; mentions; media deletion."""
from __future__ import annotations

import pytest

from tests.chunking import upload_media
from tests.media_files import png

STATUS = "/api/v2/status/"


@pytest.fixture
async def world(stack):
    client = await stack.client(gateway_workers="0")
    staff = await stack.user(client, staff=True)
    author = await stack.user(client, name="alice")
    other = await stack.user(client, name="bob")
    category = await (await client.post("/api/v2/category/", json={"name": "News"}, headers=staff["auth"])).json()
    tag = await (await client.post("/api/v2/tag/", json={"name": "launch"}, headers=staff["auth"])).json()
    return client, author, other, category, tag


async def new_media(client, user) -> int:
    data = png(40, 20)
    return (await upload_media(client, user["auth"], data, filename="pic.png"))["id"]


async def test_status_lifecycle(world):
    client, author, other, category, tag = world
    first, second = await new_media(client, author), await new_media(client, author)
    body = {"action": "postOnly", "text": "<p>Hello @bob and @nobody</p>", "categories": [category["id"]],
            "medias": [second, first], "location": {"location": "Rome", "lat": 41.9, "lng": 12.5},
            "addressing": [tag["id"]]}
    created = await client.post(STATUS, json=body, headers=author["auth"])
    status = await created.json()
    assert created.status == 201, status
    assert [m["id"] for m in status["medias"]] == [second, first]  # the given order
    assert status["categories"][0]["slug"] == "news" and status["addressing"][0]["name"] == "launch"
    assert status["location"] == {"location": "Rome", "lat": 41.9, "lng": 12.5}
    assert status["author"]["username"] == "alice" and status["last_edited_at"] is None
    assert 'class="mention" data-username="bob"' in status["html"] and "@nobody" in status["html"]
    assert 'data-username="nobody"' not in status["html"]
    assert status["summary"] == "Hello @bob and @nobody"

    listed = await (await client.get(STATUS, headers=other["auth"])).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == status["id"]
    url = f"{STATUS}{status['id']}/"
    patched = await (await client.patch(url, json={"text": "edited"}, headers=author["auth"])).json()
    assert patched["text"] == "edited" and patched["last_edited_at"] and len(patched["medias"]) == 2
    assert (await client.put(url, json={"text": "no action"}, headers=author["auth"])).status == 400
    put = await client.put(url, json={"action": "postOnly", "categories": []}, headers=author["auth"])
    assert put.status == 200 and (await put.json())["categories"] == []

    assert (await client.patch(url, json={"text": "mine now"}, headers=other["auth"])).status == 403
    assert (await client.delete(url, headers=other["auth"])).status == 403
    assert (await client.delete(url, headers=author["auth"])).status == 204
    assert (await client.get(url, headers=author["auth"])).status == 404


async def test_deleting_a_media_takes_it_out_of_statuses(world):
    client, author, other, category, tag = world
    keep, gone = await new_media(client, author), await new_media(client, author)
    status = await (await client.post(STATUS, json={"action": "post", "categories": [category["id"]],
                                                    "medias": [gone, keep]}, headers=author["auth"])).json()
    assert (await client.delete(f"/api/v2/media/{gone}/", headers=author["auth"])).status == 204
    after = await (await client.get(f"{STATUS}{status['id']}/", headers=author["auth"])).json()
    assert [m["id"] for m in after["medias"]] == [keep]


VALIDATION = [
    ({"categories": [1]}, "action"),
    ({"action": "post"}, "categories"),
    ({"action": "post", "categories": [999]}, "categories"),
    ({"action": "post", "categories": ["x"]}, "categories"),
    ({"action": "post", "categories": [], "addressing": [999]}, "addressing"),
    ({"action": "post", "categories": [], "medias": [999]}, "medias"),
    ({"action": "post", "categories": [], "location": {"location": "x", "lat": 91, "lng": 0}}, "location"),
    ({"action": "post", "categories": [], "location": {"location": "x", "lat": 0, "lng": -180.5}}, "location"),
    ({"action": "post", "categories": [], "text": "x" * 10_001}, "text"),
]


@pytest.mark.parametrize("body,field", VALIDATION, ids=[v[1] + str(i) for i, v in enumerate(VALIDATION)])
async def test_validation_errors_name_the_field(world, body, field):
    client, author, *_ = world
    reply = await client.post(STATUS, json=body, headers=author["auth"])
    assert reply.status == 400 and field in await reply.json()
    assert (await (await client.get(STATUS, headers=author["auth"])).json())["count"] == 0


async def test_media_of_another_user_is_refused(world):
    client, author, other, category, _ = world
    theirs = await new_media(client, other)
    reply = await client.post(STATUS, json={"action": "post", "categories": [], "medias": [theirs]},
                              headers=author["auth"])
    assert reply.status == 400 and "another user" in (await reply.json())["medias"][0]


@pytest.mark.parametrize("text,forbidden", [
    ("<p>hi<script>alert(1)</script></p>", ["<script", "alert(1)"]),
    ('<img src=x onerror="alert(1)"><b onmouseover="x()">b</b>', ["onerror", "onmouseover", "<img"]),
    ('<a href="javascript:alert(1)">click</a>', ["javascript:"]),
    ('<p style="position:fixed">styled</p>', ["style="]),
])
async def test_text_is_sanitized(world, text, forbidden):
    client, author, *_ = world
    status = await (await client.post(STATUS, json={"action": "post", "categories": [], "text": text},
                                      headers=author["auth"])).json()
    for needle in forbidden:
        assert needle not in status["html"] and needle not in status["text"]


async def test_statuses_need_auth(world):
    client, *_ = world
    assert (await client.get(STATUS)).status == 401
    assert (await client.post(STATUS, json={"action": "x", "categories": []})).status == 401
