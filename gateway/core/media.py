"""Media: created from finished uploads, read, edited and deleted, with the jobs each change needs."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from typing import Any, Protocol

from gateway.core import clock, policy, sniff
from gateway.core.auth import User
from gateway.core.errors import bad_request, forbidden, not_found
from gateway.core.media_model import FILE_TYPES, IMAGE_TYPES, Media
from gateway.core.media_store import MediaStore
from gateway.core.processing import PROBE, Processing
from gateway.core.uploads import ChunkRange, Uploads
from storage.errors import ObjectNotFound
from storage.objects.port import ObjectStore

log = logging.getLogger("gateway.media")

AUTO = "auto"  # files from the Files API: typed by what they are
EDITABLE = ("title", "description")


class MediaReferences(Protocol):
    """What else points at a media (statuses); told first when one is deleted."""

    async def forget_media(self, media_id: int) -> None: ...


class MediaService:
    def __init__(self, store: MediaStore, objects: ObjectStore, uploads: Uploads, processing: Processing,
                 references: MediaReferences) -> None:
        self.store = store
        self.objects = objects
        self.uploads = uploads
        self.processing = processing
        self.references = references

    async def complete_upload(self, user: User, upload_id: str, media_type: str | None, md5: str, *,
                              title: str | None = None, description: str = "") -> Media:
        """Turn a finished upload into a media; ``media_type`` None means: image if it is one."""
        if not upload_id:
            raise bad_request("missing_upload_id", "upload_id is required")
        kind = FILE_TYPES.get((media_type or "").strip()) if media_type is not None else AUTO
        if kind is None:
            raise bad_request("invalid_type", f"type must be one of {', '.join(FILE_TYPES)}")
        md5 = (md5 or "").strip().lower()
        session = await self.uploads.session(user, upload_id)
        if session["status"] == "complete":  # a retried complete gets the same media
            media = await self.store.get(session["media_id"])
            if media is not None and media.md5 == md5:
                await self.processing.start(media, PROBE)  # idempotent: the first reply may have been lost
                return media
            raise bad_request("upload_complete", "this upload is already complete")
        session, info = await self.uploads.finish(session, md5)
        found = await sniff.probe_stored(self.objects, info.key, info.size)
        if kind in IMAGE_TYPES and found.width is None:
            raise bad_request("not_an_image", f"type {media_type} needs an image; the file is {found.mime_type}")
        if kind == AUTO:
            kind = "image" if found.width else "document"
        now = clock.now()
        media = Media(id=await self._reserve_id(session), user_id=user.id, hash_code=uuid.uuid4().hex, type=kind,
                      added_at=now, updated_at=now, title=title or session["filename"], description=description,
                      key=info.key, upload_id=session["id"], size=info.size, md5=md5, mime_type=found.mime_type,
                      kind=found.kind, image_width=found.width, image_height=found.height,
                      mode=found.mode).owing(PROBE.name)
        media = await self.store.insert(media)  # a concurrent complete of the same upload may have won
        await self.uploads.mark_complete(session, media.id)
        log.info("media created", extra={"upload_id": session["id"], "media_id": media.id, "size": info.size})
        await self.processing.start(media, PROBE)
        return media

    async def create_file(self, user: User, filename: str | None, chunks, length: int, *,
                          title: str | None = None, description: str = "") -> Media:
        """A whole file in one request (Files API), through the same upload path as chunks."""
        if length == 0:
            raise bad_request("empty_file", "the submitted file is empty")
        session = await self.uploads.receive_chunk(user, None, ChunkRange(0, length - 1, length), chunks, filename)
        return await self.complete_upload(user, session["id"], None, self.uploads.md5_of(session),
                                          title=title, description=description)

    async def _reserve_id(self, session: dict[str, Any]) -> int:
        # The id is fixed on the session before the media exists, so a retried or
        # concurrent complete creates the same media instead of a second one.
        if session.get("media_id"):
            return session["media_id"]
        candidate = await self.store.new_id()
        # The uploads collection belongs to Uploads; this one compare-and-set stays here
        # until Uploads offers it (gateway/core/uploads.py is changing on main).
        documents = self.uploads.documents
        reserved = await documents.update("uploads", session["id"], {"media_id": candidate}, expect={"media_id": None})
        return candidate if reserved else (await documents.get("uploads", session["id"]))["media_id"]

    # reading

    async def page(self, *, owner: int | None = None, files_only: bool = False, kind: str | None = None,
                   limit: int, offset: int) -> tuple[int, list[Media]]:
        return await self.store.page(owner=owner, files_only=files_only, kind=kind, limit=limit, offset=offset)

    async def find(self, media_id: int) -> Media | None:
        """The media, whoever asks: for dialects that decide themselves what to show."""
        return await self.store.get(media_id)

    async def find_many(self, ids: list[int]) -> dict[int, Media]:
        return await self.store.get_many(ids)

    async def by_hash(self, hash_code: str) -> Media | None:
        """Content URLs carry the unguessable hash code: holding the URL is the permission."""
        return await self.store.by_hash(hash_code)

    async def get(self, user: User, media_id: int) -> Media:
        media = await self.store.get(media_id)
        if media is None:
            raise not_found("media")
        if not policy.may_read_media(user, media):
            raise forbidden()
        return media

    # changing

    async def update_details(self, user: User, media: Media, changes: dict[str, Any]) -> Media:
        """Set editable fields (title, description); read-only ones never reach here."""
        if not policy.may_change_media(user, media):
            raise forbidden()
        fields = {name: changes[name] for name in EDITABLE if name in changes}
        updated = await self.store.change(media.id, lambda current: dataclasses.replace(current, **fields))
        if updated is None:
            raise not_found("media")
        return updated

    async def delete(self, user: User, media_id: int) -> None:
        media = await self.store.get(media_id)
        if media is None:
            raise not_found("media")
        if not policy.may_delete_media(user, media):
            raise forbidden()
        # Statuses and derived files (thumbnails, copies) first, then the original,
        # then the document: a crash part-way leaves a media whose delete can be
        # repeated, never objects that no document points at.
        await self.references.forget_media(media.id)
        derived = [thumb.key for thumb in media.thumbnails]
        for key in [*derived, media.image_copy.key if media.image_copy else None, media.key]:
            if key:
                with contextlib.suppress(ObjectNotFound):
                    await self.objects.delete(key)
        await self.store.delete(media.id)
        log.info("media deleted", extra={"media_id": media.id})
