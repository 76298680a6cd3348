"""A small JSON:API caller for the /dato tests: what the official client sends, spelled out."""
from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiohttp.test_utils import TestClient

HEADERS = {"Accept": "application/json", "Content-Type": "application/json", "X-Api-Version": "3"}


class Dato:
    def __init__(self, client: TestClient, auth: dict[str, str]) -> None:
        self.client = client
        self.headers = {**HEADERS, **auth}

    async def call(self, method: str, path: str, body: Any = None, *, expect: int | None = None,
                   **params: str) -> tuple[int, Any]:
        async with self.client.request(method, "/dato" + path, json=body, params=params or None,
                                       headers=self.headers) as reply:
            assert "application/json" in reply.headers.get("Content-Type", ""), (method, path, reply.headers)
            payload = await reply.json()
            if expect is not None:
                assert reply.status == expect, (method, path, reply.status, payload)
            return reply.status, payload

    async def put_bytes(self, data: bytes, filename: str = "photo.png", content_type: str = "image/png") -> str:
        """An upload request and the PUT of ``data`` to its URL, as the client does (no token)."""
        _, created = await self.call("POST", "/upload-requests", {
            "data": {"type": "upload_request", "attributes": {"filename": filename}}}, expect=201)
        attributes = created["data"]["attributes"]
        headers = {**attributes["request_headers"], "Content-Type": content_type}
        async with self.client.session.put(attributes["url"], data=data, headers=headers) as reply:
            assert reply.status == 200, await reply.text()
        return created["data"]["id"]

    async def finished(self, reply: tuple[int, Any], *, timeout: float = 30.0) -> tuple[int, Any]:
        """Poll a 202's job as the client does (404 until done), but quickly; (status, payload)."""
        status, body = reply
        assert status == 202 and body["data"]["type"] == "job", reply
        job_id = body["data"]["id"]
        for _ in range(int(timeout / 0.05)):
            status, result = await self.call("GET", f"/job-results/{job_id}")
            if status == 200:
                attributes = result["data"]["attributes"]
                return attributes["status"], attributes["payload"]
            assert status == 404, result
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")

    async def create(self, data: bytes, filename: str = "photo.png", content_type: str = "image/png",
                     **attributes: Any) -> dict[str, Any]:
        path = await self.put_bytes(data, filename, content_type)
        reply = await self.call("POST", "/uploads", {"data": {"type": "upload",
                                                              "attributes": {"path": path, **attributes}}})
        status, payload = await self.finished(reply)
        assert status == 201, payload
        return payload["data"]

    async def served(self, url: str) -> tuple[bytes, str]:
        async with self.client.session.get(url) as reply:
            assert reply.status == 200
            return await reply.read(), reply.headers["Content-Type"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def resource(kind: str, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": kind, "attributes": attributes}}
