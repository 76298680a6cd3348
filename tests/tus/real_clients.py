"""Run the real tus clients against a gateway on a loopback socket, and check what they left.

tus-js-client runs in Node (tests/npm/tus_client.js, installed from the lockfile on
first use); tuspy is the PyPI package, run in a thread because it is synchronous.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.chunking import path_of, processed

NPM_DIR = Path(__file__).resolve().parent.parent / "npm"
TUS_JS = NPM_DIR / "tus_client.js"
TUS = {"Tus-Resumable": "1.0.0"}
KiB, MiB = 1024, 1024 * 1024


def install_tus_js_client() -> Path:
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (see .ci/run)"
    if not (NPM_DIR / "node_modules" / "tus-js-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NPM_DIR, check=True, timeout=600)
    return TUS_JS


def node_env() -> dict:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


async def tus_js(plan: dict, timeout: float = 180) -> tuple[int, dict, str]:
    """Run one plan of tests/npm/tus_client.js; (exit code, {step: value}, stderr)."""
    node = await asyncio.create_subprocess_exec("node", str(TUS_JS), json.dumps(plan), env=node_env(), cwd=NPM_DIR,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(node.communicate(), timeout)
    except TimeoutError:
        node.kill()
        await node.wait()
        raise
    steps = {line["step"]: line["value"] for line in map(json.loads, out.decode().splitlines())}
    return node.returncode, steps, err.decode()


def endpoint(client) -> str:
    return str(client.make_url("/files/"))


def write_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def head(client, url: str, auth: dict):
    return await client.head(path_of(url), headers={**auth, **TUS})


async def served_bytes(client, url: str, auth: dict) -> bytes:
    """What GET on the upload URL returns (tusd-style download of a finished upload)."""
    reply = await client.get(path_of(url), headers={**auth, **TUS})
    body = await reply.read()
    assert reply.status == 200, (reply.status, body[:300])
    return body


async def media_id_of(client, url: str, auth: dict, timeout: float = 20.0) -> int:
    """The Media-Id a HEAD on a finished upload reports (a concatenated final may
    need a moment for its assembly)."""
    async with asyncio.timeout(timeout):
        while True:
            reply = await head(client, url, auth)
            assert reply.status == 200, (reply.status, dict(reply.headers))
            if reply.headers.get("Media-Id"):
                assert reply.headers["Upload-Offset"] == reply.headers["Upload-Length"], dict(reply.headers)
                return int(reply.headers["Media-Id"])
            await asyncio.sleep(0.1)


async def assert_finished_upload(client, url: str, auth: dict, data: bytes) -> dict:
    """The served bytes are the file, and the media has the file's md5 once processed."""
    media_id = await media_id_of(client, url, auth)  # a final upload is assembled by a job, after its 201
    assert await served_bytes(client, url, auth) == data
    media = await processed(client, auth, media_id, timeout=60)
    assert media["processing"] == "done", media
    assert (media["size"], media["md5"]) == (len(data), hashlib.md5(data).hexdigest()), media
    return media
