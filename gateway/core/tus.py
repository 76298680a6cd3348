"""tus 1.0 uploads on the shared upload sessions: creation, PATCH, termination, concatenation.

A tus upload is an upload session (``uploads``) with a ``tus`` slot holding what
only this dialect needs: the raw ``Upload-Metadata``, its ``filename`` and
``filetype`` (a hint; the probe decides the kind), and the concatenation role
(``partial``, or ``final`` with the partials' ids). Bytes go through the same
object-store staging, fencing and md5 state as chunk uploads. A finished upload
becomes a media like any other (probe, thumbnails); a partial one only becomes an
object, which its final upload assembles in a ``tus_concat`` job (server-side part
copies on S3), whose md5 is computed there by reading the result.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import Any

from gateway.core import streams
from gateway.core.auth import User
from gateway.core.errors import GatewayError, bad_request, not_found
from gateway.core.jobs import JobQueue
from gateway.core.media import MediaService
from gateway.core.media_model import Media
from gateway.core.object_files import stored_md5
from gateway.core.uploads import Uploads

log = logging.getLogger("gateway.tus")

VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "creation-defer-length", "termination", "checksum", "expiration",
              "concatenation")
MAX_METADATA = 4096
MAX_PARTIALS = 1000


def parse_metadata(header: str | None) -> dict[str, str]:
    """``key base64value,key2 base64value2`` (a value may be absent)."""
    if not header:
        return {}
    if len(header) > MAX_METADATA:
        raise bad_request("invalid_metadata", f"Upload-Metadata is limited to {MAX_METADATA} bytes")
    found = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key or " " in value.strip() or key in found:
            raise bad_request("invalid_metadata", "Upload-Metadata is 'key base64value' pairs with unique keys")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, ValueError):
            raise bad_request("invalid_metadata", f"the value of {key!r} is not base64 of UTF-8 text") from None
    return found


def _slot(metadata: str | None, concat: str | None) -> dict[str, Any]:
    """What only tus keeps on an upload session."""
    meta = parse_metadata(metadata)
    return {"metadata": metadata or "", "filename": meta.get("filename"), "filetype": meta.get("filetype"),
            "concat": concat}


def conflict(message: str, **extra: Any) -> GatewayError:
    return GatewayError(409, "offset_mismatch", message, **extra)


class TusUploads:
    # A HEAD that follows a PATCH cut short must see what that PATCH kept, which is still
    # being committed when the client's next request arrives: requests on an upload wait
    # up to this long for a PATCH of it in flight on this instance.
    SETTLE_SECONDS = 3.0

    def __init__(self, uploads: Uploads, media: MediaService, jobs: JobQueue) -> None:
        self.uploads = uploads
        self.media = media
        self.jobs = jobs
        self._writing: dict[str, asyncio.Future] = {}  # upload id -> done when its PATCH is stored

    async def create(self, user: User, *, length: int | None, metadata: str | None,
                     partial: bool = False) -> dict[str, Any]:
        slot = _slot(metadata, "partial" if partial else None)
        return await self.uploads.create(user, length, slot["filename"], {"tus": slot})

    async def create_final(self, user: User, partial_ids: list[str], metadata: str | None) -> dict[str, Any]:
        """A final upload of finished partial ones; a job assembles it."""
        if not partial_ids or len(partial_ids) > MAX_PARTIALS:
            raise bad_request("invalid_concat", f"a final upload names 1 to {MAX_PARTIALS} partial uploads")
        partials = []
        for upload_id in partial_ids:
            try:
                session = await self.uploads.session(user, upload_id)
            except GatewayError:
                raise bad_request("invalid_concat", f"partial upload {upload_id} does not exist") from None
            if (session.get("tus") or {}).get("concat") != "partial" or session["status"] != "complete":
                raise bad_request("invalid_concat", f"upload {upload_id} is not a finished partial upload")
            partials.append(session)
        slot = {**_slot(metadata, "final"), "partials": [session["id"] for session in partials]}
        final = await self.uploads.create(user, sum(session["total"] for session in partials), slot["filename"],
                                          {"tus": slot})
        await self.jobs.enqueue("tus_concat", final["id"])
        return final

    async def get(self, user: User, upload_id: str) -> dict[str, Any]:
        writing = self._writing.get(upload_id)
        if writing is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(writing), self.SETTLE_SECONDS)
        session = await self.uploads.session(user, upload_id)
        if "tus" not in session:
            raise not_found("upload")
        return session

    async def patch(self, user: User, upload_id: str, offset: int, body, *, length: int | None,
                    checksum: str | None, body_length: int | None = None) -> tuple[dict[str, Any], Media | None]:
        """Store a PATCH body (``body_length`` bytes, when known); returns the session and,
        when this finished it, the media."""
        session = await self.get(user, upload_id)
        total = session["total"] if session["total"] is not None else (
            length if length is not None else self.uploads.max_size)
        if body_length is not None and offset + body_length > total:  # refused before reading a byte
            raise GatewayError(413, "upload_too_large", "the body goes past the upload's length")
        if session["tus"]["concat"] == "final":
            raise GatewayError(403, "final_upload", "a final upload is assembled from its partial uploads")
        checked = streams.parse_checksum(checksum) if checksum else None
        if length is not None and session["total"] is None:
            session = await self.uploads.set_total(session, length)
        elif length is not None and length != session["total"]:
            raise bad_request("length_already_set", "Upload-Length differs from the upload's length")
        if session["status"] != "uploading" or offset != session["offset"]:
            raise conflict(f"Upload-Offset {offset} differs from the upload's offset {session['offset']}",
                           offset=session["offset"])
        limit = total - offset
        writing = self._writing[upload_id] = asyncio.get_running_loop().create_future()
        try:
            if checked:
                session = await streams.receive_checked(self.uploads, session, body, limit=limit,
                                                        algorithm=checked[0], digest=checked[1])
            else:
                session = await streams.receive(self.uploads, session, body, limit=limit, length=body_length)
        finally:
            writing.set_result(None)
            if self._writing.get(upload_id) is writing:
                del self._writing[upload_id]
        return session, await self.finish(user, session)

    async def finish(self, user: User, session: dict[str, Any]) -> Media | None:
        """A finished upload becomes a media (a partial one only an object); None until then."""
        if session["total"] is None or session["offset"] != session["total"]:
            return None
        md5 = Uploads.md5_of(session)
        if session["tus"]["concat"] == "partial":
            await self.uploads.finish(session, md5)
            await self.uploads.mark_complete(session, None)
            return None
        return await self.media.complete_upload(user, session["id"], None, md5,
                                                title=session["tus"]["filename"] or None)

    async def assemble(self, final_id: str, users) -> Media | None:
        """The ``tus_concat`` job: fill the final upload from its partials, hash the result
        (the partials' md5s cannot be combined), and make it a media. Safe to repeat."""
        final = await self.uploads.documents.get("uploads", final_id)
        if final is None or final["status"] != "uploading":
            return None  # done by an earlier run, or terminated
        partials = [await self.uploads.documents.get("uploads", upload_id) for upload_id in final["tus"]["partials"]]
        if any(p is None or p["status"] != "complete" for p in partials):
            raise GatewayError(409, "partial_gone", "a partial upload of this final upload is gone")
        objects = self.uploads.objects
        target = await objects.concatenate(final["target"], [(p["target"]["key"], p["total"]) for p in partials])
        info = await objects.complete(target, fence=len(target.get("parts", [])) + 1)
        final = await self.uploads.fill(final, target, await stored_md5(objects, info.key))
        user = await users.get(final["user_id"])
        media = await self.finish(user, final)
        for partial in partials:  # assembled: the partial objects have served their purpose
            await self.uploads.terminate(partial)
        return media

    async def terminate(self, user: User, upload_id: str) -> None:
        session = await self.get(user, upload_id)
        await self.uploads.terminate(session)
        log.info("tus upload terminated", extra={"upload_id": upload_id})
