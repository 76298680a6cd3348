"""The object store port.

Two capabilities, in the spirit of tusd's DataStore: plain objects (put, get with a
byte range, stat, delete) and resumable upload targets (begin, append, complete,
abort); plus an optional one, ``PresignedPuts`` (URLs a client PUTs to directly),
which only some stores offer. Upload state is a small JSON-able dict that the core
keeps in the upload session document, so any gateway instance can continue any
upload: the adapter holds nothing between calls.

An append either stores all ``length`` bytes durably and returns the new state, or
raises and leaves the previous state valid (bytes it wrote are ignored and cleaned
up by ``cleanup`` or ``abort``). A body that breaks off is therefore not an append
that half happened: the core (``gateway.core.streams``) cuts long bodies into
blocks of at most one part and appends and commits them one by one, so what was
received before a break is committed as a last, shorter block, with the md5 state
matching the committed offset; memory per request stays at about two blocks.

Fencing: the core serializes writers with a lease, but a writer can stall past its
lease while another one commits the same range. So an append never changes bytes
that a committed state points at: each attempt writes where only its own new state
points (a fresh segment file, a fresh staged key, an S3 part number no other attempt
uses), and only the core's compare-and-set decides which new state becomes the
committed one. ``fence`` is an async callable that returns a fencing token, an
integer strictly increasing per upload, for adapters that need a unique number per
attempt (S3 part numbers); it takes the session's lease, so call it only when
needed (local and staged writes do not). ``complete`` gets a token above every one
handed out so far.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

UploadState = dict[str, Any]
Chunks = AsyncIterator[bytes]
Fence = Callable[[], Awaitable[int]]


class IncompleteBody(Exception):
    """The client sent fewer (or more) bytes than it announced."""

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"expected {expected} bytes, received {received}")
        self.expected = expected
        self.received = received


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str = "application/octet-stream"


@dataclass
class ObjectBody:
    """A (possibly ranged) object read: metadata plus the bytes as an async iterator."""

    info: ObjectInfo
    start: int
    end: int  # inclusive
    chunks: Chunks

    async def read_all(self) -> bytes:
        return b"".join([c async for c in self.chunks])


class ObjectStore(Protocol):
    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the store answers."""

    # plain objects
    async def put(self, key: str, data: bytes, content_type: str = ...) -> ObjectInfo: ...

    async def stat(self, key: str) -> ObjectInfo:
        """ObjectNotFound if missing. Key and size are exact; ``etag`` and ``content_type``
        are the store's own (S3 keeps what it was told; local disk keeps no metadata, so it
        guesses the type from the name and derives a validator from the file): the media
        document is where a MIME type and md5 are kept."""

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        """Bytes ``start..end`` (inclusive; None = to the end). ObjectNotFound if missing."""

    async def delete(self, key: str) -> None:
        """Idempotent."""

    # resumable upload targets
    async def begin(self, key: str, content_type: str) -> UploadState: ...

    async def append(self, state: UploadState, offset: int, chunks: Chunks, length: int, *,
                     fence: Fence) -> UploadState:
        """Store exactly ``length`` bytes at ``offset`` (== bytes stored so far), fenced as above."""

    async def complete(self, state: UploadState, *, fence: int) -> ObjectInfo:
        """Turn the appended bytes into the object at the state's key. Idempotent: a
        retried or concurrent complete of the same state returns the same object."""

    async def cleanup(self, keep: UploadState, drop: UploadState) -> None:
        """Delete what ``drop`` references and ``keep`` does not.

        The core calls it after the session's compare-and-set: with keep=new state on
        success (the old staged bytes are now inside a part), keep=old on failure.
        Until then both states stay readable, so a crash loses no acknowledged byte.
        """

    async def abort(self, state: UploadState) -> None:
        """Forget an unfinished upload and everything it staged. Idempotent."""


class PresignedPuts(Protocol):
    """Optional capability: a URL a client PUTs an object's bytes to directly, bypassing the gateway.

    Like tusd's optional interfaces, a store offers it by having it (the S3 adapter,
    when it knows an endpoint clients can reach); check with ``presigns_puts(store)``.
    The URL signs no Content-Type, so the client may send any; nothing bounds the size
    the client sends, so whoever takes the object checks it.
    """

    presigned_puts: bool  # False when the store cannot hand out such URLs (no public endpoint)

    def presigned_put(self, key: str, expires_in: int) -> str:
        """An absolute URL that accepts one PUT of ``key``'s bytes for ``expires_in`` seconds."""


def presigns_puts(store: object) -> bool:
    return bool(getattr(store, "presigned_puts", False)) and callable(getattr(store, "presigned_put", None))


async def read_whole(chunks: Chunks, length: int) -> bytes:
    """All of a stream that must be exactly ``length`` bytes, joined once (a staged
    chunk: ``read_exactly`` would copy each byte three times more).

    Raises IncompleteBody if the stream ends early or runs past ``length``.
    """
    pieces, received = [], 0
    async for chunk in chunks:
        received += len(chunk)
        if received > length:
            raise IncompleteBody(length, received)
        pieces.append(chunk)
    if received != length:
        raise IncompleteBody(length, received)
    return b"".join(pieces)


class Blocks:
    """Cut one body into consecutive blocks of given sizes, each a stream of its own (one S3
    part each), carrying a piece that spans two blocks over to the next."""

    def __init__(self, body: Chunks) -> None:
        self.pieces = body.__aiter__()
        self.leftover = b""

    async def block(self, size: int, kept: bytearray | None = None) -> AsyncIterator[bytes]:
        """The next ``size`` bytes (fewer if the body ends: the store reports the wrong length);
        ``kept`` collects them too, for a caller that must keep what arrived."""
        while size > 0:
            piece, self.leftover = self.leftover, b""
            if not piece:
                try:
                    piece = await self.pieces.__anext__()
                except StopAsyncIteration:
                    return
            piece, self.leftover = piece[:size], piece[size:]
            size -= len(piece)
            if kept is not None:
                kept += piece
            yield piece


async def read_exactly(chunks: Chunks, length: int, piece: int) -> AsyncIterator[bytes]:
    """Re-cut a stream into pieces of ``piece`` bytes (the last may be shorter).

    Raises IncompleteBody if the stream ends early or runs past ``length``.
    """
    buffer = bytearray()
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > length:
            raise IncompleteBody(length, received)
        buffer += chunk
        while len(buffer) >= piece:
            yield bytes(buffer[:piece])
            del buffer[:piece]
    if received != length:
        raise IncompleteBody(length, received)
    if buffer:
        yield bytes(buffer)
