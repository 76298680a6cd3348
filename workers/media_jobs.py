"""Job handlers for stored files: probe (MIME, kind, size, dimensions, mode), then thumbnails.

Events from the core enqueue a ``probe`` job; a probed image enqueues a
``thumbnails`` job, and so does a preview image set on a link media. Both read
the stored bytes into a temporary file (images need random access; nothing is
held whole in memory) and run Pillow in an executor so the event loop never
stalls. Thumbnail decodes first reserve their estimated memory from the process's
DecodeBudget (GATEWAY_DECODE_MEMORY), so peak memory does not grow with the number
of workers. Results are written with a compare-and-set on the media's source key: if
the file was replaced meanwhile, the stale result is dropped and the job for the
new file does the work.

The media document carries the outcome for clients: ``processing`` is
``pending`` until the last job is done (``done``), or ``failed`` with
``processing_error`` when a job gave up.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, AsyncIterator

from gateway.core import clock
from gateway.core.jobs import Job, JobQueue
from storage.documents.port import DocumentStore
from storage.errors import ObjectNotFound
from storage.objects.port import ObjectStore
from workers import imaging
from workers.decode_budget import TRIM_ABOVE, DecodeBudget, release_freed_memory
from workers.runner import PermanentError

log = logging.getLogger("gateway.workers.media")

THUMBNAIL_PREFIX = "thumbnails"
PROBE_HEAD = 1024 * 1024  # libmagic reads 256 KiB; image headers almost always end well before 1 MiB
WRITE_BATCH = 1024 * 1024  # bytes handed to the executor per disk write: few thread hops, little held


def source_field(media: dict[str, Any]) -> str:
    """Where a media's image bytes live: its file, or the preview image copied for a link."""
    return "key" if media.get("key") else "image_copy_key"


def thumbnail_key(media_id: int, size: int, extension: str) -> str:
    return f"{THUMBNAIL_PREFIX}/{media_id}/{size}.{extension}"


@contextlib.asynccontextmanager
async def downloaded(objects: ObjectStore, key: str, end: int | None = None) -> AsyncIterator[Path]:
    """The object (up to byte ``end``) in a temporary file, streamed piece by piece, removed afterwards.

    Disk writes run in the default executor, a batch of pieces at a time: a slow or
    busy disk must not stall the event loop (and every request with it)."""
    loop = asyncio.get_running_loop()
    fd, name = await loop.run_in_executor(None, functools.partial(tempfile.mkstemp, prefix="gateway-job-"))
    try:
        out = os.fdopen(fd, "wb")
        try:
            body = await objects.get(key, 0, end)
            batch: list[bytes] = []
            batched = 0
            async for piece in body.chunks:
                batch.append(piece)
                batched += len(piece)
                if batched >= WRITE_BATCH:
                    await loop.run_in_executor(None, out.writelines, batch)
                    batch, batched = [], 0
            await loop.run_in_executor(None, out.writelines, batch)
        finally:
            await loop.run_in_executor(None, out.close)
        yield Path(name)
    finally:
        await loop.run_in_executor(None, os.unlink, name)  # a multi-GiB file takes a while to free


