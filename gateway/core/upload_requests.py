"""DatoCMS upload requests: a short-lived place, bound to one user, for one file's bytes.

A client asks for an upload request, PUTs the raw bytes to the URL it gets (with no
Authorization header), then creates an upload from the request's ``path``. The
path is ``/{user_id}/{hash_code}-{filename}``, the object key
``dato/{user_id}/{hash_code}/{filename}``; the media made from it keeps that hash.

Two kinds of URL:

- **presigned** (an object store with the ``PresignedPuts`` capability: S3 with a
  public endpoint): the bytes go straight to S3 and never pass the gateway. Nothing
  can bound their size there, so ``take`` checks it and deletes what is too big. The
  URL stays valid until it expires, so ``take`` copies the file (inside the store)
  under a key no URL names, and the sweeper deletes whatever a later PUT left.
- **gateway**: ``receive`` takes the bytes. The URL carries a random single-use token
  (256 bits) stored only as its SHA-256, like API tokens. A PUT first claims the
  request by compare-and-set (``open`` -> ``receiving``, with a lease renewed while
  bytes flow), so two PUTs with one token cannot both write; the bytes stream into
  the object store (one ``put`` up to a block, else multipart, block by block) while
  their md5 is computed; a second compare-and-set marks the request ``received``.
  A PUT that fails frees the claim (``open`` again, its partial object aborted); one
  whose instance died leaves a lease that runs out, after which a new PUT may claim.

``take`` hands the object to ``POST /dato/uploads`` once (``taken``); ``sweep``
deletes the objects and documents of requests that expired untaken.

Statuses: open -> receiving -> received -> taken, or open -> taken (presigned);
``rejected`` when the object was too big, ``swept`` while the sweeper removes one.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import itertools
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

from gateway.core import clock
from gateway.core.auth import User, hash_token
from gateway.core.chunk_fence import ClientAborted, received
from gateway.core.errors import GatewayError, bad_request, not_found, upload_too_large
from gateway.core.names import safe_filename
from gateway.core.resumable_md5 import ResumableMd5
from storage.documents.port import DocumentStore
from storage.errors import ObjectNotFound
from storage.objects.port import Blocks, Chunks, IncompleteBody, ObjectStore, presigns_puts

log = logging.getLogger("gateway.upload_requests")

COLLECTION = "upload_requests"
OPEN, RECEIVING, RECEIVED, TAKEN, REJECTED, SWEPT = "open", "receiving", "received", "taken", "rejected", "swept"
# S3 checks a presigned URL when the PUT starts; a big PUT begun just before expiry may
# finish well after it, so its object is swept only this much later.
LATE_PUT_GRACE = 3600.0
MAX_PATH = 1024  # longer is no path of ours: refused before any lookup
SWEEP_BATCH = 500
TAKEN_PREFIX = "taken/"  # presigned files are copied here when taken (see _own_copy)
DEFAULT_BLOCK = 8 * 1024 * 1024
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


@dataclass(frozen=True)
class UploadRequest:
    id: str  # the path: /{user_id}/{hash_code}-{filename}
    key: str
    hash_code: str
    filename: str
    url: str | None  # a presigned S3 URL; None: the gateway receives the bytes, authorized by ``token``
    token: str | None  # shown once, stored hashed
    request_headers: dict[str, str]
    expires_at: float


@dataclass(frozen=True)
class ReceivedObject:
    path: str
    size: int
    md5: str


@dataclass(frozen=True)
class TakenObject:
    path: str
    key: str
    hash_code: str
    filename: str
    size: int
    md5: str | None  # None when the bytes went straight to S3 (its ETag is not always the md5)


class LeaseLost(GatewayError):
    def __init__(self) -> None:
        super().__init__(409, "upload_in_progress", "another request took over this upload URL",
                         headers={"Retry-After": "1"})


def invalid_path(message: str, reason: str) -> GatewayError:
    """422 naming the ``path`` attribute: DatoCMS's INVALID_FIELD shape once rendered under /dato."""
    return GatewayError(422, "VALIDATION_INVALID", message, field="path", reason=reason)


