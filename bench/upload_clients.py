"""The two uploaders of bench/upload.py, and running many of them, one process each.

A gateway client speaks the SelfCommunity web client's chunk protocol; a direct
client is an aiobotocore multipart upload with 8 MiB parts sent one after another.
Both send the same deterministic bytes (``blocks``), so neither holds a whole file.
"""
from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
from dataclasses import dataclass

import aiohttp
from aiobotocore.session import get_session

from tests.chunking import CHUNK, COMPLETE, chunk_form, content_range

MiB = 1024 * 1024
BUCKET = "bench"
DIRECT_PART = 8 * MiB


@dataclass(frozen=True)
class Gateway:
    base: str
    token: str


@dataclass(frozen=True)
class S3:
    endpoint: str
    access_key: str
    secret_key: str


def blocks(size: int, block: int, seed: bytes):
    """Deterministic pseudo-random content without holding the file: block i is a
    hash-stamped copy of one random template, so both uploaders send alike bytes."""
    template = os.urandom(block)
    for index, start in enumerate(range(0, size, block)):
        length = min(block, size - start)
        stamp = hashlib.sha256(seed + index.to_bytes(8, "big")).digest()
        yield stamp + template[len(stamp):length] if length > len(stamp) else stamp[:length]


def s3_client(s3: S3):
    return get_session().create_client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                                       aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key)


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=300))


async def direct_upload(client, key: str, size: int, part: int = DIRECT_PART) -> float:
    started = time.perf_counter()
    mpu = await client.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = []
    for number, data in enumerate(blocks(size, part, key.encode()), 1):
        reply = await client.upload_part(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"], PartNumber=number,
                                         Body=data)
        parts.append({"PartNumber": number, "ETag": reply["ETag"]})
    await client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"],
                                           MultipartUpload={"Parts": parts})
    return time.perf_counter() - started


async def gateway_upload(http: aiohttp.ClientSession, gateway: Gateway, size: int, chunk: int, seed: str) -> float:
    auth = {"Authorization": f"Bearer {gateway.token}"}
    md5 = hashlib.md5()
    upload_id, offset = None, 0
    started = time.perf_counter()
    for data in blocks(size, chunk, seed.encode()):
        # Like the web client, hash a chunk while it is on the wire (hashlib releases the GIL).
        hashing = asyncio.create_task(asyncio.to_thread(md5.update, data))
        async with http.post(gateway.base + CHUNK, data=chunk_form(data, upload_id=upload_id, filename=f"{seed}.bin"),
                             headers={**auth, **content_range(offset, len(data), size)}) as reply:
            body = await reply.json()
            assert reply.status == 200, body
        await hashing
        upload_id, offset = body["upload_id"], body["offset"]
    async with http.post(gateway.base + COMPLETE, data={"upload_id": upload_id, "type": "document",
                                                        "md5": md5.hexdigest()}, headers=auth) as reply:
        media = await reply.json()
        assert reply.status == 201, media
    return time.perf_counter() - started


# Many clients at once, one process each (so the clients never share a GIL or a loop)

def _one_client(target, index: int, size: int, chunk: int, seed: str, start, results) -> None:
    async def upload() -> tuple[float, float, float]:
        if isinstance(target, Gateway):
            async with http_session() as http:
                await asyncio.to_thread(start.wait, 300)
                began, cpu = time.time(), time.process_time()
                await gateway_upload(http, target, size, chunk, seed)
        else:
            async with s3_client(target) as client:
                await client.list_buckets()  # connect and sign once before the clock starts
                await asyncio.to_thread(start.wait, 300)
                began, cpu = time.time(), time.process_time()
                await direct_upload(client, seed, size)
        return began, time.time(), time.process_time() - cpu

    try:
        results.put((index, *asyncio.run(upload()), None))
    except BaseException as exc:  # reported by the parent, which would otherwise wait forever
        results.put((index, 0.0, 0.0, 0.0, repr(exc)))


async def many_clients(target: Gateway | S3, clients: int, size: int, chunk: int, seed: str,
                       on_start=lambda: None) -> tuple[float, float]:
    """Start ``clients`` processes, release them together, and return the seconds from
    the first start to the last finish, and the CPU seconds the clients used meanwhile.
    ``on_start`` runs when they are released."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(clients + 1), context.Queue()
    processes = [context.Process(target=_one_client, args=(target, i, size, chunk, f"{seed}-{i}", start, results))
                 for i in range(clients)]
    for process in processes:
        process.start()
    try:
        await asyncio.to_thread(start.wait, 300)
        on_start()
        finished = [await asyncio.to_thread(results.get, True, 900) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    errors = [error for *_, error in finished if error]
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients failed: {errors[0]}")
    wall = max(end for _, _, end, _, _ in finished) - min(began for _, began, _, _, _ in finished)
    return wall, sum(cpu for *_, cpu, _ in finished)
