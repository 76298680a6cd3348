"""Background processing of media: which jobs a change needs, and what their results change.

Core decides the jobs (a finished upload owes a ``probe``, a probed image owes
``thumbnails`` and its derived ``attributes`` (blurhash, thumbhash, colours, EXIF),
a preview image set on a link owes ``thumbnails``, a link whose
preview did not come in time owes ``link_preview``); workers only run them and
report back through ``settle`` or ``failed``. A job carries the input it was made
for (the file's key, the link's URL); a result for input the media no longer has
(the preview image was replaced meanwhile) is dropped, and the job for the new
input does the work.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from gateway.core.jobs import Job, JobQueue
from gateway.core.media_model import Media
from gateway.core.media_store import MediaStore

log = logging.getLogger("gateway.processing")


@dataclass(frozen=True)
class JobKind:
    name: str
    input_of: Callable[[Media], dict[str, Any]]  # what the job works on; a job for other input is stale


PROBE = JobKind("probe", lambda media: {"key": media.key})
THUMBNAILS = JobKind("thumbnails", lambda media: {"key": media.image_source_key})
ATTRIBUTES = JobKind("attributes", lambda media: {"key": media.image_source_key})
LINK_PREVIEW = JobKind("link_preview", lambda media: {"url": media.url})
KINDS = {kind.name: kind for kind in (PROBE, THUMBNAILS, ATTRIBUTES, LINK_PREVIEW)}


class Processing:
    def __init__(self, store: MediaStore, jobs: JobQueue, *, thumbnails: bool = True) -> None:
        self.store = store
        self.jobs = jobs
        self.thumbnails = thumbnails  # False when no thumbnail sizes are configured

    # what a change needs

    async def start(self, media: Media, kind: JobKind, *, again: bool = False) -> None:
        """Queue ``kind`` for a media already stored as owing it (``again``: new input, rerun)."""
        if again:
            await self.jobs.restart(kind.name, media.id, kind.input_of(media))
        else:
            await self.jobs.enqueue(kind.name, media.id, kind.input_of(media))

    async def resume(self, media: Media, kinds: frozenset[str] | set[str]) -> None:
        """Queue again what ``media`` owes of ``kinds`` but no live job will deliver.

        A media is stored owing a job before the job is queued; a process killed between
        the two leaves the media waiting for nothing. Whoever waits on the media (a
        DatoCMS job result being polled) calls this: a missing job is queued, a finished
        one for other input (a replaced file) is run again on the media's input.
        """
        for name in kinds.intersection(media.owed):
            kind = KINDS[name]
            job = await self.jobs.get(f"{name}:{media.id}")
            if job is None:
                await self.start(media, kind)
            elif job["status"] in ("done", "failed") and job["payload"] != kind.input_of(media):
                await self.start(media, kind, again=True)

    def wants_thumbnails(self, media: Media) -> bool:
        return self.thumbnails and media.image_source_key is not None and media.is_image

    @staticmethod
    def wants_attributes(media: Media) -> bool:
        """A stored image file: DatoCMS shows its blurhash, thumbhash, colours and EXIF
        (thumbnail sizes or not)."""
        return media.is_file and media.is_image

    # what workers report

    async def current(self, job: Job) -> Media | None:
        """The job's media if it still has the job's input, else None (gone or replaced)."""
        media = await self.store.get(job["subject"])
        return media if media is not None and self._is_current(media, job) else None

    async def settle(self, job: Job, changes: dict[str, Any] | Callable[[Media], dict[str, Any]]) -> Media | None:
        """Record a finished job's ``changes`` (or what they are, given the media as it is
        at the write); None if its input is no longer the media's."""
        def apply(media: Media) -> Media | None:
            if not self._is_current(media, job):
                return None
            return media.settled(job["kind"], **(changes(media) if callable(changes) else changes))

        return await self.store.change(job["subject"], apply)

    async def probed(self, job: Job, **measured: Any) -> Media | None:
        """The probe's results; an image whose size is now known owes thumbnails and attributes."""
        def apply(media: Media) -> Media | None:
            if not self._is_current(media, job):
                return None
            done = media.settled(PROBE.name, **measured)
            if self.wants_thumbnails(done):
                done = done.owing(THUMBNAILS.name)
            return done.owing(ATTRIBUTES.name) if self.wants_attributes(done) else done

        media = await self.store.change(job["subject"], apply)
        for kind in (THUMBNAILS, ATTRIBUTES):
            if media is not None and kind.name in media.owed:
                await self.start(media, kind, again=True)
        return media

    async def failed(self, job: Job, error: str) -> None:
        """The job gave up: show it on the media instead of leaving it pending forever."""
        message = f"{job['kind']}: {error}"
        try:
            await self.store.change(job["subject"], lambda media: media.failed(job["kind"], message)
                                    if self._is_current(media, job) else None)
        except Exception as exc:  # noqa: BLE001 - the job's own failure is recorded; never hide it
            log.warning("could not mark the media failed", extra={"job_id": job["id"], "error": str(exc)})

    @staticmethod
    def _is_current(media: Media, job: Job) -> bool:
        return KINDS[job["kind"]].input_of(media) == job["payload"]
