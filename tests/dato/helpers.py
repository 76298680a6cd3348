"""Speak the DatoCMS upload-request steps as @datocms/cma-client-node does, for tests."""
from __future__ import annotations

from urllib.parse import urlsplit

from gateway.core.auth import User
from gateway.keys import UPLOAD_REQUESTS, USERS

DATO_HEADERS = {"Accept": "application/json", "Content-Type": "application/json", "X-Api-Version": "3"}
REQUESTS = "/dato/upload-requests"


async def ask(client, auth: dict, filename: str = "photo.png") -> tuple[str, str]:
    """POST /dato/upload-requests: the request's (path, url)."""
    reply = await client.post(REQUESTS, headers={**DATO_HEADERS, **auth},
                              json={"data": {"type": "upload_request", "attributes": {"filename": filename}}})
    body = await reply.json()
    assert reply.status == 201 and "application/json" in reply.headers["Content-Type"], body
    data = body["data"]
    assert data["type"] == "upload_request" and data["attributes"]["request_headers"] == {}
    return data["id"], data["attributes"]["url"]


async def put_file(client, url: str, data, content_type: str = "image/png", headers: dict | None = None):
    """The client's PUT of the raw bytes: no Authorization, its own Content-Type, to an absolute URL."""
    return await client.session.put(url, data=data, headers={"Content-Type": content_type, **(headers or {})})


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def user_of(client, account: dict) -> User:
    return await client.app[USERS].get(account["id"])


async def take(client, account: dict, path: str):
    return await client.app[UPLOAD_REQUESTS].take(await user_of(client, account), path)


def dato_code(body: dict) -> str:
    return body["data"][0]["attributes"]["code"]
