"""The official DatoCMS client, @datocms/cma-client-node, unchanged against the gateway's /dato.

tests/npm/dato_client.js runs the client's upload flow (create from a local file
with metadata in two locales, md5 dedupe, a PDF, every list filter, ordering,
paging and the paging iterator, metadata patch, an invalid focal point, rename,
a new version with a new URL and with keep_url, destroy, a bad token, and a
burst past the rate limit that the client must wait out) and prints what each
step returned. This test then downloads every upload's ``url`` and compares it
with the local files, and checks every reply under /dato was JSON with the
rate-limit headers. The gateway listens on a real loopback socket; Node talks to
nothing else (S3 stays on loopback too).

Every step is checked and every problem listed in one failure, so a run shows
all that is missing at once.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.gateway.test_npm_client import NPM_DIR, npm_client  # noqa: F401  (the fixture)
BURST, RATE_LIMIT = 45, 20  # more at once than two windows allow, wherever a window boundary falls
METADATA = {
    "en": {"alt": "A zebra-striped cat", "title": "Cat", "custom_data": {"source": "test"},
           "focal_point": {"x": 0.25, "y": 0.75}},
    "it": {"alt": "Un gatto zebrato", "title": "Gatto", "custom_data": {}, "focal_point": None},
}


@pytest.fixture(scope="session")
def dato_client(npm_client) -> Path:  # noqa: F811  (npm_client installs tests/npm's packages)
    return NPM_DIR / "dato_client.js"


def noise_png(path: Path, width: int, height: int) -> Path:
    """Random pixels: each file has its own md5, and sizes grow with the dimensions."""
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(path, "PNG")
    return path


def small_pdf(path: Path) -> Path:
    Image.new("RGB", (30, 20), (200, 30, 30)).save(path, "PDF")
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dimensions(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        return image.size


class Checks:
    """Collects every failed expectation, so one run reports them all."""

    def __init__(self, steps: dict) -> None:
        self.steps, self.problems = steps, []

    def value(self, name: str):
        line = self.steps.get(name)
        if line is None:
            self.problems.append(f"{name}: never reported")
        elif "error" in line:
            error = line["error"]
            self.problems.append(f"{name}: {error['status']} {error['codes']} {json.dumps(error.get('details'))[:300]}"
                                 + ("" if error["status"] else f" {error['message'][:600]}"))
        elif "value" not in line:
            self.problems.append(f"{name}: skipped, an earlier step failed")
        else:
            return line["value"]
        return None

    def expect(self, name: str, condition: bool, what: str) -> None:
        if not condition:
            self.problems.append(f"{name}: {what}")

    def thrown(self, name: str, status: int, code: str) -> None:
        if (value := self.value(name)) is not None:
            thrown = value["thrown"]
            self.expect(name, thrown["status"] == status and code in thrown["codes"],
                        f"wanted {status} {code}, got {thrown['status']} {thrown['codes']} {thrown.get('details')}")


async def run_node(script: Path, env: dict) -> tuple[int, str, str]:
    node = await asyncio.create_subprocess_exec("node", str(script), env=env, cwd=NPM_DIR,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(node.communicate(), 300)
    return node.returncode, out.decode(), err.decode()


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["local+sqlite", "s3+mongodb"], indirect=True)
async def test_the_official_client_flow(stack, dato_client, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    png = noise_png(files / "zebra-cat.png", 64, 48)
    png_v2, png_v3 = noise_png(files / "second.png", 80, 60), noise_png(files / "third.png", 40, 30)
    pdf = small_pdf(files / "document.pdf")
    extras = [noise_png(files / "extra-small.png", 20, 10), noise_png(files / "extra-large.png", 120, 90)]
    client = await stack.client(gateway_dato_rate_limit=RATE_LIMIT, gateway_dato_rate_window=1)
    user = await stack.user(client)
    base = str(client.make_url("")).rstrip("/")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(BASE=base, DATO_TOKEN=user["auth"]["Authorization"].split(" ", 1)[1], PNG=str(png),
               PNG_V2=str(png_v2), PNG_V3=str(png_v3), PDF=str(pdf), EXTRA=",".join(map(str, extras)),
               BURST=str(BURST), NO_PROXY="127.0.0.1,localhost")
    returncode, out, err = await run_node(dato_client, env)
    assert returncode == 0, err
    steps = {line["step"]: line for line in map(json.loads, out.splitlines())}
    checks = Checks(steps)

    created = check_creation(checks, png, pdf, extras)
    check_listing(checks, created)
    check_updates(checks, created, png, png_v2, png_v3)
    check_errors_and_destroy(checks, created)
    await check_served_bytes(checks, {created.get("png"): png_v3, created.get("pdf"): pdf,
                                      created.get("extra-0"): extras[0]})
    check_replies(checks, base)
    assert not checks.problems, "\n".join(checks.problems)


def check_creation(checks: Checks, png: Path, pdf: Path, extras: list[Path]) -> dict[str, str]:
    created = {}
    if (upload := checks.value("create-png")) is not None:
        created["png"] = upload["id"]
        wanted = {"author": "Ada", "copyright": "2026 Ada", "notes": "a zebra in the notes", "tags": ["cat", "gateway"],
                  "default_field_metadata": METADATA, "is_image": True, "width": 64, "height": 48,
                  "format": "png", "mime_type": "image/png", "md5": md5(png), "size": png.stat().st_size,
                  "filename": "zebra-cat.png", "basename": "zebra-cat"}
        for key, value in wanted.items():
            checks.expect("create-png", upload.get(key) == value, f"{key} is {upload.get(key)!r}, not {value!r}")
        checks.expect("create-png", upload.get("path", "").endswith("zebra-cat.png"), f"path {upload.get('path')}")
        checks.expect("create-png", str(upload.get("url", "")).startswith("http"), f"url {upload.get('url')}")
        for key in ("blurhash", "thumbhash", "colors", "created_at", "updated_at", "exif_info", "smart_tags"):
            checks.expect("create-png", key in upload, f"no {key}")
    if (again := checks.value("create-png-again")) is not None:
        checks.expect("create-png-again", again["id"] == created.get("png"), "md5 dedupe made a new upload")
    if (upload := checks.value("create-pdf")) is not None:
        created["pdf"] = upload["id"]
        wanted = {"is_image": False, "width": None, "height": None, "mime_type": "application/pdf", "format": "pdf",
                  "md5": md5(pdf), "tags": ["doc"]}
        for key, value in wanted.items():
            checks.expect("create-pdf", upload.get(key) == value, f"{key} is {upload.get(key)!r}, not {value!r}")
    for index, extra in enumerate(extras):
        if (upload := checks.value(f"create-extra-{index}")) is not None:
            created[f"extra-{index}"] = upload["id"]
            checks.expect(f"create-extra-{index}", upload.get("md5") == md5(extra), "md5")
    return created


def check_listing(checks: Checks, created: dict[str, str]) -> None:
    everything = set(created.values())
    images = everything - {created.get("pdf")}
    if (found := checks.value("list-ids")) is not None:
        checks.expect("list-ids", set(found) == {created.get("png"), created.get("pdf")}, f"got {found}")
    if (found := checks.value("list-type-image")) is not None:
        checks.expect("list-type-image", set(found) == images, f"got {found}, images are {images}")
    if (found := checks.value("list-md5")) is not None:
        checks.expect("list-md5", found == [created.get("png")], f"got {found}")
    if (found := checks.value("list-query")) is not None:
        checks.expect("list-query", found == [created.get("png")], f"got {found}")
    by_size = checks.value("list-size-asc")
    if by_size is not None:
        sizes = [upload["size"] for upload in by_size]
        checks.expect("list-size-asc", sizes == sorted(sizes) and len(set(sizes)) == len(sizes), f"sizes {sizes}")
        checks.expect("list-size-asc", {upload["id"] for upload in by_size} == everything, "not every upload")
        by_size = [upload["id"] for upload in by_size]
    if (found := checks.value("list-created-desc")) is not None:
        order = [created[key] for key in ("png", "pdf", "extra-0", "extra-1") if key in created]
        checks.expect("list-created-desc", found == order[::-1], f"got {found}, created {order}")
    if (found := checks.value("list-page")) is not None and by_size:
        checks.expect("list-page", found == by_size[1:3], f"got {found}, by size {by_size}")
    if (found := checks.value("iterator")) is not None and by_size:
        checks.expect("iterator", found == by_size and len(found) > 2, f"got {found}, by size {by_size}")


def check_updates(checks: Checks, created: dict[str, str], png: Path, png_v2: Path, png_v3: Path) -> None:
    first = (checks.steps.get("create-png") or {}).get("value") or {}
    if (upload := checks.value("update-metadata")) is not None:
        metadata = upload.get("default_field_metadata") or {}
        checks.expect("update-metadata", metadata.get("en") == METADATA["en"], f"en changed: {metadata.get('en')}")
        checks.expect("update-metadata", metadata.get("it") == {**METADATA["it"], "alt": "Un gatto nero"},
                      f"it is {metadata.get('it')}")
    checks.thrown("focal-point-out-of-range", 422, "INVALID_FIELD")
    renamed = checks.value("rename")
    if renamed is not None:
        checks.expect("rename", renamed.get("filename") == "renamed-cat.png" and renamed.get("basename") == "renamed-cat",
                      f"filename {renamed.get('filename')}, basename {renamed.get('basename')}")
        checks.expect("rename", renamed.get("path", "").endswith("renamed-cat.png"), f"path {renamed.get('path')}")
        checks.expect("rename", renamed.get("url") != first.get("url")
                      and str(renamed.get("url")).endswith("/renamed-cat.png"), f"url {renamed.get('url')}")
        checks.expect("rename", renamed.get("md5") == md5(png), "the bytes changed")
    version = checks.value("new-version")
    if version is not None:
        for name, value in (("md5", md5(png_v2)), ("size", png_v2.stat().st_size), ("id", created.get("png")),
                            ("author", "Ada"), ("notes", "a zebra in the notes"), ("tags", ["cat", "gateway"])):
            checks.expect("new-version", version.get(name) == value, f"{name} is {version.get(name)!r}, not {value!r}")
        checks.expect("new-version", (version.get("width"), version.get("height")) == dimensions(png_v2), "dimensions")
        checks.expect("new-version", renamed is None or version.get("url") != renamed.get("url"), "same URL")
    kept = checks.value("keep-url")
    if kept is not None:
        checks.expect("keep-url", kept.get("md5") == md5(png_v3), f"md5 {kept.get('md5')}")
        checks.expect("keep-url", (kept.get("width"), kept.get("height")) == dimensions(png_v3), "dimensions")
        checks.expect("keep-url", version is None or kept.get("url") == version.get("url"),
                      f"url {kept.get('url')} is not {version and version.get('url')}")
    if (found := checks.value("find")) is not None and kept is not None:
        checks.expect("find", (found.get("md5"), found.get("url")) == (kept.get("md5"), kept.get("url")), "differs")
    if (found := checks.value("references")) is not None:
        checks.expect("references", found == [], f"got {found}")


def check_errors_and_destroy(checks: Checks, created: dict[str, str]) -> None:
    if (found := checks.value("burst")) is not None:
        checks.expect("burst", found == [created.get("pdf")] * BURST, f"got {found}")
    if (destroyed := checks.value("destroy")) is not None:
        checks.expect("destroy", destroyed.get("id") == created.get("extra-1"), f"returned {destroyed}")
    checks.thrown("find-destroyed", 404, "NOT_FOUND")
    checks.thrown("bad-token-list", 401, "INVALID_AUTHORIZATION_HEADER")
    checks.thrown("bad-token-upload-request", 401, "INVALID_AUTHORIZATION_HEADER")
    if (final := checks.value("final")) is not None:
        left = {upload["id"] for upload in final}
        checks.expect("final", left == set(created.values()) - {created.get("extra-1")}, f"left {left}")


async def check_served_bytes(checks: Checks, expected: dict[str | None, Path]) -> None:
    final = (checks.steps.get("final") or {}).get("value") or []
    async with aiohttp.ClientSession() as session:
        for upload in final:
            if (local := expected.get(upload["id"])) is None:
                continue
            async with session.get(upload["url"]) as response:
                body = await response.read()
            checks.expect("served", response.status == 200 and body == local.read_bytes(),
                          f"{upload['url']}: {response.status}, {len(body)} bytes, not {local.name}")
            checks.expect("served", upload["md5"] == hashlib.md5(body).hexdigest() == md5(local),
                          f"{upload['url']}: md5 {upload['md5']}")
    checks.expect("served", len(final) >= len(expected), f"{len(final)} uploads listed")


def check_replies(checks: Checks, base: str) -> None:
    replies = checks.value("replies") or []
    ours = [reply for reply in replies if reply["url"].startswith(base + "/dato")]
    checks.expect("replies", len(ours) > 20, f"only {len(ours)} replies under /dato")
    for reply in ours:
        seen = f"{reply['method']} {reply['url'][len(base):]} -> {reply['status']}"
        checks.expect("replies", "application/json" in (reply["content_type"] or ""),
                      f"{seen} has content type {reply['content_type']!r}")
        checks.expect("replies", reply["limit"] == str(RATE_LIMIT) and (reply["remaining"] or "").isdigit(),
                      f"{seen} has X-RateLimit-Limit {reply['limit']!r}, -Remaining {reply['remaining']!r}")
    refused = [reply for reply in ours if reply["status"] == 429]
    checks.expect("replies", bool(refused), f"the burst of {BURST} never met the limit of {RATE_LIMIT}")
    for reply in refused:
        checks.expect("replies", (reply["reset"] or "").isdigit() and int(reply["reset"]) >= 1,
                      f"429 with X-RateLimit-Reset {reply['reset']!r}")
