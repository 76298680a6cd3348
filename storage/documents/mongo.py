"""MongoDB document store through PyMongo's async client.

Documents keep their ``id`` in ``_id``; the port's filter subset is MongoDB's own
query language, so filters pass through unchanged. Compare-and-set is
``find_one_and_update({_id, **expect}, {$set})``, atomic on the server. Writes use
majority write concern with journaling, so an acknowledged offset survives a
primary failover. Driver errors become storage errors here and nowhere else.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from bson import Binary

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from storage.counting import counted
from storage.documents.port import COLLECTIONS, INDEXES, Document, Filter, blobs_in_order
from storage.errors import BackendUnavailable, DuplicateKey, StorageError

BLOBS = "staged_blobs"


def _to_mongo(doc: Document) -> Document:
    stored = dict(doc)
    stored["_id"] = stored.pop("id")
    return stored


def _from_mongo(stored: Document | None) -> Document | None:
    if stored is None:
        return None
    doc = dict(stored)
    doc["id"] = doc.pop("_id")
    return doc


def _query(where: Filter | None) -> Filter:
    query = {}
    for field, cond in (where or {}).items():
        if isinstance(cond, dict) and "$has" in cond:
            cond = {**cond, "$elemMatch": {"$eq": cond["$has"]}}
            del cond["$has"]
        if isinstance(cond, dict) and "$contains" in cond:
            cond = {**cond, "$regex": re.escape(cond["$contains"])}
            del cond["$contains"]
        query["_id" if field == "id" else field] = cond
    return query


class MongoDocumentStore:
    name = "mongodb"

    def __init__(self, uri: str, database: str = "gateway", *, timeout: float = 5.0) -> None:
        self.uri = uri
        # A database named in the URI wins over the setting, as every Mongo tool does.
        self.database_name = parse_uri(uri).get("database") or database
        self.timeout = timeout
        self._client: AsyncMongoClient | None = None
        self._db = None
        self.requests: Counter[str] = Counter()

    async def open(self) -> None:
        ms = int(self.timeout * 1000)
        # timeoutMS (client-side operation timeout) bounds each whole operation: server
        # selection, connecting, retrying and waiting for the reply. Without it a frozen
        # server held a request for socketTimeoutMS (30 s) whatever GATEWAY_BACKEND_TIMEOUT said.
        self._client = AsyncMongoClient(self.uri, timeoutMS=ms, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                        tz_aware=False)
        self._db = self._client.get_database(self.database_name, write_concern=WriteConcern(w="majority", j=True))
        try:
            for collection, specs in INDEXES.items():
                for spec in specs:
                    unique, field = spec.startswith("!"), spec.lstrip("!")
                    options: dict[str, Any] = {"name": f"ix_{field}"}
                    if unique:
                        options.update(unique=True, partialFilterExpression={field: {"$exists": True}})
                    await self._db[collection].create_index([(field, ASCENDING)], **options)
        except PyMongoError as exc:
            raise self._translated(exc) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _collection(self, collection: str, *, internal: bool = False):
        if collection not in COLLECTIONS and not internal:
            raise StorageError(f"unknown collection {collection!r}")
        if self._db is None:
            raise BackendUnavailable("mongodb", "not open")
        return self._db[collection]

    @staticmethod
    def _translated(exc: PyMongoError) -> StorageError:
        if isinstance(exc, DuplicateKeyError):
            return DuplicateKey(str(exc))
        if isinstance(exc, (ConnectionFailure, ServerSelectionTimeoutError)):
            return BackendUnavailable("mongodb", type(exc).__name__)
        return BackendUnavailable("mongodb", str(exc)[:200])

    async def _call(self, awaitable):
        try:
            return await awaitable
        except PyMongoError as exc:
            raise self._translated(exc) from exc

    async def ping(self) -> None:
        if self._client is None:
            raise BackendUnavailable("mongodb", "not open")
        await self._call(self._client.admin.command("ping"))

    @counted
    async def insert(self, collection: str, doc: Document) -> None:
        await self._call(self._collection(collection).insert_one(_to_mongo(doc)))

    @counted
    async def get(self, collection: str, id: Any) -> Document | None:
        return _from_mongo(await self._call(self._collection(collection).find_one({"_id": id})))

    @counted
    async def find(self, collection: str, where: Filter | None = None, *, sort: Iterable[tuple[str, int]] = (),
                   limit: int | None = None, skip: int = 0) -> list[Document]:
        cursor = self._collection(collection).find(_query(where), skip=skip, limit=limit or 0)
        order = [("_id" if f == "id" else f, DESCENDING if d < 0 else ASCENDING) for f, d in sort]
        if order:
            cursor = cursor.sort(order)
        return [_from_mongo(d) for d in await self._call(cursor.to_list())]

    @counted
    async def count(self, collection: str, where: Filter | None = None) -> int:
        return await self._call(self._collection(collection).count_documents(_query(where)))

    @counted
    async def update(self, collection: str, id: Any, changes: Document, *,
                     expect: Filter | None = None) -> Document | None:
        query = {**_query(expect), "_id": id}
        if not changes:
            return _from_mongo(await self._call(self._collection(collection).find_one(query)))
        updated = await self._call(self._collection(collection).find_one_and_update(
            query, {"$set": changes}, return_document=ReturnDocument.AFTER))
        return _from_mongo(updated)

    @counted
    async def delete(self, collection: str, id: Any, *, expect: Filter | None = None) -> bool:
        result = await self._call(self._collection(collection).delete_one({**_query(expect), "_id": id}))
        return result.deleted_count > 0

    @counted
    async def next_id(self, sequence: str) -> int:
        counters = self._collection("counters", internal=True)  # next_id's own: not a port collection
        while True:
            # No upsert: concurrent first upserts may collide (or, on some servers, return
            # nothing); create the counter once, then only ever $inc it.
            counter = await self._call(counters.find_one_and_update(
                {"_id": sequence}, {"$inc": {"value": 1}}, return_document=ReturnDocument.AFTER))
            if counter is not None:
                return counter["value"]
            try:
                await self._call(counters.insert_one({"_id": sequence, "value": 0}))
            except DuplicateKey:
                pass

    # BlobStaging: staged chunks as BSON binary, at most MAX_BLOB (4 MiB) each

    def _blobs(self):
        if self._db is None:
            raise BackendUnavailable("mongodb", "not open")
        return self._db[BLOBS]

    @counted
    async def put_blob(self, key: str, data: bytes) -> None:
        await self._call(self._blobs().replace_one({"_id": key}, {"_id": key, "data": Binary(data)}, upsert=True))

    @counted
    async def get_blobs(self, keys: list[str]) -> list[bytes]:
        found = {d["_id"]: bytes(d["data"]) for d in await self._call(self._blobs().find({"_id": {"$in": keys}})
                                                                      .to_list())}
        return blobs_in_order(found, keys)

    @counted
    async def delete_blobs(self, keys: list[str]) -> None:
        if keys:
            await self._call(self._blobs().delete_many({"_id": {"$in": keys}}))

    @counted
    async def delete_blob_prefix(self, prefix: str) -> None:
        await self._call(self._blobs().delete_many({"_id": {"$gte": prefix, "$lt": prefix + "\U0010ffff"}}))