class UploadRequests:
    def __init__(self, documents: DocumentStore, objects: ObjectStore, *, expiry: int, max_size: int,
                 lease: float = 5.0, block_size: int | None = None) -> None:
        self.documents = documents
        self.objects = objects
        self.expiry = expiry
        self.max_size = max_size
        self.lease = lease
        # One S3 part (or 8 MiB on disk): a body up to this is one put, a longer one goes multipart.
        self.block_size = block_size or getattr(objects, "part_size", DEFAULT_BLOCK)

    # asking

    async def create(self, user: User, filename: str) -> UploadRequest:
        name = safe_filename(filename)
        hash_code = uuid.uuid4().hex
        path, key = f"/{user.id}/{hash_code}-{name}", f"dato/{user.id}/{hash_code}/{name}"
        now = clock.now()
        doc: dict[str, Any] = {"id": path, "user_id": user.id, "hash_code": hash_code, "filename": name, "key": key,
                               "status": OPEN, "created_at": now, "expires_at": now + self.expiry, "claim": None,
                               "lease_until": 0.0, "target": None, "size": None, "md5": None}
        url = token = None
        if presigns_puts(self.objects):
            url = self.objects.presigned_put(key, self.expiry)  # type: ignore[attr-defined]
            doc["presigned"] = True
        else:
            token = secrets.token_urlsafe(32)
            doc.update(presigned=False, token_hash=hash_token(token))
        await self.documents.insert(COLLECTION, doc)
        log.info("upload request created", extra={"path": path, "presigned": doc["presigned"]})
        return UploadRequest(path, key, hash_code, name, url, token, {}, doc["expires_at"])

    # receiving (gateway URLs)

    async def receive(self, token: str, chunks: Chunks, length: int | None,
                      content_type: str = "application/octet-stream") -> ReceivedObject:
        """Store the body of a PUT to a gateway URL; refused unless the token's request is open."""
        doc = await self._by_token(token)
        if length is None:
            raise GatewayError(411, "length_required", "send the file with a Content-Length header")
        if length > self.max_size:
            raise upload_too_large(self.max_size)  # before a byte is read; the request stays usable
        claim = await self._claim(doc)
        kind = content_type if CONTENT_TYPE.match(content_type or "") else "application/octet-stream"
        writer = _Writer(self, doc, claim)
        try:
            size, md5 = await writer.store(chunks, length, kind)
        except BaseException as exc:
            await asyncio.shield(writer.give_up())
            raise _client_error(exc) from None
        done = await self.documents.update(
            COLLECTION, doc["id"], {"status": RECEIVED, "size": size, "md5": md5, "claim": None, "lease_until": 0.0,
                                    "target": None, "received_at": clock.now()},
            expect={"claim": claim, "status": RECEIVING})
        if done is None:  # our lease ran out and another PUT claimed the request: its bytes win
            raise LeaseLost()
        log.info("upload request received", extra={"path": doc["id"], "size": size})
        return ReceivedObject(doc["id"], size, md5)

    async def _by_token(self, token: str) -> dict[str, Any]:
        # A wrong token and an unknown one are the same 404: nothing tells them apart.
        if not token or len(token) > 256:
            raise not_found("upload request")
        wanted = hash_token(token)
        found = await self.documents.find(COLLECTION, {"token_hash": wanted}, limit=1)
        if not found or not hmac.compare_digest(found[0].get("token_hash") or "", wanted):
            raise not_found("upload request")
        return found[0]

    async def _claim(self, doc: dict[str, Any]) -> str:
        now = clock.now()
        if doc["status"] in (RECEIVED, TAKEN, REJECTED):
            raise GatewayError(409, "upload_request_used", "this upload URL was already used; ask for a new one")
        if doc["status"] == SWEPT or doc["expires_at"] < now:
            raise GatewayError(410, "upload_request_expired", "this upload URL has expired; ask for a new one")
        if doc["status"] == RECEIVING and doc["lease_until"] >= now:
            raise GatewayError(409, "upload_in_progress", "another request is sending this file",
                               headers={"Retry-After": "1"})
        claim = uuid.uuid4().hex
        taken = await self.documents.update(
            COLLECTION, doc["id"], {"status": RECEIVING, "claim": claim, "lease_until": now + self.lease},
            expect={"status": doc["status"], "claim": doc["claim"]})
        if taken is None:
            raise GatewayError(409, "upload_in_progress", "another request is sending this file",
                               headers={"Retry-After": "1"})
        if doc.get("target"):  # left by a PUT whose instance died: its lease ran out
            with contextlib.suppress(Exception):
                await self.objects.abort(doc["target"])
        return claim

    # taking (POST /dato/uploads)

    async def take(self, user: User, path: str) -> TakenObject:
        """The request's object, handed over once: this user's path, with a file no bigger than
        the limit; a 422 on ``path`` otherwise (another user's path looks unknown)."""
        doc = await self.documents.get(COLLECTION, path) if isinstance(path, str) and len(path) <= MAX_PATH else None
        if doc is None or doc["user_id"] != user.id or doc["status"] == SWEPT:
            raise invalid_path("no upload request has this path", "unknown")
        if doc["status"] == TAKEN:
            raise invalid_path("this path was already used for an upload", "taken")
        if doc["status"] == REJECTED:
            raise invalid_path(f"the file is larger than {self.max_size} bytes", "too_big")
        if doc["expires_at"] < clock.now():
            raise invalid_path("this upload request has expired", "expired")
        if not doc["presigned"] and doc["status"] != RECEIVED:
            raise invalid_path("no file was uploaded to this request's URL", "not_uploaded")
        try:
            info = await self.objects.stat(doc["key"])
        except ObjectNotFound:
            raise invalid_path("no file was uploaded to this request's URL", "not_uploaded") from None
        if info.size > self.max_size:
            if await self.documents.update(COLLECTION, path, {"status": REJECTED, "size": info.size},
                                           expect={"status": doc["status"]}):
                await self.objects.delete(doc["key"])
            raise invalid_path(f"the file is larger than {self.max_size} bytes", "too_big")
        taken = await self.documents.update(COLLECTION, path, {"status": TAKEN, "size": info.size,
                                                               "taken_from": doc["status"], "taken_at": clock.now()},
                                            expect={"status": doc["status"]})
        if taken is None:
            raise invalid_path("this path was already used for an upload", "taken")
        result = TakenObject(path, doc["key"], doc["hash_code"], doc["filename"], info.size,
                             None if doc["presigned"] else doc["md5"])
        if doc["presigned"]:
            try:
                result = dataclasses.replace(result, key=await self._own_copy(doc["key"], info.size))
            except BaseException:
                await asyncio.shield(self.give_back(result))
                raise
        return result

    async def _own_copy(self, key: str, size: int) -> str:
        """A presigned URL stays valid until it expires, so its owner could PUT other bytes
        (of any size) to its key after the take. The upload gets a copy made inside the
        store, under a key no URL names; the sweeper deletes the original key's object
        once the URL is dead (see ``sweep``)."""
        own = TAKEN_PREFIX + key
        state = await self.objects.begin(own, "application/octet-stream")
        state = await self.objects.concatenate(state, [(key, size)])
        await self.objects.complete(state, fence=len(state.get("parts", [])) + 1)
        with contextlib.suppress(ObjectNotFound):
            await self.objects.delete(key)
        return own

    async def give_back(self, taken: TakenObject) -> None:
        """Undo ``take`` when the upload could not be made after all: the object is the
        request's again (takeable, or swept when it expires) instead of nobody's."""
        doc = await self.documents.get(COLLECTION, taken.path)
        if doc is not None and doc["status"] == TAKEN:
            await self.documents.update(COLLECTION, taken.path, {"status": doc.get("taken_from") or OPEN},
                                        expect={"status": TAKEN})

    # sweeping

    async def sweep(self) -> int:
        """Delete the objects and documents of expired requests never taken, and the documents of
        taken ones (their objects belong to media now); returns how many objects went."""
        now, swept = clock.now(), 0
        for where in ({"presigned": False, "expires_at": {"$lt": now}},
                      {"presigned": True, "expires_at": {"$lt": now - LATE_PUT_GRACE}}):
            for doc in await self.documents.find(COLLECTION, where, sort=[("expires_at", 1)], limit=SWEEP_BATCH):
                if doc["status"] == TAKEN:
                    if doc["presigned"]:  # the upload has its own copy; this is whatever came after the take
                        with contextlib.suppress(ObjectNotFound):
                            await self.objects.delete(doc["key"])
                    await self.documents.delete(COLLECTION, doc["id"], expect={"status": TAKEN})
                    continue
                if doc["status"] == RECEIVING and doc["lease_until"] >= now:
                    continue  # a PUT that began before expiry is still sending; its lease says so
                claimed = await self.documents.update(COLLECTION, doc["id"], {"status": SWEPT},
                                                      expect={"status": doc["status"], "claim": doc["claim"]})
                if claimed is None:
                    continue  # taken, received or swept meanwhile
                if doc.get("target"):
                    await self.objects.abort(doc["target"])
                await self.objects.delete(doc["key"])
                await self.documents.delete(COLLECTION, doc["id"])
                log.info("upload request swept", extra={"path": doc["id"]})
                swept += 1
        return swept


