"""SQLite shared by several gateway processes: a write lock held elsewhere makes a
statement wait at most the backend timeout, then BackendUnavailable (503), not 30 s."""
from __future__ import annotations

import sqlite3
import time

import pytest

from config.settings import load_settings
from gateway.backends import document_store
from storage.errors import BackendUnavailable

TIMEOUT = 0.5


async def test_a_write_lock_held_by_another_process_is_unavailable_within_the_timeout(tmp_path):
    store = document_store(load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path),
                                                  "GATEWAY_BACKEND_TIMEOUT": str(TIMEOUT)}))
    await store.open()
    other = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another instance in the middle of a write
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as raised:
            await store.insert("uploads", {"id": "u1", "offset": 0})
        assert raised.value.backend == "sqlite" and "locked" in str(raised.value)
        assert time.monotonic() - started < TIMEOUT + 1.0
        other.execute("ROLLBACK")
        await store.insert("uploads", {"id": "u1", "offset": 0})  # the lock is gone: writes work again
        assert (await store.get("uploads", "u1"))["offset"] == 0
    finally:
        other.close()
        await store.close()
