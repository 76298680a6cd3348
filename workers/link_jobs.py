"""The ``link_preview`` job: finish a link preview the request had no time for.

The media says ``processing: pending`` while this job is owed; it says ``done``
once the preview is in and ``failed`` (with the reason in ``processing_error``)
when the job gives up: at once for a refused address, else after its last try.
"""
from __future__ import annotations

import logging
from typing import Any

from gateway.core.jobs import Job
from gateway.core.link_media import REFUSED_AT_ONCE, LinkMedia
from gateway.outbound import FetchError
from workers.runner import PermanentError

log = logging.getLogger("gateway.links")


class LinkJobs:
    def __init__(self, links: LinkMedia) -> None:
        self.links = links

    @property
    def handlers(self) -> dict[str, Any]:
        return {"link_preview": self.link_preview}

    async def link_preview(self, job: Job) -> dict[str, Any]:
        try:
            return await self.links.finish_preview(job["subject"], job["payload"]["url"])
        except FetchError as exc:
            # A refused address (e.g. DNS now points somewhere private) is never retried.
            if exc.code not in REFUSED_AT_ONCE and job["attempts"] < self.links.jobs.max_attempts:
                raise
            await self._failed(job, f"{exc.code}: {exc}")
            raise PermanentError(exc.code, str(exc)) from None

    async def _failed(self, job: Job, error: str) -> None:
        """Mark the media failed; if the store is down too, the job's own failure is still recorded."""
        try:
            await self.links.preview_failed(job["subject"], job["payload"]["url"], f"{job['kind']}: {error}"[:500])
        except Exception as exc:  # noqa: BLE001 - best effort; never hide the job's own error
            log.warning("could not mark the link media failed", extra={"job_id": job["id"], "error": str(exc)})
