"""Chunked upload sessions: the resumable core shared by every upload dialect.

A session document holds everything an instance needs to continue an upload: the
acknowledged ``offset``, the object store's upload ``target`` state and the running
md5 state (``resumable_md5``, 88 bytes), so no instance keeps anything in memory
between chunks and ``complete`` never re-reads the object.

A chunk is written in two steps: the object store writes the bytes where only
this attempt's new state points, then one compare-and-set on ``{offset: START}``
advances the offset and commits that state. A retried or racing chunk therefore
sees the new offset (400 with ``offset``) and never corrupts the session; S3 part
uploads are also fenced by a short lease (see ``chunk_fence``).
"""
from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator

from gateway.core import clock
from gateway.core.auth import User
from gateway.core.chunk_fence import ClientAborted, Fence, LeaseLost, chunk_in_progress, received, wrong_offset
from gateway.core.errors import GatewayError, bad_request, not_found, upload_too_large
from gateway.core.names import safe_filename
from gateway.core.resumable_md5 import ResumableMd5
from storage.documents.port import DocumentStore
from storage.errors import ObjectNotFound
from storage.objects.port import Chunks, IncompleteBody, ObjectStore

log = logging.getLogger("gateway.uploads")

LEASE_SECONDS = 120.0
# Sessions this instance committed last, by id: the next chunk of the same upload, which
# usually comes back to the same instance, skips reading its session (a document-store
# round trip, about 0.2 ms of a 200 KiB chunk's 3). Only a hint: the commit's
# compare-and-set on the offset decides, and a stale entry fails it harmlessly. A few KiB
# each (the staged list): 1024 of them stay under 5 MiB; more concurrent uploads only
# means some chunks read their session again.
RECENT_SESSIONS = 1024
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


def _md5_dump(md5: ResumableMd5) -> str:
    return base64.b64encode(md5.save()).decode()


def _md5_load(text: str) -> ResumableMd5:
    return ResumableMd5(base64.b64decode(text))


