"""Thin handlers for the ``probe``, ``thumbnails`` and ``attributes`` jobs of stored files.

Core decides which jobs a media needs and records their results
(``gateway.core.processing``); these handlers only do the work. ``probe`` runs the
one probe (``gateway.core.sniff``) on the stored file, and computes the md5 of a
file whose bytes never streamed through the gateway (its ``md5`` is None).
``thumbnails`` and ``attributes`` (blurhash, thumbhash, colours, EXIF:
``workers.image_attributes``) read the image (the file, or a link's copied preview
image) into a temporary file (images need random access; nothing is held whole in
memory) and run Pillow in an executor so the event loop never stalls; decodes
first reserve their estimated memory from the process's DecodeBudget
(GATEWAY_DECODE_MEMORY), so peak memory does not grow with the number of workers.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

from gateway.core import sniff
from gateway.core.jobs import Job
from gateway.core.media_model import Media, Thumbnail
from gateway.core.object_files import downloaded, stored_md5
from gateway.core.processing import ATTRIBUTES, PROBE, THUMBNAILS, Processing
from storage.objects.port import ObjectStore
from workers import image_attributes, imaging
from workers.decode_budget import TRIM_ABOVE, DecodeBudget, release_freed_memory
from workers.runner import JobHandler, PermanentError

log = logging.getLogger("gateway.workers.media")

THUMBNAIL_PREFIX = "thumbnails"
SKIPPED = {"skipped": "media gone or replaced"}


def thumbnail_key(media_id: int, size: int, extension: str) -> str:
    return f"{THUMBNAIL_PREFIX}/{media_id}/{size}.{extension}"


class MediaJobs:
    def __init__(self, processing: Processing, objects: ObjectStore, executor: Executor | None, *,
                 thumbnail_sizes: tuple[int, ...], max_pixels: int, decode_memory: int = 512 * 1024 * 1024) -> None:
        self.processing = processing
        self.objects = objects
        self.executor = executor
        self.thumbnail_sizes = thumbnail_sizes
        self.max_pixels = max_pixels
        self.decode_budget = DecodeBudget(decode_memory)  # shared by every worker of this process

    @property
    def handlers(self) -> dict[str, JobHandler]:
        return {PROBE.name: JobHandler(self.probe, self.processing.failed),
                THUMBNAILS.name: JobHandler(self.thumbnails, self.processing.failed),
                ATTRIBUTES.name: JobHandler(self.attributes, self.processing.failed)}

    async def probe(self, job: Job) -> dict[str, Any]:
        media = await self.processing.current(job)
        if media is None:
            return SKIPPED
        size = media.size if media.size is not None else (await self.objects.stat(media.key)).size
        found = await sniff.probe_stored(self.objects, media.key, size, self.executor)
        checksum = {} if media.md5 is not None else {"md5": (await stored_md5(self.objects, media.key)).hexdigest()}
        await self.processing.probed(job, mime_type=found.mime_type, kind=found.kind, size=found.size,
                                     image_width=found.width, image_height=found.height, mode=found.mode, **checksum)
        return {"kind": found.kind, "mime_type": found.mime_type, **checksum}

    async def thumbnails(self, job: Job) -> dict[str, Any]:
        decoded = await self._decoded(job, imaging.decode_cost, imaging.make_thumbnails, self.thumbnail_sizes)
        if decoded is None:
            return SKIPPED
        media, made = decoded
        listed = []
        for number, thumb in enumerate(made, 1):
            extension = thumb.format.lower().replace("jpeg", "jpg")
            info = await self.objects.put(thumbnail_key(media.id, thumb.size, extension), thumb.data,
                                          thumb.content_type)
            listed.append(Thumbnail(id=number, size=thumb.size, width=thumb.width, height=thumb.height, key=info.key,
                                    content_type=thumb.content_type, bytes=info.size, etag=info.etag))
        await self.processing.settle(job, {"thumbnails": tuple(listed)})
        return {"thumbnails": [t.size for t in listed]}

    async def attributes(self, job: Job) -> dict[str, Any]:
        decoded = await self._decoded(job, image_attributes.decode_cost, image_attributes.image_attributes)
        if decoded is None:
            return SKIPPED
        _, found = decoded
        await self.processing.settle(job, found.as_changes())
        return {"blurhash": found.blurhash, "colors": len(found.colors)}

    async def _decoded(self, job: Job, cost_of, decode, *args) -> tuple[Media, Any] | None:
        """The job's media and ``decode(path, *args)`` of its image, or None when the media is gone
        or replaced. The decode reserves its estimated memory (``cost_of``) from the process's
        budget, and big decodes' memory goes back to the OS after; a file that is no image (or
        too big a one) fails the job for good."""
        media = await self.processing.current(job)
        if media is None:
            return None
        async with downloaded(self.objects, media.image_source_key) as path:
            try:
                cost = await self._in_executor(cost_of, path, *args, max_pixels=self.max_pixels)
                async with self.decode_budget.reserve(cost):
                    return media, await self._in_executor(_then_trim, decode, path, *args,
                                                          max_pixels=self.max_pixels, trim=cost > TRIM_ABOVE)
            except sniff.NotAnImage as exc:
                raise PermanentError(exc.reason, str(exc)) from None

    async def _in_executor(self, function, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: function(*args, **kwargs))


def _then_trim(decode, *args, trim: bool, **kwargs):
    try:
        return decode(*args, **kwargs)
    finally:  # the decoded pixels are gone once the decode returns
        if trim:
            release_freed_memory()
