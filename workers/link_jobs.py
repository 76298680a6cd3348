"""The thin handler of the ``link_preview`` job: finish a link preview the request could not wait for.

Core (``LinkMedia.finish_preview``) fetches and records the preview. A refused
address (e.g. DNS now points somewhere private) is never retried; other fetch
failures are retried until the last attempt. When the job gives up, its failure
hook marks the media ``failed`` with the reason.
"""
from __future__ import annotations

from typing import Any

from gateway.core.fetching import FetchError
from gateway.core.jobs import Job
from gateway.core.link_media import REFUSED_AT_ONCE, LinkMedia
from gateway.core.processing import LINK_PREVIEW, Processing
from workers.runner import JobHandler, PermanentError


class LinkJobs:
    def __init__(self, links: LinkMedia, processing: Processing, max_attempts: int) -> None:
        self.links = links
        self.processing = processing
        self.max_attempts = max_attempts

    @property
    def handlers(self) -> dict[str, JobHandler]:
        return {LINK_PREVIEW.name: JobHandler(self.link_preview, self.processing.failed)}

    async def link_preview(self, job: Job) -> dict[str, Any]:
        try:
            return await self.links.finish_preview(job)
        except FetchError as exc:
            if exc.code not in REFUSED_AT_ONCE and job["attempts"] < self.max_attempts:
                raise
            raise PermanentError(exc.code, str(exc)) from None