class Uploads:
    def __init__(self, documents: DocumentStore, objects: ObjectStore, *, expiry: int, max_size: int,
                 lease: float = 5.0) -> None:
        self.documents = documents
        self.objects = objects
        self.expiry = expiry
        self.max_size = max_size
        self.lease = lease
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def receive_chunk(self, user: User, upload_id: str | None, chunk: ChunkRange, body: Chunks,
                            filename: str | None = None) -> dict[str, Any]:
        """Store one chunk; returns the updated session document."""
        self.check_size(chunk)
        if not upload_id:
            if chunk.start != 0:
                raise bad_request("invalid_offset", "a new upload starts at offset 0", offset=0)
            return await self._write(self._new_session(user, chunk.total, filename), chunk, body, new=True)
        session = self._recent_session(user, upload_id, chunk) or await self._load(user, upload_id)
        if session["total"] != chunk.total:
            raise bad_request("total_changed", "Content-Range TOTAL differs from earlier chunks",
                              total=session["total"])
        if session["offset"] != chunk.start:
            raise wrong_offset(chunk.start, session["offset"])
        return await self._write(session, chunk, body, new=False)

    async def create(self, user: User, total: int | None, filename: str | None,
                     extra: dict[str, Any]) -> dict[str, Any]:
        """A session that exists before its first byte (tus creation); ``total`` None = not known yet."""
        if total is not None and total > self.max_size:
            raise upload_too_large(self.max_size)
        session = {**self._new_session(user, total, filename), **extra}
        session["target"] = await self._begin(session)
        try:
            await self.documents.insert("uploads", session)
        except BaseException:
            await _shielded(self.objects.abort(session["target"]))
            raise
        log.info("upload created", extra={"upload_id": session["id"], "total": total})
        return session

    async def write(self, session: dict[str, Any], data: bytes | Chunks,
                    length: int | None = None) -> dict[str, Any]:
        """Store ``data`` (bytes, or ``length`` bytes streamed) at the session's offset: a block
        of a longer body."""
        length = len(data) if isinstance(data, bytes) else length
        start = session["offset"]
        chunk = ChunkRange(start, start + length - 1, session["total"] or start + length)
        return await self._write(session, chunk, _once(data) if isinstance(data, bytes) else data, new=False)

    async def set_total(self, session: dict[str, Any], total: int) -> dict[str, Any]:
        """Fix a deferred length once; the same length again is fine."""
        if total > self.max_size:
            raise upload_too_large(self.max_size)
        if total < session["offset"]:
            raise bad_request("invalid_length", "the length is below what was already received")
        updated = await self.documents.update("uploads", session["id"], {"total": total}, expect={"total": None})
        if updated is None:
            current = await self.documents.get("uploads", session["id"]) or session
            if current["total"] != total:
                raise bad_request("length_already_set", "the upload length was already set", total=current["total"])
            return current
        return updated

    @property
    def block_size(self) -> int:
        """Bytes a long body is committed in: one S3 part, or 8 MiB on local disk."""
        return getattr(self.objects, "part_size", 8 * 1024 * 1024)

    def check_size(self, chunk: ChunkRange) -> None:
        if chunk.total > self.max_size:
            raise upload_too_large(self.max_size)

    async def session(self, user: User, upload_id: str) -> dict[str, Any]:
        return await self._load(user, upload_id, allow_complete=True)

    def _new_session(self, user: User, total: int | None, filename: str | None) -> dict[str, Any]:
        """A session document not stored yet. The chunk API stores it only with its first
        chunk, so a refused first chunk leaves no document and no object behind."""
        now = clock.now()
        return {"id": uuid.uuid4().hex, "user_id": user.id, "status": "uploading", "filename": safe_filename(filename),
                "total": total, "offset": 0, "md5": _md5_dump(ResumableMd5()), "target": None,
                "created_at": now, "expires_at": now + self.expiry, "epoch": 0, "lease_id": None,
                "lease_until": 0.0}

    async def _begin(self, session: dict[str, Any]) -> dict[str, Any]:
        return await self.objects.begin(f"media/{session['id']}/{session['filename']}", "application/octet-stream")

    def _recent_session(self, user: User, upload_id: str, chunk: ChunkRange) -> dict[str, Any] | None:
        """This instance's last commit of the upload, if the chunk continues it; taken out, so
        a second request for the same upload meanwhile reads the store."""
        doc = self._recent.pop(upload_id, None)
        if doc is None or doc["user_id"] != user.id or doc["offset"] != chunk.start or doc["total"] != chunk.total:
            return None
        return doc if doc["expires_at"] >= clock.now() else None

    def _remember(self, session: dict[str, Any]) -> None:
        self._recent[session["id"]] = session
        if len(self._recent) > RECENT_SESSIONS:
            self._recent.popitem(last=False)

    async def _load(self, user: User, upload_id: str, *, allow_complete: bool = False) -> dict[str, Any]:
        return self._checked(await self.documents.get("uploads", str(upload_id)), user.id,
                             allow_complete=allow_complete)

    @staticmethod
    def _checked(doc: dict[str, Any] | None, user_id: int, *, allow_complete: bool = False) -> dict[str, Any]:
        if doc is None or doc["user_id"] != user_id or doc["status"] == "terminated":
            raise not_found("upload")  # another user's upload is indistinguishable from none
        if doc["status"] == "expired" or (doc["status"] != "complete" and doc["expires_at"] < clock.now()):
            raise GatewayError(410, "upload_expired", "this upload has expired; start a new one")
        if doc["status"] == "complete" and not allow_complete:
            raise bad_request("upload_complete", "this upload is already complete", offset=doc["offset"])
        return doc

    async def _write(self, session: dict[str, Any], chunk: ChunkRange, body: Chunks, *,
                     new: bool) -> dict[str, Any]:
        md5 = _md5_load(session["md5"])
        fence = Fence(self.documents, session, chunk.start, self.lease, new=new)
        old_target = await self._begin(session) if new else session["target"]
        try:
            new_target = await self.objects.append(old_target, chunk.start, received(body, md5, fence),
                                                   chunk.length, fence=fence.take)
        except BaseException as exc:
            await fence.release()
            if new:
                await _shielded(self.objects.abort(old_target))
            elif isinstance(exc, ObjectNotFound):
                # Bytes the attempt built on went away under it (another request committed
                # past it and dropped them, or the upload ended): the stored session answers.
                raise await self._moved_on(session, chunk) from None
            raise _client_error(exc, session, chunk) from None
        await md5.settled()
        changes = {"offset": chunk.end + 1, "target": new_target, "md5": _md5_dump(md5),
                   "expires_at": clock.now() + self.expiry, "lease_id": None, "lease_until": 0.0}
        if new:
            committed = {**session, **changes, "epoch": fence.epoch}
            try:
                await self.documents.insert("uploads", committed)
            except BaseException:
                await _shielded(self.objects.abort(new_target))
                raise
            log.info("upload created", extra={"upload_id": session["id"], "total": chunk.total})
        else:
            # The one compare-and-set that commits: whichever attempt gets here first wins.
            committed = await self.documents.update("uploads", session["id"], changes,
                                                    expect={"offset": chunk.start, "status": "uploading"})
        if committed is None:  # another request stored this range first, or the upload ended meanwhile
            await self.objects.cleanup(keep=old_target, drop=new_target)
            raise await self._moved_on(session, chunk)
        await self.objects.cleanup(keep=new_target, drop=old_target)
        self._remember(committed)
        log.info("chunk stored", extra={"upload_id": session["id"], "offset": committed["offset"]})
        return committed

    async def _moved_on(self, session: dict[str, Any], chunk: ChunkRange) -> GatewayError:
        """What a chunk that lost a race is told: 404/410 (raised) if the upload ended, else
        the stored offset to go on from."""
        current = self._checked(await self.documents.get("uploads", session["id"]), session["user_id"])
        return wrong_offset(chunk.start, current["offset"])

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
        info = await self.objects.complete(session["target"], fence=(session.get("epoch") or 0) + 1)
        return session, info

    @staticmethod
    def md5_of(session: dict[str, Any]) -> str:
        """The md5 of the bytes received so far, from the saved state (no re-read)."""
        return _md5_load(session["md5"]).hexdigest()

    async def mark_complete(self, session: dict[str, Any], media_id: int | None) -> None:
        await self.documents.update("uploads", session["id"], {"status": "complete", "media_id": media_id})

    async def fill(self, session: dict[str, Any], target: dict[str, Any], md5: ResumableMd5) -> dict[str, Any]:
        """Record an upload whose bytes were put in place at once (an assembled tus final upload)."""
        filled = await self.documents.update(
            "uploads", session["id"], {"target": target, "offset": session["total"], "md5": _md5_dump(md5)},
            expect={"status": "uploading"})
        if filled is None:
            raise GatewayError(409, "upload_changed", "the upload changed while it was assembled")
        return filled

    async def terminate(self, session: dict[str, Any]) -> None:
        """End an upload for good (tus termination): its bytes go, unless a media owns them."""
        if not await self.documents.update("uploads", session["id"], {"status": "terminated"},
                                           expect={"status": session["status"]}):
            return  # finished, swept or terminated meanwhile
        if session["status"] == "uploading":
            await self.objects.abort(session["target"])
        elif session["status"] == "complete" and not session.get("media_id"):
            await self.objects.delete(session["target"]["key"])  # a finished partial upload's object

    async def discard(self, session: dict[str, Any]) -> None:
        """Drop a session nobody will use (a request that turned out malformed after its bytes were stored)."""
        if await self.documents.update("uploads", session["id"], {"status": "expired"},
                                       expect={"status": "uploading"}):
            await self.objects.abort(session["target"])

    async def sweep(self) -> int:
        """Abort expired sessions and drop their staged bytes, and remove finished uploads no
        media owns (tus partial uploads no final upload used) once expired; returns how many."""
        swept = 0
        now = clock.now()
        for status, state in (("uploading", "expired"), ("complete", "terminated")):
            where = {"status": status, "expires_at": {"$lt": now}}
            if status == "complete":
                where["media_id"] = None
            for doc in await self.documents.find("uploads", where, limit=500):
                claimed = await self.documents.update("uploads", doc["id"], {"status": state},
                                                      expect={"status": status, "expires_at": doc["expires_at"]})
                if claimed is None:
                    continue  # a chunk refreshed it, or another instance got there first
                if status == "uploading":
                    await self.objects.abort(doc["target"])
                else:
                    await self.objects.delete(doc["target"]["key"])
                log.info("upload expired", extra={"upload_id": doc["id"]})
                swept += 1
        return swept


