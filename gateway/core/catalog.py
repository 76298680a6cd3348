"""Categories and tags: small catalogs anyone signed in reads and staff curate.

Both share one repository with per-kind field rules: validation of the writable
fields, defaults, and for categories a slug derived from the name and kept unique
(``news``, ``news-2``, ...) by the store's unique index, so two instances racing
on the same name still end with distinct slugs.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from gateway.core import clock, policy
from gateway.core.auth import User
from gateway.core.errors import GatewayError, field_error, forbidden, not_found
from storage.documents.port import DocumentStore
from storage.errors import DuplicateKey

Validator = Callable[[Any], Any]


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80] or "category"


def _text(limit: int, *, required: bool = False) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("Not a valid string.")
        value = value.strip()
        if required and not value:
            raise ValueError("This field may not be blank.")
        if len(value) > limit:
            raise ValueError(f"Ensure this field has no more than {limit} characters.")
        return value
    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError("Must be a valid boolean.")


INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1  # a Django IntegerField's range, as DRF validates it
_INTEGER = re.compile(r"\s*-?[0-9]{1,19}\s*")  # ASCII digits: str.isdigit() takes "²", int() reads "٣" as 3


def _int(value: Any) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("A valid integer is required.")
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"Ensure this value is between {INT32_MIN} and {INT32_MAX}.")
    return value


def _color(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        raise ValueError("Enter a colour like #1a2b3c.")
    return value


@dataclass(frozen=True)
class CatalogKind:
    collection: str
    label: str
    fields: dict[str, Validator]
    required: tuple[str, ...]
    defaults: dict[str, Any]


CATEGORIES = CatalogKind(
    "categories", "category",
    {"name": _text(100, required=True), "name_synonyms": _text(500), "tagline": _text(200),
     "description": _text(5000), "active": _bool, "order": _int, "auto_follow": _text(20),
     "seo_title": _text(200), "seo_description": _text(500)},
    ("name",),
    {"name_synonyms": "", "tagline": "", "description": "", "active": True, "order": 0, "auto_follow": "none",
     "seo_title": "", "seo_description": "", "followers_counter": 0, "image_original": None,
     "image_bigger": None, "image_big": None, "image_medium": None, "image_small": None,
     "emotional_image_original": None, "emotional_image_position": 0},
)
TAGS = CatalogKind(
    "tags", "tag",
    {"name": _text(100, required=True), "description": _text(500), "type": _text(20), "color": _color,
     "visible": _bool, "active": _bool, "deleted": _bool, "visibility_boost": _bool},
    ("name",),
    {"description": "", "type": "user", "color": "#3b3b3b", "visible": True, "active": True, "deleted": False,
     "visibility_boost": False},
)


class Catalog:
    def __init__(self, documents: DocumentStore, kind: CatalogKind) -> None:
        self.documents = documents
        self.kind = kind

    def _clean(self, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        if not partial:
            for name in self.kind.required:
                if name not in body:
                    raise field_error(name, "This field is required.")
        cleaned = {}
        for name, check in self.kind.fields.items():
            if name in body:
                try:
                    cleaned[name] = check(body[name])
                except ValueError as exc:
                    raise field_error(name, str(exc)) from None
        return cleaned  # unknown and read-only fields (id, slug, counters) are ignored, as DRF does

    @staticmethod
    def _require_staff(user: User) -> None:
        if not policy.may_curate_catalog(user):
            raise forbidden("only staff can change this")

    async def list(self, *, active_only: bool = False, limit: int, offset: int) -> tuple[int, list[dict]]:
        where = {"active": True} if active_only else {}
        total = await self.documents.count(self.kind.collection, where)
        found = await self.documents.find(self.kind.collection, where, sort=[("order", 1), ("id", 1)],
                                          limit=limit, skip=offset)
        return total, found

    async def get(self, item_id: int) -> dict[str, Any]:
        item = await self.documents.get(self.kind.collection, item_id)
        if item is None:
            raise not_found(self.kind.label)
        return item

    async def get_many(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        found = await self.documents.find(self.kind.collection, {"id": {"$in": list(ids)}})
        return {item["id"]: item for item in found}

    async def create(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        self._require_staff(user)
        cleaned = self._clean(body, partial=False)
        now = clock.now()
        item = {**self.kind.defaults, **cleaned, "id": await self.documents.next_id(self.kind.collection),
                "created_at": now, "lastmod_datetime": now}
        if self.kind is CATEGORIES:
            return await self._insert_with_slug(item)
        try:
            await self.documents.insert(self.kind.collection, item)
        except DuplicateKey:
            raise field_error("name", f"a {self.kind.label} with this name already exists.") from None
        return item

    async def _insert_with_slug(self, item: dict[str, Any]) -> dict[str, Any]:
        base = slugify(item["name"])
        for attempt in range(1, 100):
            item["slug"] = base if attempt == 1 else f"{base}-{attempt}"
            try:
                await self.documents.insert(self.kind.collection, item)
                return item
            except DuplicateKey:
                continue
        raise GatewayError(409, "slug_exhausted", f"too many categories named like {item['name']!r}")

    async def update(self, user: User, item_id: int, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        self._require_staff(user)
        await self.get(item_id)
        cleaned = self._clean(body, partial=partial)
        try:
            updated = await self.documents.update(self.kind.collection, item_id,
                                                  {**cleaned, "lastmod_datetime": clock.now()})
        except DuplicateKey:
            raise field_error("name", f"a {self.kind.label} with this name already exists.") from None
        if updated is None:
            raise not_found(self.kind.label)
        return updated

    async def delete(self, user: User, item_id: int) -> None:
        self._require_staff(user)
        if not await self.documents.delete(self.kind.collection, item_id):
            raise not_found(self.kind.label)
