"""The document store port: a few JSON-document collections with compare-and-set.

Every document is a JSON object with a string or integer ``id``. Filters are dicts
of field -> value (equality) or field -> {"$lt"|"$lte"|"$gt"|"$gte"|"$ne"|"$in": v},
or {"$has": v} for "the array field contains v", or {"$contains": "text"} for "the string
field contains this text" (case-sensitive: callers store and ask in one case);
dotted field names reach into nested objects. That subset is all the core needs,
and both MongoDB and SQLite (through json_extract) evaluate it natively.

Repositories in ``gateway.core`` are built on this port; adapters know nothing of
media or uploads. ``matches`` is the reference semantics of a filter.
"""
from __future__ import annotations

from typing import Any, Iterable, Protocol

from storage.errors import ObjectNotFound

Document = dict[str, Any]
Filter = dict[str, Any]

COLLECTIONS = ("users", "media", "uploads", "jobs", "categories", "tags", "statuses", "job_results",
               "upload_tags", "upload_requests")
# Secondary indexes created at start-up: collection -> fields (unique marked with "!").
INDEXES: dict[str, tuple[str, ...]] = {
    "users": ("!username", "!token_hash"),
    "media": ("user_id", "added_at", "!hash_code"),
    "uploads": ("user_id", "expires_at"),
    "jobs": ("status", "run_after", "lease_until"),
    "categories": ("!slug", "order"),
    "tags": ("!name",),
    "statuses": ("author_id", "added_at"),
    "job_results": ("expires_at",),
    "upload_tags": ("user_id",),
    # not unique: presigned requests have no token, and 256 random bits do not collide
    "upload_requests": ("token_hash", "expires_at"),
}


class DocumentStore(Protocol):
    name: str

    async def open(self) -> None:
        """Connect and create collections and indexes (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the store answers."""

    async def insert(self, collection: str, doc: Document) -> None:
        """Insert ``doc`` (which has an ``id``); DuplicateKey if it exists."""

    async def get(self, collection: str, id: Any) -> Document | None: ...

    async def find(
        self,
        collection: str,
        where: Filter | None = None,
        *,
        sort: Iterable[tuple[str, int]] = (),
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Document]: ...

    async def count(self, collection: str, where: Filter | None = None) -> int: ...

    async def update(
        self, collection: str, id: Any, changes: Document, *, expect: Filter | None = None
    ) -> Document | None:
        """Set top-level ``changes`` on the document if it exists and matches ``expect``.

        Atomic compare-and-set: returns the updated document, or None when the
        document is missing or no longer matches (somebody else won the race).
        """

    async def delete(self, collection: str, id: Any, *, expect: Filter | None = None) -> bool: ...

    async def next_id(self, sequence: str) -> int:
        """A strictly increasing integer (media ids), shared by every instance."""


class BlobStaging(Protocol):
    """Optional capability: small binary pieces, durable and shared like documents.

    The S3 adapter stages chunks smaller than a part here until they add up to one
    (a 200 KiB write to the document store is far cheaper than an S3 PUT). Keys are
    strings; ``delete_blob_prefix`` removes everything of one upload. Pieces stay at
    ``MAX_BLOB`` bytes or less (MongoDB's 16 MB document limit, with room to spare).
    """

    async def put_blob(self, key: str, data: bytes) -> None: ...

    async def get_blobs(self, keys: list[str]) -> list[bytes]:
        """The pieces in the order asked; ObjectNotFound if any is missing."""

    async def delete_blobs(self, keys: list[str]) -> None: ...

    async def delete_blob_prefix(self, prefix: str) -> None: ...


MAX_BLOB = 4 * 1024 * 1024


def blobs_in_order(found: dict[str, bytes], keys: list[str]) -> list[bytes]:
    """``get_blobs``' answer from what an adapter found: in the order asked, all or ObjectNotFound."""
    missing = [key for key in keys if key not in found]
    if missing:
        raise ObjectNotFound(missing[0])
    return [found[key] for key in keys]


def get_path(doc: Document, dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _cmp(value: Any, op: str, operand: Any) -> bool:
    if op == "$ne":
        return value != operand
    if op == "$in":
        return value in operand
    if op == "$has":
        return isinstance(value, list) and operand in value
    if op == "$contains":
        return isinstance(value, str) and operand in value
    if value is None:
        return False
    return {
        "$lt": value < operand,
        "$lte": value <= operand,
        "$gt": value > operand,
        "$gte": value >= operand,
    }[op]


def matches(doc: Document, where: Filter | None) -> bool:
    for field, cond in (where or {}).items():
        value = get_path(doc, field)
        if isinstance(cond, dict):
            if not all(_cmp(value, op, operand) for op, operand in cond.items()):
                return False
        elif value != cond:
            return False
    return True
