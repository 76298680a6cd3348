"""Statuses: posts that reference categories, media and tags, with sanitized rich text.

Input is validated field by field (DRF-style errors naming the field); the text is
sanitized with an allowlist before it is stored, ``@username`` mentions of real
users become links, and ``summary`` is its plain text cut at 200 characters. Only
the author (or an admin) changes or deletes a status. When a media is deleted it
is taken out of every status that lists it.
"""
from __future__ import annotations

from typing import Any

from gateway.core import clock, policy, rich_text
from gateway.core.auth import User
from gateway.core.catalog import Catalog
from gateway.core.errors import field_error, forbidden, not_found
from gateway.core.media_store import MediaStore
from storage.documents.port import DocumentStore

MAX_TEXT = 10_000
MAX_ACTION = 50
WRITABLE = ("action", "text", "categories", "medias", "location", "addressing")
REQUIRED_ON_PUT = ("action", "categories")
MAX_ID = 2 ** 63 - 1  # the stores' integer range: a larger id cannot exist and overflows SQLite and BSON


def _ids(field: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_ID
                                              for v in value):
        raise field_error(field, "Expected a list of integer ids.")
    return list(dict.fromkeys(value))  # keep the given order, drop repeats


def _location(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise field_error("location", "Expected an object with location, lat and lng.")
    place = value.get("location", "")
    if not isinstance(place, str) or len(place) > 255:
        raise field_error("location", "location must be text of at most 255 characters.")
    coords = {}
    for name, bound in (("lat", 90), ("lng", 180)):
        number = value.get(name)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise field_error("location", f"{name} must be a number.")
        if not -bound <= number <= bound:
            raise field_error("location", f"{name} must be between -{bound} and {bound}.")
        coords[name] = float(number)
    return {"location": place, **coords}


class Statuses:
    def __init__(self, documents: DocumentStore, media: MediaStore, categories: Catalog, tags: Catalog,
                 user_url) -> None:
        self.documents = documents
        self.media = media
        self.categories = categories
        self.tags = tags
        self.user_url = user_url  # username -> profile URL for mention links

    async def create(self, author: User, body: dict[str, Any]) -> dict[str, Any]:
        changes = await self._clean(author, body, required=REQUIRED_ON_PUT)
        now = clock.now()
        status = {"text": "", "html": "", "summary": "", "category_ids": [], "media_ids": [], "tag_ids": [],
                  "location": None, **changes, "id": await self.documents.next_id("statuses"),
                  "author_id": author.id, "added_at": now, "last_edited_at": None}
        await self.documents.insert("statuses", status)
        return status

    async def get(self, status_id: int) -> dict[str, Any]:
        status = await self.documents.get("statuses", status_id)
        if status is None:
            raise not_found("status")
        return status

    async def list(self, *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        total = await self.documents.count("statuses")
        found = await self.documents.find("statuses", sort=[("added_at", -1), ("id", -1)], limit=limit, skip=offset)
        return total, found

    async def update(self, user: User, status_id: int, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        status = await self._own(user, status_id)
        author = User(status["author_id"], "")  # media ownership is checked against the author
        changes = await self._clean(author, body, required=() if partial else REQUIRED_ON_PUT)
        updated = await self.documents.update("statuses", status_id, {**changes, "last_edited_at": clock.now()})
        if updated is None:
            raise not_found("status")
        return updated

    async def delete(self, user: User, status_id: int) -> None:
        await self._own(user, status_id)
        await self.documents.delete("statuses", status_id)

    async def forget_media(self, media_id: int) -> None:
        """A media is being deleted: take it out of every status that lists it."""
        for status in await self.documents.find("statuses", {"media_ids": {"$has": media_id}}):
            # Compare-and-set on the list we read, retried if an edit raced us.
            while status is not None and media_id in status["media_ids"]:
                remaining = [m for m in status["media_ids"] if m != media_id]
                if await self.documents.update("statuses", status["id"], {"media_ids": remaining},
                                               expect={"media_ids": {"$has": media_id},
                                                       "last_edited_at": status["last_edited_at"]}):
                    break
                status = await self.documents.get("statuses", status["id"])

    async def _own(self, user: User, status_id: int) -> dict[str, Any]:
        status = await self.get(status_id)
        if not policy.may_change_status(user, status):
            raise forbidden("only the author can change this status")
        return status

    async def _clean(self, author: User, body: dict[str, Any], *, required: tuple[str, ...]) -> dict[str, Any]:
        for name in required:
            if name not in body:
                raise field_error(name, "This field is required.")
        changes: dict[str, Any] = {}
        if "action" in body:
            action = body["action"]
            if not isinstance(action, str) or not action.strip() or len(action) > MAX_ACTION:
                raise field_error("action", f"Expected non-empty text of at most {MAX_ACTION} characters.")
            changes["action"] = action.strip()
        if "text" in body:
            changes.update(await self._text(body["text"]))
        if "categories" in body:
            changes["category_ids"] = await self._existing("categories", self.categories, body["categories"])
        if "addressing" in body:
            changes["tag_ids"] = await self._existing("addressing", self.tags, body["addressing"])
        if "medias" in body:
            changes["media_ids"] = await self._own_media(author, _ids("medias", body["medias"]))
        if "location" in body:
            changes["location"] = _location(body["location"])
        return changes

    async def _text(self, text: Any) -> dict[str, str]:
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise field_error("text", "Not a valid string.")
        if len(text) > MAX_TEXT:
            raise field_error("text", f"Ensure this field has no more than {MAX_TEXT} characters.")
        clean = rich_text.sanitize_html(text)
        found = rich_text.MENTION.findall(rich_text.plain_text(clean))
        names = {*found, *(name.rstrip(".") for name in found)}  # "@bob." ends a sentence
        known = {u["username"] for u in await self.documents.find("users", {"username": {"$in": sorted(names)}})}
        html = rich_text.link_mentions(clean, lambda name: self.user_url(name) if name in known else None)
        return {"text": html, "html": html, "summary": rich_text.summary(html)}

    async def _existing(self, field: str, catalog: Catalog, raw: Any) -> list[int]:
        ids = _ids(field, raw)
        found = await catalog.get_many(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise field_error(field, f"Unknown {catalog.kind.label} id {missing[0]}.")
        return ids

    async def _own_media(self, author: User, ids: list[int]) -> list[int]:
        found = await self.media.get_many(ids)
        for media_id in ids:
            if media_id not in found:
                raise field_error("medias", f"Unknown media id {media_id}.")
            if not policy.may_attach_media(author, found[media_id]):
                raise field_error("medias", f"Media {media_id} belongs to another user.")
        return ids
