"""Session-wide real servers, and a document store fixture over every adapter."""
from __future__ import annotations

import uuid

import pytest

from storage.documents.mongo import MongoDocumentStore
from storage.documents.sqlite import SqliteDocumentStore
from tests.servers import SeaweedFS, SecantusDB

__all__ = ["seaweedfs", "secantusdb", "document_store"]


@pytest.fixture(scope="session")
def seaweedfs():
    with SeaweedFS() as server:
        yield server


@pytest.fixture(scope="session")
def secantusdb():
    with SecantusDB() as server:
        yield server


@pytest.fixture(params=["sqlite", "mongodb"])
async def document_store(request, tmp_path):
    if request.param == "mongodb":
        store = MongoDocumentStore(request.getfixturevalue("secantusdb").uri, f"t{uuid.uuid4().hex[:12]}", timeout=10)
    else:
        store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    await store.open()
    yield store
    await store.close()
