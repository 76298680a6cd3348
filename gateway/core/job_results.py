"""Job results: what a request answered with 202 ends as, kept until it expires.

The DatoCMS dialect answers a write that needs background work (a new file to
hash, probe and measure) with ``202 {"type": "job", "id"}``, and the client polls
``/job-results/{id}`` until it gets the outcome. Unlike the worker queue's jobs
(``gateway.core.jobs``: keyed ``kind:subject`` and reused), a job result has a
unique id per request and an owner, and stores the ``{status, payload}`` the
request would have answered. It is recorded once: the first reader that finds the
work done stores it with a compare-and-set, so every later read (on any instance)
sees the same outcome, even after the media changes again.

Nothing runs for a job result: it waits on the media's processing (``media_id``
and the job kinds it waits for), which workers already drive; ``outcome`` asks
the dialect to build the reply once they are done.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from gateway.core import clock
from gateway.core.auth import User
from gateway.core.errors import not_found
from storage.documents.port import DocumentStore

COLLECTION = "job_results"


@dataclass(frozen=True)
class Outcome:
    status: int  # the HTTP status the request would have answered
    payload: Any  # and its body


Resolver = Callable[[dict[str, Any]], Awaitable["Outcome | None"]]  # None: not done yet


class JobResults:
    def __init__(self, documents: DocumentStore, *, expiry: float) -> None:
        self.documents = documents
        self.expiry = expiry

    async def start(self, user: User, *, media_id: int | None = None, outcome: Outcome | None = None,
                    **about: Any) -> str:
        """A new job for ``user``: waiting on ``media_id``, or already settled with ``outcome``."""
        now = clock.now()
        job_id = uuid.uuid4().hex
        await self.documents.insert(COLLECTION, {
            "id": job_id, "user_id": user.id, "media_id": media_id, **about,
            "result": _stored(outcome), "created_at": now, "expires_at": now + self.expiry})
        return job_id

    async def outcome(self, user: User, job_id: str, resolve: Resolver) -> Outcome | None:
        """The job's outcome, or None while it runs; another user's job, or an expired one, is 404."""
        job = await self.documents.get(COLLECTION, job_id) if _plausible(job_id) else None
        if job is None or job["user_id"] != user.id or job["expires_at"] < clock.now():
            raise not_found("job")
        if job["result"] is not None:
            return Outcome(**job["result"])
        outcome = await resolve(job)
        if outcome is None:
            return None
        stored = await self.documents.update(COLLECTION, job_id, {"result": _stored(outcome)},
                                             expect={"result": None})
        if stored is None:  # another reader recorded it first: theirs is the outcome
            return Outcome(**(await self.documents.get(COLLECTION, job_id))["result"])
        return outcome

    async def sweep(self) -> int:
        expired = await self.documents.find(COLLECTION, {"expires_at": {"$lt": clock.now()}}, limit=500)
        for job in expired:
            await self.documents.delete(COLLECTION, job["id"])
        return len(expired)


def _stored(outcome: Outcome | None) -> dict[str, Any] | None:
    return None if outcome is None else {"status": outcome.status, "payload": outcome.payload}


def _plausible(job_id: str) -> bool:
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)
