"""The ``tus_concat`` job: assemble a tus final upload from its partial uploads."""
from __future__ import annotations

from typing import Any

from gateway.core.auth import Users
from gateway.core.jobs import Job
from gateway.core.tus import TusUploads


class TusJobs:
    def __init__(self, tus: TusUploads, users: Users) -> None:
        self.tus = tus
        self.users = users

    @property
    def handlers(self) -> dict[str, Any]:
        return {"tus_concat": self.concat}

    async def concat(self, job: Job) -> dict[str, Any]:
        media = await self.tus.assemble(job["subject"], self.users)
        return {"media_id": media.id if media else None}