class _Writer:
    """One PUT's bytes into the object store under its claim, with the md5 on the way."""

    def __init__(self, owner: UploadRequests, doc: dict[str, Any], claim: str) -> None:
        self.owner, self.doc, self.claim = owner, doc, claim
        self.documents, self.objects = owner.documents, owner.objects
        self.renewed_at = clock.now()
        self.target: dict[str, Any] | None = None
        self.stored = False  # the object exists at the key (put or completed)

    async def store(self, chunks: Chunks, length: int, content_type: str) -> tuple[int, str]:
        md5 = ResumableMd5()
        pieces = received(chunks, md5, self)  # hashed as they pass, the claim kept
        key = self.doc["key"]
        if length <= self.owner.block_size:  # at most one part: one request to the store
            data = b"".join([piece async for piece in _exactly(pieces, length)])
            await self.keep(force=True)
            info = await self.objects.put(key, data, content_type)
        else:
            self.target = await self.objects.begin(key, content_type)
            if await self.documents.update(COLLECTION, self.doc["id"], {"target": self.target},
                                           expect={"claim": self.claim}) is None:
                raise LeaseLost()  # recorded so the sweeper can abort it if this instance dies
            numbers = itertools.count(1)  # S3 part numbers: the claim makes us the only writer

            async def fence() -> int:
                return next(numbers)

            source, offset = Blocks(pieces), 0
            while offset < length:
                size = min(self.owner.block_size, length - offset)
                state = await self.objects.append(self.target, offset, source.block(size), size, fence=fence)
                await self.objects.cleanup(keep=state, drop=self.target)
                self.target, offset = state, offset + size
            await self.keep(force=True)  # still ours just before the object appears at the key
            info = await self.objects.complete(self.target, fence=next(numbers))
        self.stored = True
        if info.size != length:
            raise IncompleteBody(length, info.size)
        await md5.settled()
        return info.size, md5.hexdigest()

    async def keep(self, *, force: bool = False) -> None:
        """Renew the claim's lease every third of its length while bytes flow."""
        now = clock.now()
        if not force and now - self.renewed_at < self.owner.lease / 3:
            return
        renewed = await self.documents.update(COLLECTION, self.doc["id"], {"lease_until": now + self.owner.lease},
                                              expect={"claim": self.claim})
        if renewed is None:
            raise LeaseLost()
        self.renewed_at = now

    async def give_up(self) -> None:
        """After a failed PUT: drop what it wrote and open the request again (if still ours)."""
        with contextlib.suppress(Exception):
            if self.target is not None and not self.stored:
                await self.objects.abort(self.target)
            freed = await self.documents.update(
                COLLECTION, self.doc["id"], {"status": OPEN, "claim": None, "lease_until": 0.0, "target": None},
                expect={"claim": self.claim})
            if freed is not None and self.stored:
                await self.objects.delete(self.doc["key"])  # stored, but never marked received: not accepted


async def _exactly(pieces: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    received = 0
    async for piece in pieces:
        received += len(piece)
        if received > length:
            raise IncompleteBody(length, received)
        yield piece
    if received != length:
        raise IncompleteBody(length, received)


def _client_error(exc: BaseException) -> BaseException:
    """What a failed PUT means for the client: its own fault, or the store's."""
    if isinstance(exc, IncompleteBody):
        return bad_request("invalid_body_length", "the body's length differs from its Content-Length")
    if isinstance(exc, ClientAborted):
        return GatewayError(499, "client_aborted", "the client closed the request before the file arrived")
    return exc
