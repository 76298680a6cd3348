"""SQLite group commit: writes that arrive together share a transaction, yet each answers alone."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from storage.documents.sqlite import SqliteDocumentStore
from storage.errors import DuplicateKey, ObjectNotFound


@pytest.fixture
async def store(tmp_path):
    documents = SqliteDocumentStore(tmp_path / "gateway.sqlite3")
    await documents.open()
    yield documents
    await documents.close()


async def test_a_duplicate_in_a_batch_fails_alone(store, tmp_path):
    ids = [f"u{i}" for i in range(20)] + ["u3"]
    results = await asyncio.gather(*(store.insert("uploads", {"id": id, "offset": 0}) for id in ids),
                                   return_exceptions=True)
    assert [type(r) for r in results].count(DuplicateKey) == 1
    assert isinstance(results[-1], DuplicateKey)
    assert await store.count("uploads") == 20
    # Committed, not only visible to this connection.
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as other:
        assert other.execute("SELECT COUNT(*) FROM uploads").fetchone()[0] == 20


async def test_racing_compare_and_sets_in_one_batch_let_exactly_one_win(store):
    await store.insert("uploads", {"id": "s", "offset": 0})
    results = await asyncio.gather(*(store.update("uploads", "s", {"offset": 100, "by": n}, expect={"offset": 0})
                                     for n in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0]["offset"] == 100
    assert await store.get("uploads", "s") == winners[0]


async def test_staged_blobs_and_the_writes_after_them_all_land(store):
    await store.insert("uploads", {"id": "s", "offset": 0})
    await asyncio.gather(*(store.put_blob(f"t/{n}", bytes([n]) * 1000) for n in range(5)),
                         store.update("uploads", "s", {"offset": 5000}, expect={"offset": 0}),
                         store.next_id("media"), store.next_id("media"))
    assert await store.get_blobs([f"t/{n}" for n in range(5)]) == [bytes([n]) * 1000 for n in range(5)]
    assert (await store.get("uploads", "s"))["offset"] == 5000
    assert await store.next_id("media") == 3
    await store.delete_blob_prefix("t/")
    assert await store.delete("uploads", "s") is True
    assert await store.delete("uploads", "s") is False


async def test_a_new_file_gets_16_kib_pages_and_an_old_one_keeps_its_own(tmp_path):
    """Staged chunks are chains of overflow pages: bigger pages, far fewer system calls.
    A file made with another page size (before this) stays as it is and keeps working."""
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as made_before:
        made_before.execute("PRAGMA page_size=4096")
        made_before.execute("PRAGMA journal_mode=WAL")
        made_before.execute("CREATE TABLE kept (id PRIMARY KEY)")
    for path, pages in ((tmp_path / "new.sqlite3", 16384), (old, 4096)):
        documents = SqliteDocumentStore(path)
        await documents.open()
        try:
            await documents.put_blob("k/1", b"x" * 300_000)
            assert await documents.get_blobs(["k/1"]) == [b"x" * 300_000]
        finally:
            await documents.close()
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA page_size").fetchone()[0] == pages


async def test_deleting_a_parts_staged_chunks_does_not_write_their_bytes_again(tmp_path):
    """Debian builds SQLite with secure_delete on, which overwrote every freed page of a
    deleted blob with zeros: 8 MiB more in the WAL to drop one part's staged chunks."""
    path = tmp_path / "gateway.sqlite3"
    documents = SqliteDocumentStore(path)
    await documents.open()
    try:
        keys = [f"t/{n:02d}" for n in range(40)]
        for key in keys:
            await documents.put_blob(key, b"\x07" * 204_800)
        with sqlite3.connect(path) as other:  # an empty WAL, so its size afterwards is what the delete wrote
            assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        await documents.delete_blobs(keys)
        written = path.with_name(path.name + "-wal").stat().st_size
        assert written < 1024 * 1024, f"the delete wrote {written} bytes to the WAL"
        with pytest.raises(ObjectNotFound):
            await documents.get_blobs(keys[:1])
    finally:
        await documents.close()
