"""S3 object store (aiobotocore), with chunk staging for resumable uploads.

S3 multipart wants every part but the last to be at least 5 MiB, while clients
send 200 KiB chunks. A chunk that, with what is already staged, stays below the
part size is stored as its own small "staged" object under ``_staging/<upload>/``.
A chunk that reaches it becomes one part (parts need not be equal): the staged
bytes, read back, followed by the chunk streamed straight from the client. So
every acknowledged byte is in S3 (durable, visible to every instance), each byte
is written at most twice (write amplification <= 2x), and memory per upload is
below one part. The state that ties it together lives in the session document:

    {"key", "content_type", "mpu": upload id, "token": staging prefix,
     "parts": [[number, etag], ...], "staged": [[key, size], ...], "size"}
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from typing import AsyncIterator

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import BackendUnavailable, ObjectNotFound
from storage.objects.port import Chunks, ObjectBody, ObjectInfo, UploadState, read_exactly
from storage.objects.s3_deadline import bound_every_call

STAGING = "_staging"
# Staged chunks this instance wrote, kept to skip reading them back when they become
# a part. Only a shortcut: S3 holds them durably whatever happens to this memory.
STAGED_CACHE_BYTES = 32 * 1024 * 1024
READ_PIECE = 256 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}


@contextlib.contextmanager
def _translated(key: str = ""):
    """Map botocore errors to storage errors at the boundary."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise ObjectNotFound(key) from exc
        raise BackendUnavailable("s3", f"{code}: {exc}") from exc
    except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
        # aiohttp's own errors reach us unwrapped while a body streams (S3 gone mid-GET).
        raise BackendUnavailable("s3", str(exc) or type(exc).__name__) from exc