class MediaJobs:
    """Enqueues processing for media events and runs the ``probe`` and ``thumbnails`` jobs."""

    def __init__(self, documents: DocumentStore, objects: ObjectStore, queue: JobQueue, executor: Executor | None,
                 *, thumbnail_sizes: tuple[int, ...], max_pixels: int,
                 decode_memory: int = 512 * 1024 * 1024) -> None:
        self.documents = documents
        self.objects = objects
        self.queue = queue
        self.executor = executor
        self.thumbnail_sizes = thumbnail_sizes
        self.max_pixels = max_pixels
        self.decode_budget = DecodeBudget(decode_memory)  # shared by every worker of this process

    @property
    def handlers(self) -> dict[str, Any]:
        return {"probe": self.probe, "thumbnails": self.thumbnails}

    # events -> jobs

    async def on_event(self, event: str, media: dict[str, Any]) -> None:
        if event in ("upload.completed", "media.created"):
            await self.queue.enqueue("probe", media["id"], {"key": media["key"]})
        elif event == "preview.image_set":
            await self.queue.restart("thumbnails", media["id"], {"key": media["image_copy_key"]})
        elif event == "file.replaced":
            await self.queue.restart("probe", media["id"], {"key": media["key"]})
        elif event == "media.deleting":
            await self._delete_thumbnails(media)

    # jobs

    async def probe(self, job: Job) -> dict[str, Any]:
        media = await self._current(job)
        if media is None:
            return {"skipped": "media gone or replaced"}
        found = await self._probe(media)
        thumbnails = found.kind == "image" and found.width is not None and bool(self.thumbnail_sizes)
        changes = {"mime_type": found.mime_type, "kind": found.kind, "size": found.size,
                   "image_width": found.width, "image_height": found.height, "mode": found.mode,
                   "processing": "pending" if thumbnails else "done", "processing_error": None}
        if await self._save(media, changes) and thumbnails:
            await self.queue.restart("thumbnails", media["id"], {"key": media["key"]})
        return {"kind": found.kind, "mime_type": found.mime_type}

    async def _probe(self, media: dict[str, Any]) -> imaging.Probe:
        """Probe the head of the file; only an image whose header lies past it (a huge
        ICC profile or EXIF block) needs the whole file."""
        size = media["size"]
        head_only = size > PROBE_HEAD
        async with downloaded(self.objects, media["key"], PROBE_HEAD - 1 if head_only else None) as path:
            found = await self._in_executor(imaging.probe, path, max_pixels=self.max_pixels)
        if head_only and found.mime_type.startswith("image/") and found.width is None:
            async with downloaded(self.objects, media["key"]) as path:
                found = await self._in_executor(imaging.probe, path, max_pixels=self.max_pixels)
        return dataclasses.replace(found, size=size)

    async def thumbnails(self, job: Job) -> dict[str, Any]:
        media = await self._current(job)
        if media is None:
            return {"skipped": "media gone or replaced"}
        async with downloaded(self.objects, media[source_field(media)]) as path:
            try:
                made = await self._make_thumbnails(path)
            except imaging.ImageRejected as exc:
                raise PermanentError(exc.reason, str(exc)) from None
        listed = []
        for number, thumb in enumerate(made, 1):
            extension = thumb.format.lower().replace("jpeg", "jpg")
            info = await self.objects.put(thumbnail_key(media["id"], thumb.size, extension), thumb.data,
                                          thumb.content_type)
            listed.append({"id": number, "size": thumb.size, "width": thumb.width, "height": thumb.height,
                           "key": info.key, "content_type": thumb.content_type, "bytes": info.size,
                           "etag": info.etag})
        await self._save(media, {"thumbnails": listed, "processing": "done", "processing_error": None})
        return {"thumbnails": [t["size"] for t in listed]}

    async def _make_thumbnails(self, path: Path) -> list[imaging.Thumbnail]:
        """Decode within the process's memory budget, then hand big decodes' memory back to the OS."""
        cost = await self._in_executor(imaging.decode_cost, path, self.thumbnail_sizes, max_pixels=self.max_pixels)
        async with self.decode_budget.reserve(cost):
            return await self._in_executor(_thumbnails_then_trim, path, self.thumbnail_sizes, self.max_pixels,
                                           trim=cost > TRIM_ABOVE)

    async def failed(self, job: Job, error: str) -> None:
        """The job gave up: show it on the media instead of leaving it pending forever."""
        media = await self._current(job)
        if media is not None:
            await self._save(media, {"processing": "failed", "processing_error": f"{job['kind']}: {error}"})

    # helpers

    async def _current(self, job: Job) -> dict[str, Any] | None:
        media = await self.documents.get("media", job["subject"])
        if media is None or media.get(source_field(media)) != job["payload"].get("key"):
            return None
        return media

    async def _save(self, media: dict[str, Any], changes: dict[str, Any]) -> bool:
        saved = await self.documents.update("media", media["id"], {**changes, "updated_at": clock.now()},
                                            expect={source_field(media): media.get(source_field(media))})
        return saved is not None

    async def _in_executor(self, function, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: function(*args, **kwargs))

    async def _delete_thumbnails(self, media: dict[str, Any]) -> None:
        for thumb in media.get("thumbnails") or []:
            with contextlib.suppress(ObjectNotFound):
                await self.objects.delete(thumb["key"])


def _thumbnails_then_trim(path: Path, sizes: tuple[int, ...], max_pixels: int, *,
                          trim: bool) -> list[imaging.Thumbnail]:
    try:
        return imaging.make_thumbnails(path, sizes, max_pixels=max_pixels)
    finally:  # the decoded pixels are gone once make_thumbnails returns
        if trim:
            release_freed_memory()
