"""A running md5 that can be saved between chunks and is computed off the event loop.

Sessions keep the md5 of the bytes received so far in ``rehashes``' 88-byte format, so
any instance continues it and ``complete`` never re-reads the file. ``rehashes`` holds
the GIL while it hashes: about 0.32 ms of every 200 KiB chunk, a fifth of the event
loop's busy time with many clients, and nothing else runs meanwhile. OpenSSL's MD5 (the
library hashlib uses) releases the GIL when called through ctypes and is a fifth faster,
but hashlib cannot save its state. So the bytes go through OpenSSL's own ``MD5_CTX``,
which converts exactly to and from ``rehashes``' format; big pieces are hashed in a
small thread pool while the loop reads the next one. Where libcrypto lacks the MD5
functions, ``rehashes`` does the work as before.

``rehashes`` state: A, B, C, D (4 x u32 LE), blocks hashed (u64 LE), bytes buffered
(u8), buffer (63 bytes). ``MD5_CTX``: A, B, C, D, bit count low and high (u32 each),
buffer (64 bytes), bytes buffered (u32): 92 bytes.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import rehashes

SAVED_SIZE = 88
_CTX_SIZE = 92
# Below this a thread hand-off costs more than the hashing it moves (64 KiB: about 80 us).
OFF_LOOP = 64 * 1024


def _libcrypto():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        update, final = lib.MD5_Update, lib.MD5_Final
    except (OSError, AttributeError):
        return None
    update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int
    final.argtypes, final.restype = [ctypes.c_char_p, ctypes.c_void_p], ctypes.c_int
    return lib


def _agrees(lib) -> bool:
    """The struct layout assumed below, checked once against hashlib and rehashes (a
    libcrypto built otherwise falls back to rehashes instead of hashing wrongly)."""
    data, head = bytes(range(256)) * 3, rehashes.PyMd5()
    head.update(data[:100])
    ctx = _to_ctx(head.serialize())
    lib.MD5_Update(ctx, data[100:], len(data) - 100)
    resumed = rehashes.PyMd5()
    resumed.update(data)
    digest = ctypes.create_string_buffer(16)
    same_state = _from_ctx(ctx) == resumed.serialize()
    lib.MD5_Final(digest, ctx)
    return same_state and digest.raw.hex() == hashlib.md5(data).hexdigest()


_pool: ThreadPoolExecutor | None = None


def _hashing_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="md5")
    return _pool


def _to_ctx(saved: bytes) -> ctypes.Array:
    abcd, blocks, buffered = saved[:16], int.from_bytes(saved[16:24], "little"), saved[24]
    bits = (blocks * 64 + buffered) * 8
    ctx = ctypes.create_string_buffer(_CTX_SIZE)
    ctx.raw = (abcd + struct.pack("<II", bits & 0xFFFFFFFF, bits >> 32)
               + saved[25:25 + buffered].ljust(64, b"\0") + struct.pack("<I", buffered))
    return ctx


def _from_ctx(ctx: ctypes.Array) -> bytes:
    raw = ctx.raw
    low, high = struct.unpack_from("<II", raw, 16)
    (buffered,) = struct.unpack_from("<I", raw, 88)
    blocks = ((high << 32 | low) // 8 - buffered) // 64
    return raw[:16] + blocks.to_bytes(8, "little") + bytes([buffered]) + raw[24:24 + buffered].ljust(63, b"\0")


_LIB = _libcrypto()
if _LIB is not None and not _agrees(_LIB):
    _LIB = None


class ResumableMd5:
    """``add`` pieces in order, ``await settled()``, then ``save`` or ``hexdigest``."""

    def __init__(self, saved: bytes | None = None) -> None:
        saved = saved or rehashes.PyMd5().serialize()
        if len(saved) != SAVED_SIZE:
            raise ValueError("not a saved md5 state")
        self._ctx = _to_ctx(saved) if _LIB is not None else None
        self._fallback = rehashes.PyMd5.deserialize(saved) if _LIB is None else None
        self._hashing: asyncio.Future | None = None  # the one piece being hashed in the pool

    def update(self, data: bytes) -> None:
        """Hash ``data`` in the calling thread."""
        if not isinstance(data, bytes):  # ctypes (and rehashes) take only bytes
            data = bytes(data)
        if self._ctx is not None:
            _LIB.MD5_Update(self._ctx, data, len(data))
        else:
            self._fallback.update(data)

    async def add(self, data: bytes) -> None:
        """Hash ``data`` after the pieces before it; a big piece in the pool, without waiting
        for it (the next ``add`` or ``settled`` does)."""
        await self.settled()
        if self._ctx is None or len(data) < OFF_LOOP:
            self.update(data)
        else:
            self._hashing = asyncio.get_running_loop().run_in_executor(_hashing_pool(), self.update, data)

    async def settled(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            await hashing

    def save(self) -> bytes:
        """The state in ``rehashes``' format; only once settled."""
        assert self._hashing is None, "save() before settled()"
        return _from_ctx(self._ctx) if self._ctx is not None else self._fallback.serialize()

    def hexdigest(self) -> str:
        assert self._hashing is None, "hexdigest() before settled()"
        if self._ctx is None:
            return rehashes.PyMd5.deserialize(self._fallback.serialize()).finalize()
        digest, copy = ctypes.create_string_buffer(16), ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        _LIB.MD5_Final(digest, copy)
        return digest.raw.hex()
