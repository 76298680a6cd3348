"""One file through the chunk API: resume from the server's offset, send, retry, complete.

Errors worth a retry (a 5xx, a 409 "another request is writing", a network error or
timeout) are retried with exponential backoff; anything else fails the file at once.
A 400 carrying the server's ``offset`` (a chunk the server already had, e.g. when a
reply was lost) moves the upload to that offset instead of failing.
"""
from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp

from gateway.client.state import ResumeState, file_key

CHUNK_PATH = "/api/v2/media/upload/chunk/"
COMPLETE_PATH = "/api/v2/media/upload/complete/"
PIECE = 256 * 1024  # progress granularity inside a chunk
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}


class UploadFailed(Exception):
    """A file that cannot be uploaded (a 4xx other than the retried ones, or retries used up)."""


class Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class OffsetMoved(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(f"server is at offset {offset}")
        self.offset = offset


@dataclass
class Options:
    url: str
    token: str
    chunk_size: int = 8 * 1024 * 1024
    attempts: int = 8  # per request
    backoff: float = 0.5  # seconds; doubled on each retry, capped at max_backoff
    max_backoff: float = 15.0


Progress = Callable[[int], None]  # called with the bytes the server holds (or is receiving) so far


class Transfer:
    def __init__(self, http: aiohttp.ClientSession, options: Options, state: ResumeState) -> None:
        self.http = http
        self.options = options
        self.state = state
        self.base = options.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {options.token}"}

    async def upload(self, path: Path, progress: Progress, note: Callable[[str], None]) -> dict[str, Any]:
        """Upload ``path``; returns the media JSON."""
        size = path.stat().st_size
        if size == 0:
            raise UploadFailed("empty files cannot be uploaded")
        key = file_key(self.base, path)
        upload_id, offset = await self._resume_point(key)
        md5 = await _hash_prefix(path, offset)
        if offset:
            note(f"resuming {path.name} at {offset} of {size} bytes")
        progress(offset)
        moves = 0
        with path.open("rb") as source:
            while offset < size:
                data = await _read(source, offset, min(self.options.chunk_size, size - offset))
                try:
                    reply = await self._retrying(lambda: self._send(upload_id, offset, data, size, path.name,
                                                                    progress))
                except OffsetMoved as moved:  # the server already has more (or less) than we thought
                    moves += 1
                    if moves > 5 or not 0 <= moved.offset <= size:
                        raise UploadFailed(f"the server keeps moving the offset (now {moved.offset})") from None
                    offset = moved.offset
                    md5 = await _hash_prefix(path, offset)
                    progress(offset)
                    continue
                if upload_id is None:
                    upload_id = reply["upload_id"]
                    self.state.put(key, upload_id)
                md5.update(data)
                offset = reply["offset"]
                progress(offset)
        try:
            media = await self._complete(upload_id, md5.hexdigest(), path)
        except UploadFailed as exc:
            if "md5_mismatch" in str(exc):  # the file changed under the same name, size and time
                self.state.drop(key)  # so the next run starts over instead of failing again
            raise
        self.state.drop(key)
        return media

    async def _resume_point(self, key: str) -> tuple[str | None, int]:
        upload_id = self.state.get(key)
        if upload_id is None:
            return None, 0
        reply = await self._retrying(lambda: self._request("GET", CHUNK_PATH, params={"upload_id": upload_id},
                                                           accept=(404, 410)))
        if reply is None:  # expired or unknown (another server, swept): start again
            self.state.drop(key)
            return None, 0
        return upload_id, reply["offset"]

    async def _send(self, upload_id: str | None, offset: int, data: bytes, total: int, name: str,
                    progress: Progress) -> dict[str, Any]:
        async def body() -> AsyncIterator[bytes]:
            view = memoryview(data)
            for at in range(0, len(data), PIECE):
                yield bytes(view[at:at + PIECE])
                progress(offset + min(at + PIECE, len(data)))

        with aiohttp.MultipartWriter("form-data") as form:
            if upload_id:
                form.append(upload_id).set_content_disposition("form-data", name="upload_id")
            part = form.append_payload(aiohttp.payload.AsyncIterablePayload(body()))
            part.set_content_disposition("form-data", name="file", filename=name)
        headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{total}"}
        try:
            return await self._request("POST", CHUNK_PATH, data=form, headers=headers)
        except (Retry, UploadFailed):
            progress(offset)  # the bar goes back to what the server acknowledged
            raise

    async def _complete(self, upload_id: str, md5: str, path: Path) -> dict[str, Any]:
        guessed = mimetypes.guess_type(path.name)[0] or ""
        media_type = "image" if guessed.startswith("image/") else "document"
        fields = {"upload_id": upload_id, "type": media_type, "md5": md5}
        try:
            return await self._retrying(lambda: self._request("POST", COMPLETE_PATH, json=fields))
        except UploadFailed as exc:
            if "not_an_image" not in str(exc):
                raise
            return await self._retrying(lambda: self._request("POST", COMPLETE_PATH,
                                                              json={**fields, "type": "document"}))

    async def _request(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs) -> Any:
        try:
            async with self.http.request(method, self.base + path, headers={**self.headers,
                                                                           **kwargs.pop("headers", {})},
                                         **kwargs) as reply:
                try:
                    body = await reply.json(content_type=None)
                except ValueError:
                    body = {}
                if reply.status < 300:
                    return body
                if reply.status in accept:
                    return None
                code = body.get("code", "") if isinstance(body, dict) else ""
                detail = body.get("detail", reply.reason) if isinstance(body, dict) else reply.reason
                if reply.status in RETRY_STATUSES:
                    raise Retry(f"{reply.status} {code}", _retry_after(reply.headers.get("Retry-After")))
                if reply.status == 400 and code == "invalid_offset" and isinstance(body.get("offset"), int):
                    raise OffsetMoved(body["offset"])
                raise UploadFailed(f"{reply.status} {code}: {detail}")
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            raise Retry(f"network error: {exc or type(exc).__name__}") from None

    async def _retrying(self, call):
        delay = self.options.backoff
        for attempt in range(1, self.options.attempts + 1):
            try:
                return await call()
            except Retry as exc:
                if attempt == self.options.attempts:
                    raise UploadFailed(f"gave up after {attempt} attempts: {exc}") from None
                wait = exc.delay if exc.delay is not None else delay * (0.5 + random.random())
                await asyncio.sleep(min(wait, self.options.max_backoff))
                delay = min(delay * 2, self.options.max_backoff)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


async def _read(source, offset: int, length: int) -> bytes:
    def read() -> bytes:
        source.seek(offset)
        return source.read(length)
    return await asyncio.get_running_loop().run_in_executor(None, read)


async def _hash_prefix(path: Path, length: int):
    """The md5 of the first ``length`` bytes (what the server already holds), read off the loop."""
    def hashed():
        md5 = hashlib.md5()
        with path.open("rb") as source:
            left = length
            while left:
                piece = source.read(min(left, 4 * 1024 * 1024))
                if not piece:
                    raise UploadFailed(f"{path} is shorter than the {length} bytes already uploaded")
                md5.update(piece)
                left -= len(piece)
        return md5
    return await asyncio.get_running_loop().run_in_executor(None, hashed)
