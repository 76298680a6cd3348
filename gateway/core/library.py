"""The media library as the DatoCMS dialect sees it: files from upload requests,
per-locale metadata, tags, renames, new versions and search.

Everything is a ``Media`` in the one media store, so an upload made here is a
media every other dialect lists and serves, and its processing (md5, probe,
derived attributes, thumbnails) runs through the same jobs. The dialect validates
its input and hands over clean values; this module decides what a change does to
the media and which jobs it owes.

- ``path`` is ``/{user_id}/{hash_code}-{filename}`` and the URL serves by
  ``hash_code``: a rename changes filename, path and URL without moving bytes.
- A new file (a new upload request's path) replaces the bytes and everything
  measured from them; metadata stays. It gets a new path and URL unless
  ``keep_url``, in which case the old path and URL serve the new bytes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any, Protocol

from gateway.core import clock, policy, sniff
from gateway.core.auth import User
from gateway.core.errors import not_found
from gateway.core.media import MediaService
from gateway.core.media_model import Media
from gateway.core.media_store import MediaStore
from gateway.core.processing import PROBE, Processing
from storage.documents.port import DocumentStore, Filter
from storage.errors import DuplicateKey, ObjectNotFound
from storage.objects.port import ObjectStore

log = logging.getLogger("gateway.library")

TAGS = "upload_tags"
DETAILS = ("author", "copyright", "notes", "tags")  # set as given; default_field_metadata is patched
LOCALE_DEFAULTS = {"alt": None, "title": None, "custom_data": {}, "focal_point": None}


class StoredFile(Protocol):
    """Bytes an upload request put in the object store, taken by their user."""
    key: str
    hash_code: str
    filename: str
    size: int
    md5: str | None  # None when they went straight to S3: the probe job computes it


def upload_path(media: Media) -> str:
    return f"/{media.user_id}/{media.hash_code}-{media.title}"


class Library:
    def __init__(self, media: MediaService, store: MediaStore, processing: Processing, objects: ObjectStore,
                 documents: DocumentStore) -> None:
        self.media = media
        self.store = store
        self.processing = processing
        self.objects = objects
        self.documents = documents

    # files

    async def create(self, user: User, file: StoredFile, details: dict[str, Any]) -> Media:
        measured = await self._measure(file)
        now = clock.now()
        media = Media(id=await self.store.new_id(), user_id=user.id, hash_code=file.hash_code, added_at=now,
                      updated_at=now, title=file.filename, key=file.key, **measured)
        media = _with_details(media, details).owing(PROBE.name)
        media = await self.store.insert(media)
        await self._remember_tags(user, media.tags)
        await self.processing.start(media, PROBE)
        log.info("upload created", extra={"media_id": media.id, "size": file.size})
        return media

    async def replace_file(self, user: User, media_id: int, file: StoredFile, details: dict[str, Any], *,
                           keep_url: bool) -> Media:
        """New bytes for an upload; the old object and derived files go once the media points away."""
        old = await self.changeable(user, media_id)
        measured = await self._measure(file)

        def apply(current: Media) -> Media:
            new = dataclasses.replace(
                current, key=file.key, upload_id=None, thumbnails=(), blurhash=None, thumbhash=None, colors=(),
                exif={}, hash_code=current.hash_code if keep_url else file.hash_code,
                title=current.title if keep_url else file.filename, **measured)
            return _with_details(new, details).owing(PROBE.name)

        media = await self._change(media_id, apply)
        await self._remember_tags(user, media.tags)
        await self.processing.start(media, PROBE, again=True)
        for key in {old.key, *(thumb.key for thumb in old.thumbnails)} - {media.key}:
            with contextlib.suppress(ObjectNotFound):
                await self.objects.delete(key)
        return media

    async def _measure(self, file: StoredFile) -> dict[str, Any]:
        found = await sniff.probe_stored(self.objects, file.key, file.size)
        return {"type": "image" if found.width else "document", "size": file.size, "md5": file.md5,
                "mime_type": found.mime_type, "kind": found.kind, "image_width": found.width,
                "image_height": found.height, "mode": found.mode}

    # details

    async def update(self, user: User, media_id: int, details: dict[str, Any]) -> Media:
        await self.changeable(user, media_id)
        media = await self._change(media_id, lambda current: _with_details(current, details))
        await self._remember_tags(user, media.tags)
        return media

    async def add_tags(self, user: User, media_ids: list[int], tags: list[str]) -> list[Media]:
        changed = []
        for media_id in media_ids:
            await self.changeable(user, media_id)
        for media_id in media_ids:
            changed.append(await self._change(media_id, lambda current: dataclasses.replace(
                current, tags=tuple(dict.fromkeys([*current.tags, *tags])))))
        await self._remember_tags(user, tuple(tags))
        return changed

    async def destroy(self, user: User, media_id: int) -> Media:
        media = await self.changeable(user, media_id)
        await self.media.delete(user, media_id)
        return media

    # reading

    async def readable(self, user: User, media_id: int) -> Media:
        """The upload if ``user`` may see it; anything else (none, a link, another's) is 404."""
        media = await self.store.get(media_id)
        if media is None or not media.is_file or not policy.may_read_media(user, media):
            raise not_found("upload")
        return media

    async def changeable(self, user: User, media_id: int) -> Media:
        media = await self.readable(user, media_id)
        if not policy.may_change_media(user, media):
            raise not_found("upload")
        return media

    async def search(self, user: User, where: Filter, order: list[tuple[str, int]], *, limit: int,
                     offset: int) -> tuple[int, list[Media]]:
        """Files ``user`` may see matching ``where`` (media document fields), in ``order``."""
        scope: Filter = {"key": {"$ne": None}, **where}
        if not (user.is_staff or user.is_admin):
            scope["user_id"] = user.id
        sort = [*order, ("id", order[-1][1] if order else -1)]  # a stable order for paging
        return await self.store.search(scope, sort, limit=limit, offset=offset)

    # upload tags: names a user has used or created, listed even when no upload carries them

    async def create_tag(self, user: User, name: str) -> dict[str, Any]:
        await self._remember_tags(user, (name,))
        return await self.documents.get(TAGS, _tag_id(user, name))

    async def list_tags(self, user: User, *, query: str = "", limit: int, offset: int) -> tuple[int, list[dict]]:
        where: Filter = {"user_id": user.id}
        if query:
            where["name"] = {"$contains": query}
        total = await self.documents.count(TAGS, where)
        return total, await self.documents.find(TAGS, where, sort=[("name", 1)], limit=limit, skip=offset)

    async def _remember_tags(self, user: User, names: tuple[str, ...]) -> None:
        for name in names:
            with contextlib.suppress(DuplicateKey):
                await self.documents.insert(TAGS, {"id": _tag_id(user, name), "user_id": user.id, "name": name,
                                                   "created_at": clock.now()})

    async def _change(self, media_id: int, apply) -> Media:
        media = await self.store.change(media_id, apply)
        if media is None:
            raise not_found("upload")
        return media


def _tag_id(user: User, name: str) -> str:
    return f"{user.id}:{name}"


def _with_details(media: Media, details: dict[str, Any]) -> Media:
    """``details`` set on ``media``: plain fields replaced, per-locale metadata patched key by key."""
    changes = {name: details[name] for name in DETAILS if name in details}
    if "tags" in changes:
        changes["tags"] = tuple(dict.fromkeys(changes["tags"]))
    if "filename" in details:
        changes["title"] = details["filename"]
    if "default_field_metadata" in details:
        merged = dict(media.default_field_metadata)
        for locale, values in details["default_field_metadata"].items():
            merged[locale] = {**LOCALE_DEFAULTS, **merged.get(locale, {}), **values}
        changes["default_field_metadata"] = merged
    return dataclasses.replace(media, **changes)
