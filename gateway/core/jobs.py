"""Durable jobs in the ``jobs`` collection: enqueue, claim with a lease, finish.

A job moves ``queued -> running -> done | failed``; a failed attempt goes back to
``queued`` with a later ``run_after`` until ``max_attempts`` is used up. Every
transition is a compare-and-set on ``(status, lease_id)``, so two workers (in one
process or in two gateways) never both own a job, and a worker whose lease ran
out cannot overwrite the job's new owner. A running job whose ``lease_until`` has
passed belonged to a crashed worker and is claimed again.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gateway.core import clock
from gateway.core.errors import GatewayError, not_found
from storage.documents.port import DocumentStore
from storage.errors import DuplicateKey

Job = dict[str, Any]


class JobQueue:
    def __init__(self, documents: DocumentStore, *, lease_seconds: float = 30.0, max_attempts: int = 5,
                 backoff_seconds: float = 2.0) -> None:
        self.documents = documents
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.wakeup = asyncio.Event()  # local workers skip their poll wait when set

    async def enqueue(self, kind: str, subject: Any, payload: dict[str, Any] | None = None, *,
                      key: str | None = None) -> Job:
        """Queue a job once: ``key`` (default ``kind:subject``) makes a repeated event a no-op."""
        now = clock.now()
        job = {"id": key or f"{kind}:{subject}", "kind": kind, "subject": subject, "payload": payload or {},
               "status": "queued", "attempts": 0, "run_after": now, "lease_id": None, "lease_until": 0.0,
               "error": None, "result": None, "created_at": now, "updated_at": now}
        try:
            await self.documents.insert("jobs", job)
        except DuplicateKey:
            job = await self.documents.get("jobs", job["id"]) or job
        self.wakeup.set()
        return job

    async def restart(self, kind: str, subject: Any, payload: dict[str, Any]) -> Job:
        """Queue the job again with new input (a replaced file), whatever its state.

        A worker still running the old input loses its lease here, so its outcome
        is not recorded and the job runs again on the new input.
        """
        job = await self.enqueue(kind, subject, payload)
        if job["status"] == "queued" and job["payload"] == payload and job["attempts"] == 0:
            return job
        now = clock.now()
        restarted = await self.documents.update("jobs", job["id"], {
            "payload": payload, "status": "queued", "attempts": 0, "run_after": now, "error": None,
            "lease_id": None, "lease_until": 0.0, "updated_at": now})
        self.wakeup.set()
        return restarted or job

    async def get(self, job_id: str) -> Job | None:
        return await self.documents.get("jobs", job_id)

    async def depth(self) -> int:
        return await self.documents.count("jobs", {"status": "queued"})

    async def claim(self, kinds: list[str]) -> Job | None:
        now = clock.now()
        ready = await self.documents.find("jobs", {"status": "queued", "run_after": {"$lte": now},
                                                   "kind": {"$in": kinds}}, sort=[("run_after", 1)], limit=8)
        stale = await self.documents.find("jobs", {"status": "running", "lease_until": {"$lt": now},
                                                   "kind": {"$in": kinds}}, limit=8)
        for job in [*ready, *stale]:
            lease = {"status": "running", "lease_id": uuid.uuid4().hex, "lease_until": now + self.lease_seconds,
                     "attempts": job["attempts"] + 1, "updated_at": now}
            claimed = await self.documents.update("jobs", job["id"], lease, expect={
                "status": job["status"], "lease_id": job["lease_id"], "attempts": job["attempts"]})
            if claimed is not None:
                return claimed
        return None

    async def renew(self, job: Job) -> bool:
        return await self._owned(job, {"lease_until": clock.now() + self.lease_seconds}) is not None

    async def succeed(self, job: Job, result: dict[str, Any] | None = None) -> Job | None:
        return await self._owned(job, {"status": "done", "result": result or {}, "error": None,
                                       "lease_id": None, "lease_until": 0.0})

    async def fail(self, job: Job, error: str, *, permanent: bool = False) -> Job | None:
        """Retry later with exponential backoff, or mark ``failed`` when attempts are used up."""
        if permanent or job["attempts"] >= self.max_attempts:
            return await self._owned(job, {"status": "failed", "error": error, "lease_id": None, "lease_until": 0.0})
        delay = self.backoff_seconds * 2 ** (job["attempts"] - 1)
        return await self._owned(job, {"status": "queued", "error": error, "run_after": clock.now() + delay,
                                       "lease_id": None, "lease_until": 0.0})

    async def release(self, job: Job) -> Job | None:
        """Give an unfinished job back at shutdown; the interrupted attempt is not counted."""
        return await self._owned(job, {"status": "queued", "attempts": max(job["attempts"] - 1, 0),
                                       "run_after": clock.now(), "lease_id": None, "lease_until": 0.0})

    async def _owned(self, job: Job, changes: dict[str, Any]) -> Job | None:
        return await self.documents.update("jobs", job["id"], {**changes, "updated_at": clock.now()},
                                           expect={"status": "running", "lease_id": job["lease_id"]})


# What operators see and do (the admin API and ``gateway jobs``): list, count, retry.
STATES = ("queued", "running", "done", "failed")


async def list_jobs(queue: JobQueue, state: str | None = None, *, limit: int = 20,
                    offset: int = 0) -> tuple[int, list[Job]]:
    """Jobs in ``state`` (all when None), most recently changed first."""
    where = {"status": state} if state else {}
    total = await queue.documents.count("jobs", where)
    found = await queue.documents.find("jobs", where, sort=[("updated_at", -1), ("id", 1)], limit=limit, skip=offset)
    return total, found


async def count_by_state(queue: JobQueue) -> dict[str, int]:
    return {state: await queue.documents.count("jobs", {"status": state}) for state in STATES}


async def retry_failed(queue: JobQueue, job_id: str) -> Job:
    """Put a failed job back in the queue with fresh attempts; only a failed job can be retried."""
    now = clock.now()
    retried = await queue.documents.update("jobs", job_id, {
        "status": "queued", "attempts": 0, "run_after": now, "error": None, "lease_id": None,
        "lease_until": 0.0, "updated_at": now}, expect={"status": "failed"})
    if retried is None:
        current = await queue.get(job_id)
        if current is None:
            raise not_found("job")
        raise GatewayError(409, "job_not_failed", f"only a failed job can be retried; this one is {current['status']}",
                           job_status=current["status"])
    queue.wakeup.set()
    return retried
