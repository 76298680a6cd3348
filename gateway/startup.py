"""Waiting for network backends at start (issue 8, A10).

In a full local stack the gateway starts together with SeaweedFS and the MongoDB
server, which take several seconds (SeaweedFS about 20) to answer. Giving up at
once made the process manager stop everything, so ``serve`` first opens and closes
each network store until it answers, with backoff, logging one structured line per
failed attempt, and gives up with a clear message after ``startup_wait`` seconds.
Local disk and SQLite need no waiting: their errors are not going to go away.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from config.settings import Settings
from gateway import backends
from storage.errors import StorageError

log = logging.getLogger("gateway.startup")

FIRST_DELAY = 0.5
MAX_DELAY = 5.0
MAX_PROBE = 2.0  # seconds one attempt may take, so a dead backend is retried rather than awaited


class BackendsNotReady(RuntimeError):
    pass


def _without_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


def _network_stores(settings: Settings) -> list[tuple[str, str, Callable[[Settings], object]]]:
    stores = []
    if settings.document_store == "mongodb":
        stores.append(("mongodb", _without_password(settings.mongodb_uri), backends.document_store))
    if settings.object_store == "s3":
        stores.append(("s3", settings.s3_endpoint or "AWS", lambda s: backends.object_store(s, staging=None)))
    return stores


async def _probe(store) -> None:
    try:
        await store.open()
        await store.ping()
    finally:
        # Also after a failed open: a half-opened client must not be left behind.
        with contextlib.suppress(Exception):
            await store.close()


async def wait_for_backends(settings: Settings, wait: float | None = None) -> None:
    """Return once every network store answers; ``BackendsNotReady`` after ``wait`` seconds."""
    wait = settings.startup_wait if wait is None else wait
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    for backend, address, make in _network_stores(settings):
        attempt, delay = 0, FIRST_DELAY
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            quick = dataclasses.replace(settings, backend_timeout=max(0.5, min(settings.backend_timeout,
                                                                               MAX_PROBE, remaining)))
            try:
                await asyncio.wait_for(_probe(make(quick)), timeout=max(1.0, min(MAX_PROBE * 3, remaining)))
                if attempt > 1:
                    log.info("backend ready", extra={"backend": backend, "address": address, "attempt": attempt})
                break
            except (StorageError, OSError, asyncio.TimeoutError) as exc:
                error = str(exc) or type(exc).__name__
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BackendsNotReady(f"{backend} at {address} did not answer within {wait:g} s "
                                       f"(GATEWAY_STARTUP_WAIT): {error}")
            pause = min(delay, remaining)
            log.warning("waiting for backend", extra={"backend": backend, "address": address, "attempt": attempt,
                                                      "retry_in": round(pause, 2), "error": error[:300]})
            await asyncio.sleep(pause)
            delay = min(delay * 2, MAX_DELAY)
