"""Media documents: created from finished uploads, read and deleted by their owners."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Awaitable, Callable

from gateway.core import clock, sniff
from gateway.core.auth import User
from gateway.core.errors import bad_request, forbidden, not_found
from gateway.core.uploads import ChunkRange, Uploads
from storage.documents.port import DocumentStore
from storage.errors import DuplicateKey, ObjectNotFound
from storage.objects.port import ObjectStore

log = logging.getLogger("gateway.media")

# Wire type -> stored type. The SelfCommunity web client sends "eimage" for editor images.
FILE_TYPES = {"image": "image", "document": "document", "eimage": "editor_image", "editor_image": "editor_image"}
IMAGE_TYPES = {"image", "editor_image"}
AUTO = "auto"  # files from the Files API: typed by what they are

Listener = Callable[[str, dict[str, Any]], Awaitable[None]]


class MediaService:
    def __init__(self, documents: DocumentStore, objects: ObjectStore, uploads: Uploads) -> None:
        self.documents = documents
        self.objects = objects
        self.uploads = uploads
        self.listeners: list[Listener] = []  # event consumers (workers) subscribe here

    async def emit(self, event: str, media: dict[str, Any]) -> None:
        for listener in self.listeners:
            await listener(event, media)

    async def complete_upload(self, user: User, upload_id: str, media_type: str | None, md5: str, *,
                              title: str | None = None, description: str = "") -> dict[str, Any]:
        """Turn a finished upload into a media; ``media_type`` None means: image if it is one."""
        if not upload_id:
            raise bad_request("missing_upload_id", "upload_id is required")
        kind = FILE_TYPES.get((media_type or "").strip()) if media_type is not None else AUTO
        if kind is None:
            raise bad_request("invalid_type", f"type must be one of {', '.join(FILE_TYPES)}")
        session = await self.uploads.session(user, upload_id)
        if session["status"] == "complete":  # a retried complete gets the same media
            media = await self.documents.get("media", session["media_id"])
            if media is not None and media["md5"] == (md5 or "").strip().lower():
                await self.emit("upload.completed", media)  # idempotent: the first reply may have been lost
                return media
            raise bad_request("upload_complete", "this upload is already complete")
        session, info = await self.uploads.finish(session, md5)
        head = await (await self.objects.get(info.key, 0, sniff.HEAD_BYTES - 1)).read_all()
        # libmagic and Pillow are synchronous; the size is the oriented one the workers report too.
        mime, size = await asyncio.get_running_loop().run_in_executor(None, sniff.describe_head, head)
        if kind in IMAGE_TYPES and size is None:
            raise bad_request("not_an_image", f"type {media_type} needs an image; the file is {mime}")
        if kind is AUTO:
            kind = "image" if size else "document"
        media_id = await self._reserve_id(session)
        media = {"id": media_id, "user_id": user.id, "hash_code": uuid.uuid4().hex, "added_at": clock.now(),
                 "type": kind, "kind": sniff.kind_for_mime(mime), "title": title or session["filename"],
                 "description": description, "key": info.key, "mode": None,
                 "size": info.size, "mime_type": mime, "md5": md5.strip().lower(),
                 "image_width": size[0] if size else None, "image_height": size[1] if size else None,
                 "order": 0, "upload_id": session["id"], "updated_at": clock.now(),
                 "processing": "pending", "processing_error": None, "thumbnails": []}
        try:
            await self.documents.insert("media", media)
        except DuplicateKey:  # a concurrent complete of the same upload inserted it
            media = await self.documents.get("media", media_id)
        await self.uploads.mark_complete(session, media_id)
        log.info("media created", extra={"upload_id": session["id"], "media_id": media_id, "size": info.size})
        await self.emit("upload.completed", media)
        return media

    async def create_file(self, user: User, filename: str | None, chunks, length: int, *,
                          title: str | None = None, description: str = "") -> dict[str, Any]:
        """A whole file in one request (Files API), through the same upload path as chunks."""
        if length == 0:
            raise bad_request("empty_file", "the submitted file is empty")
        session = await self.uploads.receive_chunk(user, None, ChunkRange(0, length - 1, length), chunks, filename)
        return await self.complete_upload(user, session["id"], None, self.uploads.md5_of(session),
                                          title=title, description=description)

    async def list(self, where: dict[str, Any], *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        total = await self.documents.count("media", where)
        found = await self.documents.find("media", where, sort=[("added_at", -1), ("id", -1)], limit=limit,
                                          skip=offset)
        return total, found

    async def update_details(self, media: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Set editable fields (title, description); read-only ones never reach here."""
        updated = await self.documents.update("media", media["id"], {**changes, "updated_at": clock.now()})
        if updated is None:
            raise not_found("media")
        return updated

    async def _reserve_id(self, session: dict[str, Any]) -> int:
        # The id is fixed on the session before the media exists, so a retried or
        # concurrent complete creates the same media instead of a second one.
        if session.get("media_id"):
            return session["media_id"]
        candidate = await self.documents.next_id("media")
        reserved = await self.documents.update("uploads", session["id"], {"media_id": candidate},
                                               expect={"media_id": None})
        return candidate if reserved else (await self.documents.get("uploads", session["id"]))["media_id"]

    async def get(self, user: User, media_id: int) -> dict[str, Any]:
        media = await self.documents.get("media", media_id)
        if media is None:
            raise not_found("media")
        if not (media["user_id"] == user.id or user.is_staff or user.is_admin):
            raise forbidden()
        return media

    async def by_hash(self, hash_code: str) -> dict[str, Any] | None:
        found = await self.documents.find("media", {"hash_code": hash_code}, limit=1)
        return found[0] if found else None

    async def delete(self, user: User, media_id: int, *, manager: bool = False) -> None:
        """Owners and admins delete; ``manager`` is a Files API manager acting on any file."""
        media = await self.documents.get("media", media_id)
        if media is None:
            raise not_found("media")
        if not (media["user_id"] == user.id or user.is_admin or manager):
            raise forbidden()
        # Statuses and derived files (thumbnails, copies) first, then the original,
        # then the document: a crash part-way leaves a media whose delete can be
        # repeated, never objects that no document points at.
        await self.emit("media.deleting", media)
        for key in [media.get("key"), media.get("image_copy_key")]:
            if key:
                with contextlib.suppress(ObjectNotFound):
                    await self.objects.delete(key)
        await self.documents.delete("media", media_id)
        log.info("media deleted", extra={"media_id": media_id})
