"""Schemathesis against a live gateway, from its own /openapi.json.

The gateway serves a real loopback socket (tests/openapi/live.py); the ``st`` CLI
runs as a subprocess, bounded and reproducible (a fixed number of examples per
operation, deterministic generation, one worker), three times: every operation as
an admin; sequences along the document's links (stateful); every operation's
examples and coverage cases as a plain user. Checks: no 5xx; status codes, headers,
content types and bodies as documented; a missing token refused; a created item
found and a deleted one gone.

Seeded data lets the run get past 404s: an image with thumbnails, a document, a
link media with a preview image (fetched from a loopback site the gateway is
allowed to reach), a category, a tag and a status. Operations that read or change
those get their ids or hashes from the run's config; the DELETE operations get
throwaway items, so a delete early in the run cannot empty the rest. Nothing leaves
the machine: the gateway's loop refuses DNS and non-loopback connections, so a
generated link URL fails like an unreachable site.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from config.settings import load_settings
from gateway.keys import USERS
from tests.chunking import processed, upload_media
from tests.media_files import jpeg, pdf_like, png
from tests.openapi.live import LiveGateway
from tests.servers import free_port

# By hand: FUZZ_EXAMPLES=300 for a deeper run, FUZZ_SEED=N for other (still reproducible) cases.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "50"))
GENERATION = ["--seed", os.environ["FUZZ_SEED"]] if os.environ.get("FUZZ_SEED") else ["--generation-deterministic"]
CHECKS = ("not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,"
          "response_headers_conformance,ignored_auth,missing_required_header,unsupported_method,"
          "use_after_free,ensure_resource_availability")
ROOT = Path(__file__).resolve().parents[2]
ST = [sys.executable, "-m", "schemathesis.cli"]  # the `st` command, from this interpreter's packages


def loopback_site() -> web.Application:
    """The one place the gateway may fetch from: a page with an og:image, and that image."""
    image = png(300, 200, "RGB")

    async def page(request):
        return web.Response(content_type="text/html", text=(
            f'<html><head><title>Fuzz page</title><meta property="og:image" '
            f'content="http://{request.host}/image.png"></head><body>hi</body></html>'))

    async def picture(request):
        return web.Response(body=image, content_type="image/png")

    app = web.Application()
    app.add_routes([web.get("/page", page), web.get("/image.png", picture)])
    return app


async def seed(app, base: str, site: str) -> dict:
    """Data for the run, made through the API as a client would; what the config needs."""
    _, token = await app[USERS].add("fuzz-admin", admin=True)
    _, plain_token = await app[USERS].add("fuzz-user")
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=base) as http:
        async def call(method: str, path: str, expect: int, **kwargs) -> dict:
            async with http.request(method, path, headers=auth, **kwargs) as reply:
                body = await reply.json()
                assert reply.status == expect, (method, path, body)
                return body

        image = await upload_media(http, auth, jpeg(640, 480), "image")
        image = await processed(http, auth, image["id"])
        assert image["thumbnails"], image
        document = await upload_media(http, auth, pdf_like(), "document", field="document", filename="report.pdf")
        link = await call("POST", "/api/v2/media/", 201, json={"type": "url", "url": f"{site}/page"})
        link = await call("PUT", f"/api/v2/media/{link['id']}/", 200, json={"image": f"{site}/image.png"})
        category = await call("POST", "/api/v2/category/", 201, json={"name": "Fuzz"})
        tag = await call("POST", "/api/v2/tag/", 201, json={"name": "fuzz"})
        status = await call("POST", "/api/v2/status/", 201, json={
            "action": "postupdate", "text": "seeded", "categories": [category["id"]], "medias": [image["id"]],
            "addressing": [tag["id"]]})
        throwaway = {
            "deleteMedia": (await call("POST", "/api/v2/media/", 201, json={
                "type": "embed", "embed_type": "x", "embed_id": "1"}))["id"],
            "deleteFile": (await upload_media(http, auth, pdf_like(), "document", field="document"))["id"],
            "deleteCategory": (await call("POST", "/api/v2/category/", 201, json={"name": "Gone"}))["id"],
            "deleteTag": (await call("POST", "/api/v2/tag/", 201, json={"name": "gone"}))["id"],
            "deleteStatus": (await call("POST", "/api/v2/status/", 201, json={
                "action": "postupdate", "categories": []}))["id"],
        }
    return {"token": token, "plain_token": plain_token, "image": image, "document": document, "link": link, "category": category,
            "tag": tag, "status": status, "throwaway": throwaway}


def run_config(data: dict) -> str:
    """schemathesis.toml: realistic path values per operation (by operationId)."""
    def toml(value) -> str:
        return json.dumps(value)  # TOML basic strings and integers read like JSON ones

    def operation(operation_id: str, **parameters) -> str:
        pairs = ", ".join(f"{toml(name.replace('__', '.'))} = {toml(value)}" for name, value in parameters.items())
        return f"[[operations]]\ninclude-operation-id = {toml(operation_id)}\nparameters = {{ {pairs} }}\n"

    image, document, link = data["image"], data["document"], data["link"]
    blocks = [
        operation("getContent", path__hash_code=document["hash_code"], path__name="report.pdf"),
        operation("getThumbnail", path__hash_code=image["hash_code"], path__size=str(image["thumbnails"][0]["size"])),
        operation("getPreview", path__hash_code=link["hash_code"]),
        operation("setMediaImage", path__id=link["id"]),
        operation("patchMediaImage", path__id=link["id"]),
        *(operation(op, path__id=item_id) for op, item_id in data["throwaway"].items()),
    ]
    return "\n".join(blocks)


def schemathesis(base: str, token: str, phases: str, config: str, workdir: Path) -> tuple[str, dict]:
    """One ``st run``: its output, and its JSON report (asserting it passed)."""
    workdir.mkdir()
    (workdir / "schemathesis.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    finished = subprocess.run([
        *ST, "--config-file", "schemathesis.toml", "run", f"{base}/openapi.json",
        "--header", f"Authorization: Bearer {token}", "--checks", CHECKS, "--phases", phases,
        "--max-examples", str(EXAMPLES_PER_OPERATION), *GENERATION, "--workers", "1",
        "--suppress-health-check", "all", "--request-timeout", "30", "--no-color",
        "--report", "json", "--report-json-path", "report.json",
    ], cwd=workdir, env={**env, "NO_PROXY": "127.0.0.1", "SCHEMATHESIS_HOOKS": "tests.openapi.fuzz_hooks",
                         "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-20000:] + finished.stderr[-3000:]
    report = json.loads((workdir / "report.json").read_text())
    assert report["operations"]["errored"] == 0, report["operations"]
    assert report["test_cases"]["with_failures"] == 0 and report["test_cases"]["errored"] == 0, report["test_cases"]
    return finished.stdout, report


@pytest.mark.slow
def test_schemathesis_finds_nothing(tmp_path):
    site_port = free_port()
    settings = load_settings(environ={
        "GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_WORKERS": "1", "GATEWAY_FETCH_TIMEOUT": "1",
        "GATEWAY_FETCH_ALLOW": f"127.0.0.1:{site_port}",
        "GATEWAY_DATO_RATE_LIMIT": "1000000"})  # the fuzzer's one token would spend /dato's budget in a blink
    with LiveGateway(settings) as live:
        async def start_site(app):
            runner = web.AppRunner(loopback_site())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", site_port).start()
            return runner

        site = live.run(start_site)
        try:
            data = live.run(lambda app: seed(app, live.url, f"http://127.0.0.1:{site_port}"))
            # Every operation on its own, with the seeded ids; then sequences that follow the
            # document's links (create, read, change, delete), which make their own items.
            _, each = schemathesis(live.url, data["token"], "examples,coverage,fuzzing", run_config(data),
                                   tmp_path / "operations")
            output, chained = schemathesis(live.url, data["token"], "stateful", "", tmp_path / "stateful")
            # A plain user: the staff-only and owner-only answers (403) must be documented too.
            _, plain = schemathesis(live.url, data["plain_token"], "examples,coverage", run_config(data),
                                    tmp_path / "plain-user")
        finally:
            live.run(lambda app: site.cleanup())
        refused = list(live.loop.refused)
    assert each["operations"]["tested"] == each["operations"]["total"], each["operations"]
    scenarios = re.search(r"Scenarios:\s+(\d+)", output)
    print(f"\nschemathesis: {each['operations']['tested']} operations, {each['test_cases']['generated']} cases; "
          f"stateful: {scenarios and scenarios.group(1)} scenarios, {chained['test_cases']['generated']} cases; "
          f"as a plain user: {plain['test_cases']['generated']} cases; "
          f"{len(refused)} outbound attempts refused unsent (hosts: {sorted({host for _, host in refused})[:6]})")
    assert all(kind in ("dns", "connect") for kind, _ in refused)  # and each one was refused before any packet
