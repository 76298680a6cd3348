"""Bounding the memory that image decodes hold, across every worker of the process.

The pixel cap (GATEWAY_MAX_IMAGE_PIXELS) is per image: five workers each decoding a
7000x7000 16-bit PNG held about 1 GB at once, and the more workers, the more. So
every decode first reserves its estimated peak (imaging.decode_cost, from the
header) from one ``DecodeBudget`` shared by the process; decodes that do not fit
wait their turn, first come first served so a big image is not starved by a stream
of small ones. An image whose estimate exceeds the whole budget (but passed the
pixel cap) still runs, alone.

Freed pixel memory does not go back to the OS by itself: each executor thread
allocates from its own glibc arena, and once a large block has been freed glibc
raises its mmap threshold and serves the next ones from those arenas, which keep
their peak. Measured: three rounds of five 7000x7000 RGB decodes left RSS at about
930 MB; ``malloc_trim(0)`` took it back to 36 MB in 70 ms. ``release_freed_memory``
does that after each big decode.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import ctypes.util
import logging
from typing import AsyncIterator

log = logging.getLogger("gateway.workers.memory")

# Decodes estimated above this hand their memory back to the OS when they finish;
# smaller ones are reused from the arenas soon enough and not worth a trim.
TRIM_ABOVE = 32 * 1024 * 1024


class DecodeBudget:
    """A weighted, first-come-first-served semaphore over bytes of decode memory.

    Created outside the event loop (no loop objects until someone waits)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("the decode memory budget must be positive")
        self.capacity = capacity
        self.in_use = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    @contextlib.asynccontextmanager
    async def reserve(self, cost: int) -> AsyncIterator[int]:
        """Hold ``cost`` bytes (at most the whole budget) while the block runs; yields what was held."""
        held = min(max(cost, 0), self.capacity)
        await self._acquire(held)
        try:
            yield held
        finally:
            self._release(held)

    async def _acquire(self, cost: int) -> None:
        if not self._waiters and self.in_use + cost <= self.capacity:
            self.in_use += cost
            return
        entry = (cost, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self._release(cost)  # granted, then cancelled before it could run: give it back
            else:
                with contextlib.suppress(ValueError):  # _grant may have dropped it already
                    self._waiters.remove(entry)
                self._grant()  # it may have been holding up smaller ones behind it
            raise

    def _release(self, cost: int) -> None:
        self.in_use -= cost
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            cost, future = self._waiters[0]
            if future.done():  # its waiter was cancelled and has not run its cleanup yet
                self._waiters.popleft()
                continue
            if self.in_use + cost > self.capacity:
                return
            self._waiters.popleft()
            self.in_use += cost
            future.set_result(None)


def _malloc_trim():
    """glibc's malloc_trim, or None where there is none (macOS, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Give the free pages of every malloc arena back to the OS (blocking: run it in an executor)."""
    if _TRIM is not None:
        _TRIM(0)
