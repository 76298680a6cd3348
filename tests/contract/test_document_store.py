"""The document store port, run against SQLite and MongoDB (SecantusDB) alike."""
from __future__ import annotations

import asyncio

import pytest

from storage.errors import DuplicateKey


async def test_insert_get_and_duplicate_id(document_store):
    await document_store.insert("uploads", {"id": "a1", "offset": 0, "meta": {"name": "x.jpg"}})
    assert await document_store.get("uploads", "a1") == {"id": "a1", "offset": 0, "meta": {"name": "x.jpg"}}
    assert await document_store.get("uploads", "missing") is None
    with pytest.raises(DuplicateKey):
        await document_store.insert("uploads", {"id": "a1"})


async def test_unique_index_rejects_second_value_but_allows_missing(document_store):
    await document_store.insert("media", {"id": 1, "hash_code": "h1"})
    await document_store.insert("media", {"id": 2})
    await document_store.insert("media", {"id": 3})
    with pytest.raises(DuplicateKey):
        await document_store.insert("media", {"id": 4, "hash_code": "h1"})
    assert await document_store.count("media") == 3


async def test_find_filters_sort_limit_skip(document_store):
    for i in range(6):
        await document_store.insert("media", {"id": i + 1, "user_id": i % 2, "added_at": 100 + i,
                                              "flags": {"public": i < 3}})
    assert [d["id"] for d in await document_store.find("media", {"user_id": 1}, sort=[("added_at", -1)])] == [6, 4, 2]
    assert [d["id"] for d in await document_store.find("media", {"added_at": {"$gte": 102, "$lt": 105}},
                                                       sort=[("id", 1)])] == [3, 4, 5]
    assert [d["id"] for d in await document_store.find("media", {"id": {"$in": [2, 5, 9]}}, sort=[("id", 1)])] == [2, 5]
    assert [d["id"] for d in await document_store.find("media", {"flags.public": True}, sort=[("id", 1)])] == [1, 2, 3]
    assert [d["id"] for d in await document_store.find("media", sort=[("id", 1)], limit=2, skip=3)] == [4, 5]
    assert await document_store.count("media", {"user_id": {"$ne": 0}}) == 3
    assert await document_store.find("media", {"missing": None}, limit=1)


async def test_compare_and_set_update(document_store):
    await document_store.insert("uploads", {"id": "u", "offset": 0, "lease_id": None})
    won = await document_store.update("uploads", "u", {"offset": 10, "md5_state": "abc"}, expect={"offset": 0})
    assert won == {"id": "u", "offset": 10, "lease_id": None, "md5_state": "abc"}
    assert await document_store.update("uploads", "u", {"offset": 20}, expect={"offset": 0}) is None
    assert (await document_store.get("uploads", "u"))["offset"] == 10
    assert await document_store.update("uploads", "nope", {"offset": 1}) is None
    nested = await document_store.update("uploads", "u", {"meta": {"a": [1, 2]}}, expect={"lease_id": None})
    assert nested["meta"] == {"a": [1, 2]}


async def test_concurrent_compare_and_set_has_one_winner(document_store):
    await document_store.insert("uploads", {"id": "race", "offset": 0})
    results = await asyncio.gather(*(
        document_store.update("uploads", "race", {"offset": 5, "winner": n}, expect={"offset": 0}) for n in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await document_store.get("uploads", "race"))["winner"] == winners[0]["winner"]


async def test_delete_with_expectation(document_store):
    await document_store.insert("media", {"id": 7, "user_id": 1})
    assert not await document_store.delete("media", 7, expect={"user_id": 2})
    assert await document_store.delete("media", 7, expect={"user_id": 1})
    assert not await document_store.delete("media", 7)
    assert await document_store.get("media", 7) is None


async def test_next_id_is_strictly_increasing(document_store):
    ids = await asyncio.gather(*(document_store.next_id("media") for _ in range(10)))
    assert sorted(ids) == list(range(1, 11))
    assert await document_store.next_id("users") == 1


async def test_array_contains(document_store):
    await document_store.insert("statuses", {"id": 1, "media_ids": [3, 4]})
    await document_store.insert("statuses", {"id": 2, "media_ids": [4]})
    await document_store.insert("statuses", {"id": 3, "media_ids": []})
    found = await document_store.find("statuses", {"media_ids": {"$has": 4}}, sort=[("id", 1)])
    assert [d["id"] for d in found] == [1, 2]
    assert [d["id"] for d in await document_store.find("statuses", {"media_ids": {"$has": 3}})] == [1]


async def test_string_contains(document_store):
    for doc_id, text in ((1, "sunset over the bay"), (2, "the bay at night"), (3, "a.*b [x]"), (4, None)):
        await document_store.insert("media", {"id": doc_id, "search_text": text})
    found = await document_store.find("media", {"search_text": {"$contains": "bay"}}, sort=[("id", 1)])
    assert [d["id"] for d in found] == [1, 2]
    # The text is literal: no pattern syntax, no case folding.
    assert [d["id"] for d in await document_store.find("media", {"search_text": {"$contains": ".*b ["}})] == [3]
    assert await document_store.count("media", {"search_text": {"$contains": "Bay"}}) == 0
