"""In-memory test double of the document store port, for unit tests of core logic
only (the contract suite runs the real adapters)."""
from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from typing import Any, Iterable

from storage.documents.port import COLLECTIONS, INDEXES, Document, Filter, get_path, matches
from storage.errors import DuplicateKey


class MemoryDocumentStore:
    name = "memory"

    def __init__(self) -> None:
        self.data: dict[str, dict[Any, Document]] = {c: {} for c in COLLECTIONS}
        self.sequences: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def insert(self, collection: str, doc: Document) -> None:
        table = self.data[collection]
        unique = [f[1:] for f in INDEXES.get(collection, ()) if f.startswith("!")]
        if doc["id"] in table or any(
            doc.get(f) is not None and any(o.get(f) == doc.get(f) for o in table.values()) for f in unique
        ):
            raise DuplicateKey(f"{collection} {doc['id']}")
        table[doc["id"]] = copy.deepcopy(doc)

    async def get(self, collection: str, id: Any) -> Document | None:
        return copy.deepcopy(self.data[collection].get(id))

    async def find(self, collection: str, where: Filter | None = None, *, sort: Iterable[tuple[str, int]] = (),
                   limit: int | None = None, skip: int = 0) -> list[Document]:
        found = [d for d in self.data[collection].values() if matches(d, where)]
        for field, direction in reversed(list(sort)):
            found.sort(key=lambda d: (get_path(d, field) is None, get_path(d, field)), reverse=direction < 0)
        found = found[skip:]
        return copy.deepcopy(found[:limit] if limit is not None else found)

    async def count(self, collection: str, where: Filter | None = None) -> int:
        return len(await self.find(collection, where))

    async def update(self, collection: str, id: Any, changes: Document, *, expect: Filter | None = None):
        doc = self.data[collection].get(id)
        if doc is None or not matches(doc, expect):
            return None
        doc.update(copy.deepcopy(changes))
        return copy.deepcopy(doc)

    async def delete(self, collection: str, id: Any, *, expect: Filter | None = None) -> bool:
        doc = self.data[collection].get(id)
        if doc is None or not matches(doc, expect):
            return False
        del self.data[collection][id]
        return True

    async def next_id(self, sequence: str) -> int:
        return next(self.sequences[sequence])
