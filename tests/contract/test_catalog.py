"""Categories and tags: users read, staff and admins write; slugs unique; bad input 400."""
from __future__ import annotations

import pytest

CATALOGS = ["/api/v2/category/", "/api/v2/tag/"]


@pytest.fixture
async def people(stack):
    client = await stack.client()
    return client, await stack.user(client, staff=True), await stack.user(client), await stack.user(client, admin=True)


async def test_category_lifecycle_and_unique_slugs(people):
    client, staff, user, admin = people
    url = CATALOGS[0]
    first = await client.post(url, json={"name": "Café News", "order": 2, "slug": "ignored", "followers_counter": 9},
                              headers=staff["auth"])
    body = await first.json()
    assert first.status == 201, body
    assert (body["name"], body["slug"], body["order"], body["active"], body["followers_counter"]) == (
        "Café News", "cafe-news", 2, True, 0)
    second = await (await client.post(url, json={"name": "cafe news!"}, headers=admin["auth"])).json()
    assert second["slug"] == "cafe-news-2"
    listed = await (await client.get(url, headers=user["auth"])).json()
    assert listed["count"] == 2 and [c["id"] for c in listed["results"]] == [second["id"], body["id"]]  # by order
    assert (await (await client.get(f"{url}{body['id']}/", headers=user["auth"])).json())["name"] == "Café News"
    patched = await client.patch(f"{url}{body['id']}/", json={"active": False}, headers=staff["auth"])
    assert patched.status == 200 and (await patched.json())["active"] is False
    assert (await client.put(f"{url}{body['id']}/", json={"active": True}, headers=staff["auth"])).status == 400
    active = await (await client.get(url + "?active=true", headers=user["auth"])).json()
    assert [c["id"] for c in active["results"]] == [second["id"]]
    assert (await client.delete(f"{url}{body['id']}/", headers=staff["auth"])).status == 204
    assert (await client.get(f"{url}{body['id']}/", headers=user["auth"])).status == 404


@pytest.mark.parametrize("url", CATALOGS)
async def test_only_staff_write_and_only_users_read(people, url):
    client, staff, user, admin = people
    created = await (await client.post(url, json={"name": "general"}, headers=staff["auth"])).json()
    item = f"{url}{created['id']}/"
    assert (await client.get(url)).status == 401
    assert (await client.get(item)).status == 401
    assert (await client.post(url, json={"name": "x"}, headers=user["auth"])).status == 403
    assert (await client.patch(item, json={"name": "y"}, headers=user["auth"])).status == 403
    assert (await client.delete(item, headers=user["auth"])).status == 403
    assert (await (await client.get(item, headers=user["auth"])).json())["name"] == "general"


@pytest.mark.parametrize("url", CATALOGS)
async def test_bad_input_is_400_and_changes_nothing(people, url):
    client, staff, user, admin = people
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"),
                        ({"name": "ok", "active": "maybe"}, "active")):
        reply = await client.post(url, json=body, headers=staff["auth"])
        assert reply.status == 400 and field in await reply.json()
    malformed = await client.post(url, data=b"{", headers={**staff["auth"], "Content-Type": "application/json"})
    assert malformed.status == 400 and (await malformed.json())["code"] == "malformed_json"
    assert (await client.get(f"{url}abc/", headers=user["auth"])).status == 400
    assert (await client.get(f"{url}999/", headers=user["auth"])).status == 404
    assert (await (await client.get(url, headers=user["auth"])).json())["count"] == 0


async def test_tag_names_are_unique_and_colours_checked(people):
    client, staff, *_ = people
    assert (await client.post(CATALOGS[1], json={"name": "red", "color": "#ff0000"}, headers=staff["auth"])).status == 201
    assert (await client.post(CATALOGS[1], json={"name": "red"}, headers=staff["auth"])).status == 400
    assert (await client.post(CATALOGS[1], json={"name": "blue", "color": "blue"}, headers=staff["auth"])).status == 400
