"""S3 object store (aiobotocore), with chunk staging for resumable uploads.

S3 multipart wants every part but the last to be at least 5 MiB, while clients
send 200 KiB chunks. A chunk that, with what is already staged, stays below the
part size is staged in the document store (``BlobStaging``: a SQLite BLOB row or a
MongoDB binary document of at most 4 MiB), which is durable and shared by every
instance and takes a small write far cheaper than an S3 PUT. A big chunk (over 4
MiB) that reaches the part size becomes one part (parts need not be equal): the
staged bytes, read back, followed by the chunk streamed straight from the client.
So S3 sees one request per part, as a direct multipart upload would, each byte is
written to S3 once, and memory per upload stays below one part.

A small chunk that completes a part does not wait for that part's upload (an 8 MiB
PUT takes about 60 ms here, 40 chunks' worth): it is staged like the others and the
part is uploaded from the staged pieces in the background ("flushed", see
``s3_flushes``). Its session commit records which staged prefix is being flushed
under which part number; the next chunk this instance takes turns the finished part
into a committed one. The bytes stay staged, durable and shared, until then, so an
instance that dies mid-flush loses nothing: whoever holds the upload next flushes
them again once a further part's worth has arrived, or uploads them on complete.
A chunk that starts a flush after a failed one, or with two parts' worth staged
(a flush was lost), waits for it: while S3 is away, staging stays bounded and
chunks are refused with 503 as they were before flushes ran in the background.
The state that ties it together lives in the session document:

    {"key", "content_type", "mpu": upload id, "token": staging prefix,
     "parts": [[number, etag], ...], "staged": [[blob key, size], ...], "size",
     "flush": {"number", "pieces"} or None: the first ``pieces`` staged ones are being
              uploaded as part ``number``}

Fencing. On AWS the last upload of a part number wins, so a writer that stalled
past its lease must never upload a part number that another attempt may commit.
A part's number is the fencing token the core hands out (the session lease's
epoch): unique per attempt and growing with the offset. Abandoned attempts only
skip numbers; staged keys are fresh per attempt anyway. A flush's number is taken
the same way, by the chunk that starts it, so it is unique too.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from typing import AsyncIterator

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from storage.documents.port import MAX_BLOB, BlobStaging
from storage.errors import BackendUnavailable, ObjectNotFound
from storage.objects.port import Chunks, Fence, ObjectBody, ObjectInfo, UploadState, read_exactly, read_whole
from storage.objects.s3_bodies import RecentStaged, StreamedBody, prefixed
from storage.objects.s3_deadline import bound_every_call
from storage.objects.s3_flushes import Flushes, unflushed

# Staged chunks this instance wrote, kept to skip reading them back when they become
# a part. Only a shortcut: the staging store holds them durably whatever happens here.
STAGED_CACHE_BYTES = 32 * 1024 * 1024
READ_PIECE = 256 * 1024
MAX_PART_NUMBER = 10_000  # S3's limit
MIN_PART = 5 * 1024 * 1024  # every part but the last
# A client sending tiny chunks would grow the staged list (and the session document)
# without bound; past this many pieces they are rewritten as a few big ones.
MAX_STAGED_PIECES = 64
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
                 part_size: int, staging: BlobStaging | None, timeout: float = 30.0,
                 public_endpoint: str = "") -> None:
        self.bucket = bucket
        self.public_endpoint = public_endpoint  # S3 as clients reach it: enables presigned PUTs
        self.presigned_puts = bool(public_endpoint)
        self._presigner = None
        self.part_size = part_size
        self.staging = staging
        self.timeout = timeout
        self.requests: Counter[str] = Counter()  # HTTP requests sent, by S3 operation
        self._instance, self._attempts = uuid.uuid4().hex[:8], itertools.count()  # staged key names
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
        self._recent = RecentStaged(STAGED_CACHE_BYTES)
        self._flushes = Flushes()
        self._stack = contextlib.AsyncExitStack()
        self._s3 = None

    async def open(self) -> None:
        if self.public_endpoint:
            # Building a botocore client reads its service model from disk: off the event loop.
            self._presigner = await asyncio.to_thread(self._make_presigner)
        self._s3 = await self._stack.enter_async_context(get_session().create_client("s3", **self._client_args))
        self._s3.meta.events.register("before-send.s3", self._count)
        bound_every_call(self._s3, self.timeout)
        try:
            with _translated(self.bucket):
                try:
                    await self._s3.head_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    if str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound"):
                        raise
                    await self._s3.create_bucket(Bucket=self.bucket)
        except BaseException:
            await self.close()  # else the client's HTTP session is left open ("Unclosed client session")
            raise

    async def close(self) -> None:
        await self._flushes.close()
        await self._stack.aclose()

    def _count(self, event_name: str, **_) -> None:
        self.requests[event_name.rsplit(".", 1)[-1]] += 1  # each attempt, retries included: what S3 bills

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

    # presigned PUTs (the optional PresignedPuts capability)

    def _make_presigner(self):
        """A plain botocore client whose endpoint is the public one; it only signs (no request
        is ever sent through it), so it needs no event loop and no network."""
        import botocore.session
        from botocore.config import Config

        args = self._client_args
        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=self.public_endpoint, region_name=args["region_name"],
            aws_access_key_id=args["aws_access_key_id"], aws_secret_access_key=args["aws_secret_access_key"],
            # Path style: a public endpoint is a host of its own (an S3-compatible server or a
            # proxy), where bucket.host names would not resolve.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        return client

    def presigned_put(self, key: str, expires_in: int) -> str:
        """A SigV4 query-signed PUT of ``key``. Only the host is signed: no Content-Type (the
        client sends its own, and SeaweedFS answers 403 when it differs from a signed one) and
        no length (whoever takes the object checks its size)."""
        if self._presigner is None:
            raise BackendUnavailable("s3", "presigned PUTs need GATEWAY_S3_PUBLIC_ENDPOINT and an opened store")
        with _translated(key):
            return self._presigner.generate_presigned_url(
                "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=max(1, int(expires_in)),
                HttpMethod="PUT")

    # resumable upload targets

    async def begin(self, key: str, content_type: str) -> UploadState:
        with _translated(key):
            mpu = await self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return {"key": key, "content_type": content_type, "mpu": mpu["UploadId"], "token": uuid.uuid4().hex,
                "parts": [], "staged": [], "size": 0}

    async def append(self, state: UploadState, offset: int, chunks: Chunks, length: int, *,
                     fence: Fence) -> UploadState:
        committed, state = state, self._flushes.folded(state)
        if _size(unflushed(state)) + length >= self.part_size:
            # A part's worth beyond any flush: one flush at a time per upload, so wait for
            # ours; one this instance does not run may be lost with its instance, so redo it.
            state = await self._flushes.settled(state)
            if _size(state["staged"]) + length >= self.part_size and length > MAX_BLOB:
                return await self._append_part(state, offset, chunks, length, fence)
        flushing = not state.get("flush") and _size(state["staged"]) + length >= self.part_size
        data = await read_whole(chunks, length)
        number = _part_number(await fence()) if flushing else 0
        state = {**state, "staged": await self._stage(state, offset, data), "size": offset + length}
        if not flushing:
            return state
        failed_before = self._flushes.failed(state["mpu"])
        state = self._flushes.start(state, number, self._upload_staged(state, state["staged"], number))
        if failed_before or _size(state["staged"]) >= 2 * self.part_size:
            # The last flush failed, or one was lost: this chunk waits for its flush, so while
            # S3 is away chunks are refused (503) rather than staged without bound. Its part
            # is folded in by the next chunk, like any other: folded here, this chunk's own
            # piece would leave the staged list, and a lost commit would not clean it up.
            try:
                await self._flushes.finished(state)
            except BaseException:
                with contextlib.suppress(Exception):  # the flush's failure is the answer
                    await asyncio.shield(self.cleanup(keep=committed, drop=state))  # this attempt's pieces
                raise
        return state

    async def _append_part(self, state: UploadState, offset: int, chunks: Chunks, length: int,
                           fence: Fence) -> UploadState:
        """A big chunk that reaches a part: the staged bytes (less than one part) then the
        incoming ones, streamed to S3 as they arrive, so receiving from the client and
        sending to S3 overlap and nothing bigger than a piece is held."""
        number = _part_number(await fence())
        size = _size(state["staged"]) + length
        staged = self._staged_pieces(state["staged"])  # one piece at a time: memory stays flat with many uploads
        body = StreamedBody(lambda: read_exactly(prefixed(staged, chunks), size, READ_PIECE))
        part = await self._upload_part(state, number, body, size)
        return {**state, "parts": state["parts"] + [part], "staged": [], "size": offset + length}

    async def _stage(self, state: UploadState, offset: int, data: bytes) -> list:
        """The new staged list with ``data`` in it, under fresh keys (a retried or racing
        chunk never overwrites a piece a committed state points at). Tiny pieces beyond
        the ones being flushed are rewritten as one once there are too many."""
        kept = state["staged"]
        tail = unflushed(state)
        if len(tail) >= MAX_STAGED_PIECES:
            data, kept = b"".join(await self._read_staged(tail)) + data, kept[:len(kept) - len(tail)]
        attempt = f"{self._instance}{next(self._attempts):x}"  # unique without a uuid4 per chunk
        pieces = [[f"{state['token']}/{offset:016d}-{attempt}-{at // MAX_BLOB}", data[at:at + MAX_BLOB]]
                  for at in range(0, len(data), MAX_BLOB)]
        await asyncio.gather(*(self.staging.put_blob(key, piece) for key, piece in pieces))
        for key, piece in pieces:
            self._recent.put(key, piece)
        return kept + [[key, len(piece)] for key, piece in pieces]

    async def _staged_pieces(self, staged: list) -> AsyncIterator[bytes]:
        for key, _ in staged:
            data = self._recent.take(key)
            yield data if data is not None else (await self.staging.get_blobs([key]))[0]

    async def _read_staged(self, staged: list) -> list[bytes]:
        """The staged pieces in order: from this instance's memory when it staged them,
        else from the staging store (another instance staged them, or they were evicted)."""
        cached = [self._recent.take(key) for key, _ in staged]
        missing = [key for (key, _), data in zip(staged, cached) if data is None]
        fetched = iter(await self.staging.get_blobs(missing) if missing else [])
        return [data if data is not None else next(fetched) for data in cached]

    async def _upload_staged(self, state: UploadState, staged: list, number: int) -> list:
        """Staged pieces as part ``number``, streamed piece by piece (joined, 16 concurrent
        completes held 16 parts at once); botocore may retry, as they can be read again."""
        size = _size(staged)
        body = StreamedBody(lambda: read_exactly(self._staged_pieces(staged), size, READ_PIECE), rewindable=True)
        return await self._upload_part(state, number, body, size)

    async def _upload_part(self, state: UploadState, number: int, body: "bytes | StreamedBody",
                           length: int) -> list:
        try:
            with _translated(state["key"]):
                reply = await self._s3.upload_part(Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"],
                                                   PartNumber=number, Body=body, ContentLength=length)
        except Exception:
            if isinstance(body, StreamedBody) and body.error is not None:
                raise body.error from None  # the client's body was short or long, not S3's fault
            raise
        return [number, reply["ETag"]]

    async def complete(self, state: UploadState, *, fence: int) -> ObjectInfo:
        try:
            return await self._complete(state, fence)
        except ObjectNotFound:
            # NoSuchUpload or staged bytes gone: a retried or concurrent complete finished
            # first (the staging is deleted only after S3 has the object).
            for delay in (0.1, 0.3, 1.0):
                with contextlib.suppress(ObjectNotFound):
                    return await self._finished(state)
                await asyncio.sleep(delay)
            raise

    async def _finished(self, state: UploadState) -> ObjectInfo:
        done = await self.stat(state["key"])
        if done.size != state["size"]:
            raise ObjectNotFound(state["key"])
        return done

    async def _complete(self, state: UploadState, fence: int) -> ObjectInfo:
        settled = await self._flushes.settled(state)
        # ``fence`` is above every number handed out; concurrent completes upload the same
        # bytes under it. Except when one took in a flush this instance ran: its tail is
        # shorter than that of a complete elsewhere, which uploads every staged piece, and
        # on AWS the last upload of a number wins; so such a tail goes under the next number.
        number = fence + 1 if len(settled["parts"]) > len(state["parts"]) else fence
        state, parts = settled, list(settled["parts"])
        if state["staged"]:  # the tail: up to two parts when a flush was lost
            parts.append(await self._upload_staged(state, state["staged"], _part_number(number)))
        if not parts:  # an empty file: multipart needs at least one part
            await self.abort(state)
            return await self.put(state["key"], b"", state["content_type"])
        with _translated(state["key"]):
            await self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"],
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )
        self._flushes.forget(state["mpu"])
        await self.staging.delete_blob_prefix(f"{state['token']}/")
        return await self.stat(state["key"])

    async def concatenate(self, state: UploadState, sources: list[tuple[str, int]]) -> UploadState:
        """Fill a fresh multipart upload with the objects ``sources`` names, in order, copied
        inside S3 (UploadPartCopy) rather than through the gateway. A copied part must be at
        least 5 MiB unless it is the last, so sources too small for that are read and
        gathered (with the first bytes of the next source) into uploaded parts; memory stays
        below two parts. Idempotent: a retry uploads the same bytes under the same numbers."""
        parts, buffer = [], bytearray()

        async def flush() -> None:
            parts.append(await self._upload_part(state, len(parts) + 1, bytes(buffer), len(buffer)))
            buffer.clear()

        for index, (key, size) in enumerate(sources):
            last, start = index == len(sources) - 1, 0
            if buffer:  # top the gathered bytes up to a valid part from this source's head
                start = min(size, MIN_PART - len(buffer))
                buffer += await (await self.get(key, 0, start - 1)).read_all() if start else b""
                if len(buffer) >= MIN_PART:
                    await flush()
            if start == size:
                continue
            if size - start >= MIN_PART or (last and not buffer):
                parts.append(await self._copy_part(state, len(parts) + 1, key, start, size - 1))
            else:
                buffer += await (await self.get(key, start, size - 1)).read_all()
                if len(buffer) >= self.part_size:
                    await flush()
        if buffer:
            await flush()
        return {**state, "parts": parts, "staged": [], "size": sum(size for _, size in sources)}

    async def _copy_part(self, state: UploadState, number: int, source: str, first: int, last: int) -> list:
        with _translated(source):
            reply = await self._s3.upload_part_copy(
                Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"], PartNumber=_part_number(number),
                CopySource={"Bucket": self.bucket, "Key": source}, CopySourceRange=f"bytes={first}-{last}")
        return [number, reply["CopyPartResult"]["ETag"]]

    async def cleanup(self, keep: UploadState, drop: UploadState) -> None:
        kept = {key for key, _ in keep["staged"]}
        dropped = [key for key, _ in drop["staged"] if key not in kept]
        for key in dropped:
            self._recent.take(key)
        if dropped:  # most chunks drop nothing: no call, so the request counter stays true
            await self.staging.delete_blobs(dropped)

    async def abort(self, state: UploadState) -> None:
        self._flushes.forget(state["mpu"])
        with contextlib.suppress(ObjectNotFound), _translated(state["key"]):
            await self._s3.abort_multipart_upload(Bucket=self.bucket, Key=state["key"], UploadId=state["mpu"])
        # By prefix rather than by the state: a request that died after staging but
        # before its compare-and-set left pieces no state names.
        await self.staging.delete_blob_prefix(f"{state['token']}/")


def _size(staged: list) -> int:
    return sum(size for _, size in staged)


def _part_number(number: int) -> int:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise BackendUnavailable("s3", f"part number {number} is outside 1..{MAX_PART_NUMBER}; "
                                 "too many abandoned attempts, start a new upload")
    return number
