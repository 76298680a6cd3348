"""GET /openapi.json: a valid OpenAPI 3.1 document that covers every route, and whose
schemas describe what the gateway really answers (checked on real uploads)."""
from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from config.settings import load_settings
from gateway import openapi
from gateway.app import create_app
from gateway.keys import USERS
from storage.documents.sqlite import SqliteDocumentStore
from storage.errors import BackendUnavailable
from tests.chunking import complete, processed, send_chunk, upload_chunks, upload_media
from tests.media_files import jpeg, pdf_like

UNDOCUMENTED_METHODS = {"HEAD", "OPTIONS"}  # HEAD mirrors GET; neither is listed (contract)


def routed(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def undocumented(app: web.Application, document: dict) -> set[tuple[str, str]]:
    """Routes missing from the document; HEAD and OPTIONS only where they are more than
    aiohttp's automatic HEAD of a GET (tus documents its own)."""
    return {(method, path) for method, path in routed(app) - set(openapi.operations(document))
            if method not in UNDOCUMENTED_METHODS}


@pytest.fixture
async def client(tmp_path):
    settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "1"})
    started = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await started.start_server()
    yield started
    await started.close()


async def served_document(client) -> dict:
    reply = await client.get("/openapi.json")
    assert reply.status == 200 and reply.content_type == "application/json"
    return await reply.json()


async def test_the_document_is_valid_openapi_3_1(client):
    document = await served_document(client)
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on an invalid document or a dangling $ref
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["tokenAuth"] == {**schemes["tokenAuth"], "type": "apiKey", "in": "header", "name": "Authorization"}
    assert (await client.get("/openapi.json/")).status == 200  # the other slash form, like every route


async def test_every_route_is_documented_and_every_operation_routed(client):
    document = await served_document(client)
    assert undocumented(client.app, document) == set()
    assert set(openapi.operations(document)) - routed(client.app) == set(), "documented but not routed"


async def test_a_route_added_without_docs_is_caught(client, tmp_path):
    app = create_app(load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path / "other")}))

    async def secret(request):
        return web.json_response({})

    app.router.add_get("/api/v2/undocumented/", secret)
    assert undocumented(app, openapi.build(app)) == {("GET", "/api/v2/undocumented/")}


async def test_every_operation_documents_its_errors(client):
    document = await served_document(client)
    for method, path in openapi.operations(document):
        operation = document["paths"][path][method.lower()]
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), (method, path)
        if operation.get("security", document["security"]):  # needs a token
            assert "401" in responses, (method, path)
        has_input = operation.get("parameters") or document["paths"][path].get("parameters") or "requestBody" in operation
        if has_input and method != "OPTIONS":  # a tus preflight answers whatever it is sent
            # DatoCMS reports bad input as 422 (INVALID_FIELD, INVALID_FILTER, INVALID_FORMAT), and an id
            # that is not one of its ids (its only input on some routes) as 404 NOT_FOUND
            only_an_id = not operation.get("parameters") and "requestBody" not in operation
            dato = path.startswith("/dato/") and ("422" in responses or (only_an_id and "404" in responses))
            assert "400" in responses or dato or path in ("/content/{hash_code}/{name}", "/thumbnails/{hash_code}/{size}",
                                                  "/previews/{hash_code}") or (method, path) == (
                "GET", "/files/{upload_id}"), (method, path)  # byte-serving routes: a bad Range is ignored
        assert "500" not in responses and "499" not in responses


class Conforms:
    """Checks a JSON body against a schema of the served document."""

    def __init__(self, document: dict) -> None:
        self.registry = Registry().with_resource("urn:gateway", Resource.from_contents(
            document, default_specification=DRAFT202012))
        self.document = document

    def __call__(self, body, path: str, method: str, status: int) -> None:
        """Validate through the document itself, so its local ``$ref``s resolve."""
        response = self.document["paths"][path][method]["responses"][str(status)]
        pointer = ["paths", path, method, "responses", str(status)]
        if "$ref" in response:
            pointer = ["components", "responses", response["$ref"].rsplit("/", 1)[1]]
        pointer += ["content", "application/json", "schema"]
        escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in pointer)
        Draft202012Validator({"$ref": f"urn:gateway#/{escaped}"}, registry=self.registry).validate(body)


