"""Fencing a chunk's write, and reading its bytes from the client.

Object stores write every attempt where only that attempt's new state points (a
segment file, a staged blob, a fresh S3 part number), so a chunk needs no lock to
be safe: the commit is one compare-and-set on ``{offset: START}``, and a writer
that lost the race only wasted its own bytes. What does need coordination is the
S3 part number, because on AWS the last upload of a number wins. So a store that
uploads a part asks for a fencing token; ``Fence.take`` then takes the session's
lease by compare-and-set and returns a new ``epoch``, strictly increasing per
upload, which the store uses as the part number. The lease is short and renewed
while bytes flow (``keep``), so an instance that died frees the upload within
seconds, and a writer whose lease another chunk took stops at its next piece.
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, AsyncIterator

from gateway.core import clock
from gateway.core.errors import GatewayError, bad_request
from gateway.core.resumable_md5 import ResumableMd5
from storage.documents.port import DocumentStore
from storage.objects.port import Chunks


class LeaseLost(Exception):
    """Raised into a chunk's byte stream when another request has taken its lease."""


class ClientAborted(Exception):
    """The client's body broke off (disconnect, idle timeout): not a server fault."""


def wrong_offset(start: int, offset: int) -> GatewayError:
    return bad_request("invalid_offset", f"chunk starts at {start} but the upload is at {offset}", offset=offset)


def chunk_in_progress(message: str = "another request is writing this upload; retry shortly",
                      **extra: Any) -> GatewayError:
    return GatewayError(409, "chunk_in_progress", message, headers={"Retry-After": "1"}, **extra)


class Fence:
    def __init__(self, documents: DocumentStore, session: dict[str, Any], start: int, seconds: float, *,
                 new: bool) -> None:
        self.documents = documents
        self.session = session
        self.start = start
        self.seconds = seconds
        self.new = new  # a session not stored yet: nobody else can know its id
        self.epoch: int = session.get("epoch") or 0
        self.lease_id: str | None = None
        self.renewed_at = 0.0

    async def take(self) -> int:
        """The fencing token for this attempt (taking the session's lease once)."""
        if self.lease_id is not None:
            return self.epoch
        lease_id, now = uuid.uuid4().hex, clock.now()
        epoch = self.session.get("epoch")
        if not self.new and await self._lease(lease_id, now, epoch) is None:
            current = await self.documents.get("uploads", self.session["id"]) or self.session
            if current["offset"] != self.start:
                raise wrong_offset(self.start, current["offset"])
            # Only the epoch moved (an attempt that took the lease and failed, seen through a
            # session this instance remembered): take it from there, once.
            if current.get("epoch") == epoch or current.get("lease_until", 0.0) >= now \
                    or await self._lease(lease_id, now, current.get("epoch")) is None:
                raise chunk_in_progress(offset=current["offset"])
            epoch = current.get("epoch")
        self.lease_id, self.epoch, self.renewed_at = lease_id, (epoch or 0) + 1, now
        return self.epoch

    async def _lease(self, lease_id: str, now: float, epoch: int | None) -> dict[str, Any] | None:
        return await self.documents.update(
            "uploads", self.session["id"],
            {"lease_id": lease_id, "lease_until": now + self.seconds, "epoch": (epoch or 0) + 1},
            expect={"offset": self.start, "status": "uploading", "lease_until": {"$lt": now}, "epoch": epoch})

    async def keep(self) -> None:
        """Renew the lease, if one was taken, every third of its length while bytes flow."""
        now = clock.now()
        if self.lease_id is None or self.new or now - self.renewed_at < self.seconds / 3:
            return
        renewed = await self.documents.update("uploads", self.session["id"], {"lease_until": now + self.seconds},
                                              expect={"lease_id": self.lease_id})
        if renewed is None:
            raise LeaseLost()
        self.renewed_at = now

    async def release(self) -> None:
        """Free the lease after a failed attempt; shielded, so a cancelled handler still frees it."""
        if self.lease_id is None or self.new:
            return
        with contextlib.suppress(Exception):
            await asyncio.shield(self.documents.update(
                "uploads", self.session["id"], {"lease_id": None, "lease_until": 0.0},
                expect={"lease_id": self.lease_id}))


async def received(body: Chunks, md5: ResumableMd5, fence: Fence) -> AsyncIterator[bytes]:
    """The client's bytes, hashed as they pass (``await md5.settled()`` once they are all
    through); errors of the client's side become ClientAborted."""
    pieces = body.__aiter__()
    while True:
        try:
            piece = await pieces.__anext__()
        except StopAsyncIteration:
            return
        except (ConnectionError, TimeoutError) as exc:
            raise ClientAborted(str(exc) or type(exc).__name__) from None
        await md5.add(piece)
        await fence.keep()
        yield piece
