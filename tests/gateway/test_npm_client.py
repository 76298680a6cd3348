"""The official npm client, @selfcommunity/api-services, unchanged against a running gateway.

Node and npm must be on the machine (.ci/run installs them); the package is
installed from tests/npm/package-lock.json on first use. The gateway listens on a
real loopback socket; the client talks to nothing else.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.contract.test_link_media import Site

NPM_DIR = Path(__file__).resolve().parent.parent / "npm"


@pytest.fixture(scope="session")
def npm_client() -> Path:
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (see .ci/run)"
    installed = ("@selfcommunity/api-services", "@datocms/cma-client-node", "tus-js-client")
    if not all((NPM_DIR / "node_modules" / package).exists() for package in installed):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NPM_DIR, check=True, timeout=600)
    return NPM_DIR / "media_client.js"


@pytest.mark.parametrize("stack", ["local+sqlite"], indirect=True)
async def test_create_get_update_delete_with_the_official_client(stack, npm_client):
    site = Site()
    await site.server.start_server()
    base = site.base
    try:
        client = await stack.client(gateway_fetch_allow=f"127.0.0.1:{site.server.port}")
        user = await stack.user(client)
        token = user["auth"]["Authorization"].split(" ", 1)[1]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(GATEWAY_URL=str(client.make_url("")).rstrip("/"), GATEWAY_TOKEN=token, SITE_URL=base,
                   NO_PROXY="127.0.0.1,localhost")
        node = await asyncio.create_subprocess_exec("node", str(npm_client), env=env, cwd=NPM_DIR,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(node.communicate(), 120)
    finally:
        await site.server.close()
    assert node.returncode == 0, err.decode()
    steps = {line["step"]: line["value"] for line in map(json.loads, out.decode().splitlines())}
    created = steps["create"]
    assert created["type"] == "url" and created["title"] == "Launch day" and created["oembed_preview_ready"]
    assert steps["get"]["id"] == created["id"] and steps["get"]["url"] == f"{base}/article"
    assert steps["update"]["image_source"] == f"{base}/img/chosen.jpg"
    assert steps["update"]["image"].startswith(str(client.make_url("/previews/")))
    assert steps["delete"] in (None, "")
    assert steps["get-after-delete"] == 404