class S3ObjectStore:
    name = "s3"

    def __init__(self, *, endpoint: str, bucket: str, region: str, access_key: str, secret_key: str,
                 part_size: int, timeout: float = 30.0) -> None:
        self.bucket = bucket
        self.part_size = part_size
        self.timeout = timeout
        self._client_args = dict(
            endpoint_url=endpoint or None,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=AioConfig(
                connect_timeout=min(timeout, 5.0),
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=50,
                # Parts are already checked by S3's own ETag/Content-MD5 logic; a CRC per
                # request only costs CPU and some S3-compatible servers reject it.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                # Parts stream through from the client, so their SHA-256 cannot be in the
                # signed headers; the whole file's md5 is checked on complete instead.
                s3={"payload_signing_enabled": False},
            ),
        )
        self._recent = _RecentStaged(STAGED_CACHE_BYTES)
        self._stack = contextlib.AsyncExitStack()
        self._s3 = None

    async def open(self) -> None:
        self._s3 = await self._stack.enter_async_context(get_session().create_client("s3", **self._client_args))
        bound_every_call(self._s3, self.timeout)
        with _translated(self.bucket):
            try:
                await self._s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                await self._s3.create_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()

    async def ping(self) -> None:
        with _translated(self.bucket):
            await self._s3.head_bucket(Bucket=self.bucket)

    # plain objects

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        with _translated(key):
            reply = await self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return ObjectInfo(key, len(data), reply["ETag"].strip('"'), content_type)

    async def stat(self, key: str) -> ObjectInfo:
        with _translated(key):
            head = await self._s3.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(key, head["ContentLength"], head["ETag"].strip('"'),
                          head.get("ContentType", "application/octet-stream"))

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        ranged = {} if (start == 0 and end is None) else {"Range": f"bytes={start}-{'' if end is None else end}"}
        with _translated(key):
            reply = await self._s3.get_object(Bucket=self.bucket, Key=key, **ranged)
        if "ContentRange" in reply:  # "bytes 0-9/100"
            total = int(reply["ContentRange"].rsplit("/", 1)[1])
        else:
            total = reply["ContentLength"]
        info = ObjectInfo(key, total, reply["ETag"].strip('"'), reply.get("ContentType", "application/octet-stream"))
        return ObjectBody(info, start, start + reply["ContentLength"] - 1, self._stream(reply["Body"], key))

    async def _stream(self, body, key: str) -> AsyncIterator[bytes]:
        try:
            with _translated(key):
                async for piece in body.iter_chunks(READ_PIECE):
                    yield piece
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        with _translated(key):
            await self._s3.delete_object(Bucket=self.bucket, Key=key)

    # resumable upload targets

    async def begin(self, key: str, content_type: str) -> UploadState:
        with _translated(key):
            mpu = await self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return {"key": key, "content_type": content_type, "mpu": mpu["UploadId"], "token": uuid.uuid4().hex,
                "parts": [], "staged": [], "size": 0}

    async def append(self, state: UploadState, offset: int, chunks: Chunks, length: int) -> UploadState:
        staged_size = sum(size for _, size in state["staged"])
        if staged_size + length < self.part_size:
            data = b"".join([piece async for piece in read_exactly(chunks, length, length or 1)])
            staged = await self._stage(state, offset, data)
            return {**state, "staged": state["staged"] + [staged], "size": offset + length}

        # Enough for a part: the staged bytes (fetched together, less than one part)
        # then the incoming ones, streamed to S3 as they arrive, so receiving from the
        # client and sending to S3 overlap and nothing bigger than a piece is held.
        staged = await self._read_staged(state)
        body = _StreamedBody(read_exactly(_prefixed(staged, chunks), staged_size + length, READ_PIECE))
        part = await self._upload_part(state, len(state["parts"]) + 1, body, staged_size + length)
        return {**state, "parts": state["parts"] + [part], "staged": [], "size": offset + length}

    async def _read(self, key: str) -> bytes:
        return await (await self.get(key)).read_all()

    async def _stage(self, state: UploadState, offset: int, data: bytes) -> list:
        # A fresh name per attempt: a retried or racing chunk never overwrites bytes
        # that a committed state still points at.
        key = f"{STAGING}/{state['token']}/{offset:016d}-{uuid.uuid4().hex[:8]}"
        await self.put(key, data)
        self._recent.put(key, data)
        return [key, len(data)]

    async def _read_staged(self, state: UploadState) -> list[bytes]:
        """The staged pieces in order: from this instance's memory when it staged them,
        else read back from S3 (another instance staged them, or they were evicted)."""
        cached = [self._recent.take(key) for key, _ in state["staged"]]
        fetched = iter(await asyncio.gather(*(
            self._read(key) for (key, _), data in zip(state["staged"], cached) if data is None)))
        return [data if data is not None else next(fetched) for data in cached]

    async def _upload_part(self, state: UploadState, number: int, body: "bytes | _StreamedBody",
                           length: int) -> list:
        try:
            with _translated(state["key"]):
                reply = await self._s3.upload_part(Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"],
                                                   PartNumber=number, Body=body, ContentLength=length)
        except Exception:
            if isinstance(body, _StreamedBody) and body.error is not None:
                raise body.error from None  # the client's body was short or long, not S3's fault
            raise
        return [number, reply["ETag"]]

    async def complete(self, state: UploadState) -> ObjectInfo:
        with contextlib.suppress(ObjectNotFound):
            done = await self.stat(state["key"])
            if done.size == state["size"]:
                return done  # a retried complete: the first one got this far
        parts = list(state["parts"])
        if state["staged"]:
            data = b"".join(await self._read_staged(state))
            parts.append(await self._upload_part(state, len(parts) + 1, data, len(data)))
        if not parts:  # an empty file: multipart needs at least one part
            await self.abort(state)
            return await self.put(state["key"], b"", state["content_type"])
        try:
            with _translated(state["key"]):
                await self._s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"],
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
                )
        except ObjectNotFound:  # NoSuchUpload: a concurrent complete finished it first
            done = await self.stat(state["key"])
            if done.size != state["size"]:
                raise
            return done
        await self._delete_staging(state)
        return await self.stat(state["key"])

    async def cleanup(self, keep: UploadState, drop: UploadState) -> None:
        kept = {key for key, _ in keep["staged"]}
        dropped = [{"Key": key} for key, _ in drop["staged"] if key not in kept]
        for item in dropped:
            self._recent.take(item["Key"])
        if dropped:
            with _translated(keep["key"]):
                await self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": dropped, "Quiet": True})

    async def abort(self, state: UploadState) -> None:
        with contextlib.suppress(ObjectNotFound), _translated(state["key"]):
            await self._s3.abort_multipart_upload(Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"])
        await self._delete_staging(state)

    async def _delete_staging(self, state: UploadState) -> None:
        # List by prefix rather than trusting the state: a request that crashed
        # after staging but before its compare-and-set left objects no state names.
        with _translated(state["key"]):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{STAGING}/{state['token']}/")
            async for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    await self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})


async def _prefixed(first: list[bytes], rest: Chunks) -> AsyncIterator[bytes]:
    for piece in first:
        yield piece
    async for piece in rest:
        yield piece


class _StreamedBody:
    """An upload_part body that aiohttp sends as it is produced.

    A reader task pulls from the client into a small bounded queue while aiohttp
    writes to S3, so receiving and sending overlap instead of taking turns; at most
    ``PREFETCH`` pieces wait in memory. ``read`` exists only to pass botocore's
    file-like check. A failure of the source (the client's body was not the
    announced length) is kept, so the caller reports it rather than the broken S3
    request it caused.
    """

    PREFETCH = 4

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self.source = source
        self.error: Exception | None = None

    def read(self, *_):
        raise io.UnsupportedOperation("streamed body")

    async def _pump(self, queue: asyncio.Queue) -> None:
        try:
            async for piece in self.source:
                await queue.put(piece)
        except Exception as exc:
            self.error = exc
        await queue.put(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue = asyncio.Queue(self.PREFETCH)
        pump = asyncio.create_task(self._pump(queue))
        try:
            while (piece := await queue.get()) is not None:
                yield piece
            if self.error is not None:
                raise self.error
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


class _RecentStaged:
    """A byte-bounded memory of recently staged chunks (staged keys are never rewritten)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.items: dict[str, bytes] = {}  # insertion order = age

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.capacity:
            return
        self.items[key] = data
        self.size += len(data)
        while self.size > self.capacity:
            self.size -= len(self.items.pop(next(iter(self.items))))

    def take(self, key: str) -> bytes | None:
        data = self.items.pop(key, None)
        if data is not None:
            self.size -= len(data)
        return data
