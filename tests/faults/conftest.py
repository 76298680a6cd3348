"""Fixtures for fault injection: servers of our own (the session-wide ones are shared
by other tests and must never be frozen or killed), and gateways built from settings
exactly as ``gateway serve`` builds them, so GATEWAY_BACKEND_TIMEOUT reaches every store."""
from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from gateway.app import create_app
from gateway.keys import USERS
from storage.objects.s3 import S3ObjectStore
from tests.servers import SeaweedFS, SecantusDB, _Server

MiB = 1024 * 1024
BACKEND_TIMEOUT = 3.0  # seconds: small, so a hung backend shows within a test's patience
S3_BUCKET = "gateway-faults"


def _own(server: _Server) -> _Server:
    if server.external:
        pytest.skip("fault injection needs a server this suite starts (not GATEWAY_TEST_* endpoints)")
    return server


def _running_again(server: _Server) -> None:
    """After a test (passed or not), leave the module's server answering for the next one."""
    server.resume()
    if server.process is None or server.process.poll() is not None:
        server.restart()


def _warmed_up(server: SeaweedFS) -> SeaweedFS:
    """Create the bucket and write once: a fresh SeaweedFS grows its first volumes on
    the first write, which on a loaded machine can outlast the tests' short timeout."""
    async def first_write():
        store = S3ObjectStore(endpoint=server.endpoint, bucket=S3_BUCKET, region="us-east-1",
                              access_key=server.access_key, secret_key=server.secret_key,
                              part_size=5 * MiB, staging=None, timeout=60)
        await store.open()
        try:
            await store.put("warm-up", b"x")
        finally:
            await store.close()

    # Its own thread: the fixture may be set up from inside a running test loop.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, first_write()).result()
    return server


@pytest.fixture(scope="module")
def weed_server():
    with SeaweedFS() as server:
        yield _warmed_up(_own(server))


@pytest.fixture(scope="module")
def secantus_server():
    with SecantusDB() as server:
        yield _own(server)


@pytest.fixture
def weed(weed_server):
    yield weed_server
    _running_again(weed_server)


@pytest.fixture
def secantus(secantus_server):
    yield secantus_server
    _running_again(secantus_server)


class Gateways:
    """Gateway instances on real stores; ``start(objects=..., documents=...)`` picks the stack."""

    def __init__(self, tmp_path, request) -> None:
        self.tmp_path = tmp_path
        self.request = request
        self.clients: list[TestClient] = []

    def env(self, objects: str, documents: str, **extra) -> dict[str, str]:
        env = {"GATEWAY_DATA_DIR": str(self.tmp_path), "GATEWAY_OBJECT_STORE": objects,
               "GATEWAY_DOCUMENT_STORE": documents, "GATEWAY_S3_PART_SIZE": str(5 * MiB),
               "GATEWAY_BACKEND_TIMEOUT": str(BACKEND_TIMEOUT), "GATEWAY_READY_TIMEOUT": "1",
               "GATEWAY_WORKERS": "0"}
        if objects == "s3":
            s3 = self.request.getfixturevalue("weed")
            env.update(GATEWAY_S3_ENDPOINT=s3.endpoint, GATEWAY_S3_BUCKET=S3_BUCKET,
                       GATEWAY_S3_ACCESS_KEY=s3.access_key, GATEWAY_S3_SECRET_KEY=s3.secret_key)
        if documents == "mongodb":
            mongo = self.request.getfixturevalue("secantus")
            env.update(GATEWAY_MONGODB_URI=mongo.uri, GATEWAY_MONGODB_DATABASE=f"f{uuid.uuid4().hex[:12]}")
        return {**env, **{k: str(v) for k, v in extra.items()}}

    async def start(self, objects: str, documents: str, **extra) -> TestClient:
        app = create_app(load_settings(environ=self.env(objects, documents, **extra)))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        self.clients.append(client)
        return client

    @staticmethod
    async def user(client: TestClient) -> dict:
        _, token = await client.app[USERS].add(f"u{uuid.uuid4().hex[:10]}")
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def gateways(tmp_path, request):
    made = Gateways(tmp_path, request)
    yield made
    for client in made.clients:
        await client.close()
