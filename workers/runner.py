"""The worker pool: N async workers that claim jobs and run their handlers.

Each job kind has its own handler and its own failure hook (``JobHandler``), called
once when a job of that kind gives up. Each worker claims one job at a time, keeps
its lease alive while the handler runs, and records the outcome. A handler raises ``PermanentError`` for input that
will never work (a corrupt image), which fails the job at once instead of
retrying it. On shutdown the pool stops claiming, gives in-flight jobs a grace
period, then cancels them and releases their leases so another instance (or the
next start) runs them without counting the interrupted attempt.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from gateway.core.jobs import Job, JobQueue

log = logging.getLogger("gateway.workers")

Handler = Callable[[Job], Awaitable[dict[str, Any] | None]]
FailureHook = Callable[[Job, str], Awaitable[None]]


class PermanentError(Exception):
    """The job cannot succeed by retrying; ``reason`` is a short machine code."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class JobHandler:
    run: Handler
    failed: FailureHook | None = None  # the job gave up (attempts used up, or a PermanentError)


class WorkerPool:
    def __init__(self, queue: JobQueue, handlers: dict[str, JobHandler | Handler], *, concurrency: int,
                 poll_interval: float = 1.0, grace_seconds: float = 10.0, metrics=None) -> None:
        self.queue = queue
        self.handlers = {kind: h if isinstance(h, JobHandler) else JobHandler(h) for kind, h in handlers.items()}
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.grace_seconds = grace_seconds
        self.metrics = metrics
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task] = []
        self._running: dict[asyncio.Task, Job] = {}

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(n), name=f"worker-{n}") for n in range(self.concurrency)]

    async def stop(self) -> None:
        self._stopping.set()
        self.queue.wakeup.set()
        running = list(self._running)
        if running:
            await asyncio.wait(running, timeout=self.grace_seconds)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self, number: int) -> None:
        while not self._stopping.is_set():
            try:
                job = await self.queue.claim(list(self.handlers))
            except Exception as exc:  # a store outage: wait and try again, never die
                log.warning("claim failed", extra={"worker": number, "error": str(exc)})
                job = None
            if job is None:
                await self._idle()
                continue
            task = asyncio.create_task(self._run(job))
            self._running[task] = job
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                with contextlib.suppress(Exception):
                    await self.queue.release(job)
                    log.info("job released", extra={"job_id": job["id"], "kind": job["kind"]})
                raise
            except Exception:  # recording the outcome failed (store down): the lease expiry retries it
                log.exception("job bookkeeping failed", extra={"job_id": job["id"], "kind": job["kind"]})
            finally:
                self._running.pop(task, None)

    async def _idle(self) -> None:
        self.queue.wakeup.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.wakeup.wait(), self.poll_interval)

    async def _run(self, job: Job) -> None:
        started = time.perf_counter()
        handler = self.handlers[job["kind"]]
        renewer = asyncio.create_task(self._keep_lease(job))
        try:
            result = await handler.run(job)
            outcome = "done" if await self.queue.succeed(job, result) else "lost"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            permanent = isinstance(exc, PermanentError)
            error = f"{exc.reason}: {exc}" if permanent else f"{type(exc).__name__}: {exc}"[:500]
            if not permanent:
                log.warning("job attempt failed", exc_info=True, extra={"job_id": job["id"], "kind": job["kind"]})
            updated = await self.queue.fail(job, error, permanent=permanent)
            outcome = {"queued": "retry", "failed": "failed"}.get(updated["status"]) if updated else "lost"
            if outcome == "failed" and handler.failed is not None:
                await handler.failed(job, error)
        finally:
            renewer.cancel()
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.jobs.labels(job["kind"], outcome).inc()
            self.metrics.job_duration.labels(job["kind"]).observe(elapsed)
        log.info("job finished", extra={"job_id": job["id"], "kind": job["kind"], "outcome": outcome,
                                        "attempt": job["attempts"], "ms": round(elapsed * 1000, 1)})

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.queue.lease_seconds / 3)
            with contextlib.suppress(Exception):
                if not await self.queue.renew(job):
                    log.warning("lease lost", extra={"job_id": job["id"]})
                    return
