"""Shared fixtures: real servers (tests/fixtures_servers.py), the four backend
stacks, gateway apps on those stacks, and HTTP helpers that speak like clients."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS
from storage.documents.mongo import MongoDocumentStore
from storage.documents.sqlite import SqliteDocumentStore
from storage.objects.local import LocalObjectStore
from storage.objects.s3 import S3ObjectStore
from tests.fixtures_servers import *  # noqa: F401,F403  (seaweedfs, secantusdb, document_store)

MiB = 1024 * 1024
STACKS = ["local+sqlite", "local+mongodb", "s3+sqlite", "s3+mongodb"]
S3_BUCKET = "gateway-tests"


@dataclass
class Stack:
    """One backend combination; ``app()`` makes a gateway instance on it (call twice
    for two stateless instances sharing the same stores)."""

    name: str
    settings_env: dict
    make_documents: object
    make_objects: object
    clients: list = field(default_factory=list)

    @property
    def objects_kind(self) -> str:
        return self.name.split("+")[0]

    async def client(self, **env) -> TestClient:
        settings = load_settings(environ={**self.settings_env, **{k.upper(): str(v) for k, v in env.items()}})
        documents = self.make_documents()
        app = create_app(settings, documents=documents, objects=self.make_objects(settings, documents))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        self.clients.append(client)
        return client

    async def user(self, client: TestClient, name: str | None = None, **roles) -> dict:
        user, token = await client.app[USERS].add(name or f"u{uuid.uuid4().hex[:10]}", **roles)
        return {"id": user.id, "name": user.username, "auth": {"Authorization": f"Bearer {token}"}}


@pytest.fixture
def quiet_log(caplog):
    """Fails the test if the gateway logged an error or a traceback while it ran."""
    caplog.set_level(logging.INFO)
    yield
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]


@pytest.fixture(params=STACKS)
async def stack(request, tmp_path):
    objects_kind, documents_kind = request.param.split("+")
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_OBJECT_STORE": objects_kind,
           "GATEWAY_DOCUMENT_STORE": documents_kind, "GATEWAY_S3_PART_SIZE": str(5 * MiB)}
    if documents_kind == "mongodb":
        mongo = request.getfixturevalue("secantusdb")
        database = f"t{uuid.uuid4().hex[:12]}"
        make_documents = lambda: MongoDocumentStore(mongo.uri, database, timeout=10)  # noqa: E731
    else:
        make_documents = lambda: SqliteDocumentStore(tmp_path / "gateway.sqlite3")  # noqa: E731
    if objects_kind == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        env.update(GATEWAY_S3_ENDPOINT=s3.endpoint, GATEWAY_S3_BUCKET=S3_BUCKET,
                   GATEWAY_S3_ACCESS_KEY=s3.access_key, GATEWAY_S3_SECRET_KEY=s3.secret_key)
        make_objects = lambda settings, documents: S3ObjectStore(  # noqa: E731
            endpoint=s3.endpoint, bucket=S3_BUCKET, region="us-east-1", access_key=s3.access_key,
            secret_key=s3.secret_key, part_size=settings.s3_part_size, staging=documents,
            public_endpoint=settings.s3_public_endpoint)
    else:
        make_objects = lambda settings, documents: LocalObjectStore(tmp_path)  # noqa: E731
    built = Stack(request.param, env, make_documents, make_objects)
    yield built
    for client in built.clients:
        await client.close()
