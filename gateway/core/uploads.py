"""Chunked upload sessions: the resumable core shared by every upload dialect.

A session document holds everything an instance needs to continue an upload: the
acknowledged ``offset``, the object store's upload ``target`` state and the running
md5 state (``rehashes.PyMd5``, 88 bytes), so no instance keeps anything in memory
between chunks and ``complete`` never re-reads the object.

A chunk is written in three steps: take the session's write lease by
compare-and-set on ``{offset: START, lease expired}``, stream the bytes to the
object store, then advance ``offset`` by compare-and-set on ``{offset: START,
lease_id: mine}``. A retried or racing chunk therefore either sees the new offset
(400 with ``offset``) or the held lease (409), and never corrupts the session.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

import rehashes

from gateway.core import clock
from gateway.core.auth import User
from gateway.core.errors import GatewayError, bad_request, not_found, upload_too_large
from gateway.core.names import safe_filename
from storage.documents.port import DocumentStore
from storage.objects.port import Chunks, IncompleteBody, ObjectStore

log = logging.getLogger("gateway.uploads")

LEASE_SECONDS = 120.0
# ASCII digits only (\d takes any script's digits), and at most 19 of them so int() stays cheap.
RANGE = re.compile(r"^\s*bytes\s+([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19})\s*$")
MD5_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ChunkRange:
    start: int
    end: int  # inclusive
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @classmethod
    def parse(cls, header: str | None) -> "ChunkRange":
        match = RANGE.match(header or "")
        if not match:
            raise bad_request("invalid_content_range", "Content-Range must be 'bytes START-END/TOTAL'")
        start, end, total = (int(g) for g in match.groups())
        if end < start:
            raise bad_request("invalid_content_range", "Content-Range END is before START")
        if end >= total:
            raise bad_request("invalid_content_range", "Content-Range END is past TOTAL")
        return cls(start, end, total)


def _md5_dump(md5: rehashes.PyMd5) -> str:
    return base64.b64encode(md5.serialize()).decode()


def _md5_load(text: str) -> rehashes.PyMd5:
    return rehashes.PyMd5.deserialize(base64.b64decode(text))


class Uploads:
    def __init__(self, documents: DocumentStore, objects: ObjectStore, *, expiry: int, max_size: int) -> None:
        self.documents = documents
        self.objects = objects
        self.expiry = expiry
        self.max_size = max_size

    async def receive_chunk(self, user: User, upload_id: str | None, chunk: ChunkRange, body: Chunks,
                            filename: str | None = None) -> dict[str, Any]:
        """Store one chunk; returns the updated session document."""
        self.check_size(chunk)
        session = await (self._load(user, upload_id) if upload_id else self._create(user, chunk, filename))
        if session["total"] != chunk.total:
            raise bad_request("total_changed", "Content-Range TOTAL differs from earlier chunks",
                              total=session["total"])
        lease = await self._take_lease(session, chunk.start)
        try:
            return await self._write(lease, chunk, body)
        finally:
            await self._release(lease)

    def check_size(self, chunk: ChunkRange) -> None:
        if chunk.total > self.max_size:
            raise upload_too_large(self.max_size)

    async def session(self, user: User, upload_id: str) -> dict[str, Any]:
        return await self._load(user, upload_id, allow_complete=True)

    async def _create(self, user: User, chunk: ChunkRange, filename: str | None) -> dict[str, Any]:
        if chunk.start != 0:
            raise bad_request("invalid_offset", "a new upload starts at offset 0", offset=0)
        upload_id = uuid.uuid4().hex
        name = safe_filename(filename)
        target = await self.objects.begin(f"media/{upload_id}/{name}", "application/octet-stream")
        now = clock.now()
        doc = {"id": upload_id, "user_id": user.id, "status": "uploading", "filename": name,
               "total": chunk.total, "offset": 0, "md5": _md5_dump(rehashes.PyMd5()), "target": target,
               "created_at": now, "expires_at": now + self.expiry, "lease_id": None, "lease_until": 0.0}
        await self.documents.insert("uploads", doc)
        log.info("upload created", extra={"upload_id": upload_id, "total": chunk.total})
        return doc

    async def _load(self, user: User, upload_id: str, *, allow_complete: bool = False) -> dict[str, Any]:
        doc = await self.documents.get("uploads", str(upload_id))
        if doc is None or doc["user_id"] != user.id:
            raise not_found("upload")  # another user's upload is indistinguishable from none
        if doc["status"] == "expired" or (doc["status"] != "complete" and doc["expires_at"] < clock.now()):
            raise GatewayError(410, "upload_expired", "this upload has expired; start a new one")
        if doc["status"] == "complete" and not allow_complete:
            raise bad_request("upload_complete", "this upload is already complete", offset=doc["offset"])
        return doc

    async def _take_lease(self, session: dict[str, Any], start: int) -> dict[str, Any]:
        lease_id = uuid.uuid4().hex
        now = clock.now()
        taken = await self.documents.update(
            "uploads", session["id"], {"lease_id": lease_id, "lease_until": now + LEASE_SECONDS},
            expect={"offset": start, "status": "uploading", "lease_until": {"$lt": now}})
        if taken is not None:
            return taken
        current = await self.documents.get("uploads", session["id"]) or session
        if current["offset"] != start:
            raise bad_request("invalid_offset", f"chunk starts at {start} but the upload is at {current['offset']}",
                              offset=current["offset"])
        if current["status"] != "uploading":
            raise bad_request("upload_complete", "this upload is already complete", offset=current["offset"])
        raise GatewayError(409, "chunk_in_progress", "another request is writing this upload; retry shortly",
                           headers={"Retry-After": "1"}, offset=current["offset"])

    async def _release(self, lease: dict[str, Any]) -> None:
        # Runs even when the client went away; shielded so a cancelled handler still frees the lease.
        with contextlib.suppress(Exception):
            await _shielded(self.documents.update("uploads", lease["id"], {"lease_id": None, "lease_until": 0.0},
                                                  expect={"lease_id": lease["lease_id"]}))

    async def _write(self, lease: dict[str, Any], chunk: ChunkRange, body: Chunks) -> dict[str, Any]:
        md5 = _md5_load(lease["md5"])
        old_target = lease["target"]
        try:
            new_target = await self.objects.append(old_target, chunk.start, _hashed(body, md5), chunk.length)
        except IncompleteBody as exc:
            raise bad_request("invalid_chunk_length",
                              f"Content-Range announces {exc.expected} bytes but the body has a different length",
                              offset=chunk.start) from None
        committed = await self.documents.update(
            "uploads", lease["id"],
            {"offset": chunk.end + 1, "target": new_target, "md5": _md5_dump(md5),
             "expires_at": clock.now() + self.expiry, "lease_id": None, "lease_until": 0.0},
            expect={"offset": chunk.start, "lease_id": lease["lease_id"]})
        if committed is None:  # our lease expired and another request moved on: drop our bytes
            await self.objects.cleanup(keep=old_target, drop=new_target)
            raise GatewayError(409, "chunk_in_progress", "another request wrote this range first",
                               headers={"Retry-After": "1"})
        await self.objects.cleanup(keep=new_target, drop=old_target)
        log.info("chunk stored", extra={"upload_id": lease["id"], "offset": committed["offset"]})
        return committed

    async def finish(self, session: dict[str, Any], md5: str) -> tuple[dict[str, Any], Any]:
        """Check the md5 and assemble the object; the session stays usable on a mismatch."""
        if session["offset"] != session["total"]:
            raise bad_request("upload_incomplete", f"{session['total'] - session['offset']} bytes are missing",
                              offset=session["offset"])
        md5 = (md5 or "").strip().lower()
        if not md5:
            raise bad_request("md5_required", "md5 (hex of the whole file) is required", offset=session["offset"])
        if not MD5_HEX.fullmatch(md5):
            raise bad_request("invalid_md5", "md5 must be 32 hexadecimal digits", offset=session["offset"])
        actual = self.md5_of(session)
        if actual != md5:
            raise bad_request("md5_mismatch", "md5 does not match the uploaded bytes", offset=session["offset"])
        info = await self.objects.complete(session["target"])
        return session, info

    @staticmethod
    def md5_of(session: dict[str, Any]) -> str:
        """The md5 of the bytes received so far, from the saved state (no re-read)."""
        return _md5_load(session["md5"]).finalize()

    async def mark_complete(self, session: dict[str, Any], media_id: int) -> None:
        await self.documents.update("uploads", session["id"], {"status": "complete", "media_id": media_id})

    async def discard(self, session: dict[str, Any]) -> None:
        """Drop a session nobody will use (a request that turned out malformed after its bytes were stored)."""
        if await self.documents.update("uploads", session["id"], {"status": "expired"},
                                       expect={"status": "uploading"}):
            await self.objects.abort(session["target"])

    async def sweep(self) -> int:
        """Abort expired sessions and drop their staged bytes; returns how many."""
        swept = 0
        for doc in await self.documents.find("uploads", {"status": "uploading", "expires_at": {"$lt": clock.now()}},
                                             limit=500):
            claimed = await self.documents.update("uploads", doc["id"], {"status": "expired"},
                                                  expect={"status": "uploading", "expires_at": doc["expires_at"]})
            if claimed is None:
                continue  # a chunk refreshed it, or another instance got there first
            await self.objects.abort(doc["target"])
            log.info("upload expired", extra={"upload_id": doc["id"]})
            swept += 1
        return swept


async def _hashed(body: Chunks, md5: rehashes.PyMd5) -> AsyncIterator[bytes]:
    async for piece in body:
        md5.update(piece)
        yield piece


async def _shielded(awaitable):
    return await asyncio.shield(awaitable)
