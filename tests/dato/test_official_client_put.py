"""@datocms/cma-client-node's uploadLocalFileAndReturnPath, unchanged, against the gateway: the
upload request and the PUT of the file (to the gateway, or straight to S3 when presigned)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest

from gateway.keys import OBJECTS
from tests.dato.helpers import take
from tests.gateway.test_npm_client import NPM_DIR, npm_client  # noqa: F401  (the fixture)

MiB = 1024 * 1024


async def run_client(client, account: dict, file) -> str:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(GATEWAY_URL=str(client.make_url("")).rstrip("/"), FILE=str(file), NO_PROXY="127.0.0.1,localhost",
               GATEWAY_TOKEN=account["auth"]["Authorization"].split(" ", 1)[1])
    node = await asyncio.create_subprocess_exec("node", str(NPM_DIR / "dato_upload_request.js"), env=env,
                                                cwd=NPM_DIR, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(node.communicate(), 120)
    assert node.returncode == 0, err.decode()
    return json.loads(out.decode().splitlines()[-1])["path"]


@pytest.mark.parametrize("stack,presigned", [("local+sqlite", False), ("s3+mongodb", False), ("s3+mongodb", True)],
                         ids=["local+sqlite-gateway-url", "s3+mongodb-gateway-url", "s3+mongodb-presigned"],
                         indirect=["stack"])  # presigned PUTs are an S3 capability
async def test_the_official_client_puts_a_file_the_gateway_can_take(stack, npm_client,  # noqa: F811
                                                                    tmp_path, presigned):
    env = {"GATEWAY_S3_PUBLIC_ENDPOINT": stack.settings_env["GATEWAY_S3_ENDPOINT"]} if presigned else {}
    client = await stack.client(**env)
    account = await stack.user(client)
    data = os.urandom(6 * MiB + 7)  # more than a part: multipart through the gateway on S3
    file = tmp_path / "clip.mp4"
    file.write_bytes(data)
    path = await run_client(client, account, file)
    assert path.startswith(f"/{account['id']}/") and path.endswith("-clip.mp4")
    taken = await take(client, account, path)
    assert taken.size == len(data)
    assert taken.md5 == (None if presigned else hashlib.md5(data).hexdigest())
    assert await (await client.app[OBJECTS].get(taken.key)).read_all() == data