async def test_real_answers_match_their_schemas(client):
    conforms = Conforms(await served_document(client))
    user, token = await client.app[USERS].add("docs-admin", admin=True)
    auth = {"Authorization": f"Bearer {token}"}

    image = jpeg(900, 600)
    first = await send_chunk(client, auth, image[:1000], 0, len(image))
    conforms(await first.json(), "/api/v2/media/upload/chunk/", "post", 200)
    wrong = await send_chunk(client, auth, image[:10], 5, len(image), (await first.json())["upload_id"])
    assert wrong.status == 400
    conforms(await wrong.json(), "/api/v2/media/upload/chunk/", "post", 400)

    media = await upload_media(client, auth, image, "image")
    conforms(media, "/api/v2/media/upload/complete/", "post", 201)
    conforms(await processed(client, auth, media["id"]), "/api/v2/media/{id}/", "get", 200)
    pdf = pdf_like()
    document_media = await complete(client, auth, await upload_chunks(client, auth, pdf, field="document"), pdf,
                                    "document")
    conforms(await document_media.json(), "/api/v2/media/upload/complete/", "post", 201)
    listed = await client.get("/api/v2/media/", headers=auth, params={"limit": "1"})
    conforms(await listed.json(), "/api/v2/media/", "get", 200)
    embed = await client.post("/api/v2/media/", headers=auth, json={"type": "embed", "embed_type": "x",
                                                                     "embed_id": "1", "metadata": {"a": 1}})
    conforms(await embed.json(), "/api/v2/media/", "post", 201)
    refused = await client.post("/api/v2/media/", headers=auth, json={"type": "url", "url": "http://127.0.0.1/"})
    assert refused.status == 400
    conforms(await refused.json(), "/api/v2/media/", "post", 400)

    category = await client.post("/api/v2/category/", headers=auth, json={"name": "News"})
    conforms(await category.json(), "/api/v2/category/", "post", 201)
    tag = await client.post("/api/v2/tag/", headers=auth, json={"name": "hot"})
    conforms(await tag.json(), "/api/v2/tag/", "post", 201)
    status = await client.post("/api/v2/status/", headers=auth, json={
        "action": "postupdate", "text": "hi @docs-admin", "categories": [(await category.json())["id"]],
        "medias": [media["id"]], "addressing": [(await tag.json())["id"]],
        "location": {"location": "Rome", "lat": 41.9, "lng": 12.5}})
    assert status.status == 201, await status.text()
    conforms(await status.json(), "/api/v2/status/", "post", 201)
    conforms(await (await client.get("/api/v2/status/", headers=auth)).json(), "/api/v2/status/", "get", 200)

    files = await client.get("/api/media/files/", headers=auth)
    conforms(await files.json(), "/api/media/files/", "get", 200)
    conforms(await (await client.get("/health/ready")).json(), "/health/ready", "get", 200)
    anonymous = await client.get("/api/v2/media/")
    conforms(await anonymous.json(), "/api/v2/media/", "get", 401)
    missing = await client.get("/api/v2/media/999999/", headers=auth)
    conforms(await missing.json(), "/api/v2/media/{id}/", "get", 404)


class FlakyStore(SqliteDocumentStore):
    """The embedded store, until ``down`` is set: then every read fails like a lost backend."""
    down = False

    async def find(self, *args, **kwargs):
        if self.down:
            raise BackendUnavailable("sqlite", "gone for the test")
        return await super().find(*args, **kwargs)

    async def ping(self) -> None:
        if self.down:
            raise BackendUnavailable("sqlite", "gone for the test")
        await super().ping()


async def test_an_outage_is_the_documented_503(tmp_path):
    store = FlakyStore(tmp_path / "gateway.sqlite3")
    client = TestClient(TestServer(create_app(load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path)}),
                                              documents=store), host="127.0.0.1"))
    await client.start_server()
    try:
        conforms = Conforms(await served_document(client))
        _, token = await client.app[USERS].add("outage")
        store.down = True
        reply = await client.get("/api/v2/media/", headers={"Authorization": f"Bearer {token}"})
        assert reply.status == 503 and reply.headers["Retry-After"].isdigit()
        conforms(await reply.json(), "/api/v2/media/", "get", 503)
        ready = await client.get("/health/ready")
        assert ready.status == 503 and "Retry-After" in ready.headers
        conforms(await ready.json(), "/health/ready", "get", 503)
    finally:
        await client.close()