def _client_error(exc: BaseException, lease: dict[str, Any], chunk: ChunkRange) -> BaseException:
    """What a failed append means for the client: its own fault, a lost lease, or the store's."""
    if isinstance(exc, IncompleteBody):
        return bad_request("invalid_chunk_length",
                           f"Content-Range announces {exc.expected} bytes but the body has a different length",
                           offset=chunk.start)
    if isinstance(exc, LeaseLost):
        return chunk_in_progress("another request took over this upload; retry from its offset")
    if isinstance(exc, ClientAborted):
        # 499 (nginx's "client closed request") in logs and metrics; nothing was committed,
        # so the same chunk can simply be sent again.
        log.info("client aborted", extra={"upload_id": lease["id"], "offset": chunk.start, "error": str(exc)})
        return GatewayError(499, "client_aborted", "the client closed the request before the chunk arrived",
                            offset=chunk.start)
    return exc


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _shielded(awaitable):
    return await asyncio.shield(awaitable)


async def in_progress(documents: DocumentStore, *, user_id: int | None = None, limit: int = 100,
                      offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Unfinished, unexpired upload sessions (for operators), the most recently active first."""
    where: dict[str, Any] = {"status": "uploading", "expires_at": {"$gte": clock.now()}}
    if user_id is not None:
        where["user_id"] = user_id
    total = await documents.count("uploads", where)
    found = await documents.find("uploads", where, sort=[("expires_at", -1), ("id", 1)], limit=limit, skip=offset)
    return total, found
