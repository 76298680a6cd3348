"""The media repository: the only code that reads or writes the ``media`` collection.

Every change goes through ``change``: read the media, let the caller derive the new
one, write only the fields that differ with a compare-and-set on ``version``, and
start over when another writer got there first. Callers never race on a field
(a job's result against an owner's edit against another job), and none of them
sees the stored dict.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from gateway.core import clock
from gateway.core.errors import GatewayError
from gateway.core.media_model import Media
from storage.documents.port import DocumentStore
from storage.errors import DuplicateKey

COLLECTION = "media"
MAX_RACES = 50  # writers that each changed the media between our read and write: never in practice

Mutation = Callable[[Media], "Media | None"]


class ChangeRaced(GatewayError):
    """The media kept changing under us for MAX_RACES tries: a 409 to retry, never a 500."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "media_busy", message, headers={"Retry-After": "1"})


class MediaStore:
    def __init__(self, documents: DocumentStore) -> None:
        self.documents = documents

    async def new_id(self, sequence: str = COLLECTION) -> int:
        """A new media id (or, for ``embeds``, the id an embed shows)."""
        return await self.documents.next_id(sequence)

    async def insert(self, media: Media) -> Media:
        """Store a new media; if one with its id exists (a concurrent complete), that one."""
        media = dataclasses.replace(media, version=1)
        try:
            await self.documents.insert(COLLECTION, media.to_doc())
        except DuplicateKey:
            existing = await self.get(media.id)
            if existing is None:
                raise
            return existing
        return media

    async def get(self, media_id: int) -> Media | None:
        doc = await self.documents.get(COLLECTION, media_id)
        return Media.from_doc(doc) if doc else None

    async def by_hash(self, hash_code: str) -> Media | None:
        found = await self.documents.find(COLLECTION, {"hash_code": hash_code}, limit=1)
        return Media.from_doc(found[0]) if found else None

    async def get_many(self, ids: list[int]) -> dict[int, Media]:
        found = await self.documents.find(COLLECTION, {"id": {"$in": list(ids)}})
        return {doc["id"]: Media.from_doc(doc) for doc in found}

    async def page(self, *, owner: int | None = None, files_only: bool = False, kind: str | None = None,
                   limit: int, offset: int) -> tuple[int, list[Media]]:
        """Newest first: the total matching and one page of them."""
        where: dict[str, Any] = {}
        if owner is not None:
            where["user_id"] = owner
        if files_only:
            where["key"] = {"$ne": None}
        if kind is not None:
            where["kind"] = kind
        total = await self.documents.count(COLLECTION, where)
        found = await self.documents.find(COLLECTION, where, sort=[("added_at", -1), ("id", -1)], limit=limit,
                                          skip=offset)
        return total, [Media.from_doc(doc) for doc in found]

    async def search(self, where: dict[str, Any], sort: list[tuple[str, int]], *, limit: int,
                     offset: int) -> tuple[int, list[Media]]:
        """Media whose documents match ``where`` (the document port's filters) in ``sort`` order."""
        total = await self.documents.count(COLLECTION, where)
        found = await self.documents.find(COLLECTION, where, sort=sort, limit=limit, skip=offset)
        return total, [Media.from_doc(doc) for doc in found]

    async def change(self, media_id: int, mutate: Mutation) -> Media | None:
        """Apply ``mutate`` (current media -> new media, or None for "leave it") atomically.

        Returns the stored result, or None when the media is gone or ``mutate`` declined.
        """
        for _ in range(MAX_RACES):
            current = await self.get(media_id)
            if current is None:
                return None
            wanted = mutate(current)
            if wanted is None:
                return None
            wanted = dataclasses.replace(wanted, id=current.id, version=current.version + 1, updated_at=clock.now())
            before, after = current.to_doc(), wanted.to_doc()
            changes = {name: value for name, value in after.items() if before.get(name) != value}
            # A document written before versions existed has none: expect exactly that.
            stored = await self.documents.update(COLLECTION, media_id, changes,
                                                 expect={"version": current.version or None})
            if stored is not None:
                return Media.from_doc(stored)
        raise ChangeRaced(f"media {media_id} kept changing")

    async def delete(self, media_id: int) -> bool:
        return await self.documents.delete(COLLECTION, media_id)
