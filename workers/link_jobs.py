"""The ``link_preview`` job: finish a link preview the request had no time for."""
from __future__ import annotations

from typing import Any

from gateway.core.jobs import Job
from gateway.core.link_media import REFUSED_AT_ONCE, LinkMedia
from gateway.outbound import FetchError
from workers.runner import PermanentError


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
            if exc.code in REFUSED_AT_ONCE:  # e.g. DNS now points somewhere private: never retry
                raise PermanentError(exc.code, str(exc)) from None
            raise
