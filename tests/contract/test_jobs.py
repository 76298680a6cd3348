"""Durable jobs on every document store: leases, retries with backoff, crash recovery, shutdown."""
from __future__ import annotations

import asyncio

from gateway.core.jobs import JobQueue
from workers.runner import JobHandler, PermanentError, WorkerPool


def queue_on(store, **options) -> JobQueue:
    return JobQueue(store, **{"lease_seconds": 0.6, "max_attempts": 3, "backoff_seconds": 0.05, **options})


async def wait_for_status(queue: JobQueue, job_id: str, status: str, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while (job := await queue.get(job_id))["status"] != status:
            await asyncio.sleep(0.05)
    return job


async def test_enqueue_is_idempotent_and_claim_has_one_winner(document_store):
    queue = queue_on(document_store)
    first = await queue.enqueue("probe", 7, {"key": "a"})
    again = await queue.enqueue("probe", 7, {"key": "a"})
    assert first["id"] == again["id"] == "probe:7" and await document_store.count("jobs") == 1
    claims = await asyncio.gather(*(queue.claim(["probe"]) for _ in range(5)))
    assert len([c for c in claims if c is not None]) == 1
    assert await queue.claim(["probe"]) is None  # leased


async def test_job_of_a_crashed_worker_is_claimed_again_after_its_lease(document_store):
    queue = queue_on(document_store)
    await queue.enqueue("probe", 1)
    crashed = await queue.claim(["probe"])  # the worker dies here, never renewing
    assert await queue.claim(["probe"]) is None
    await asyncio.sleep(0.7)
    reclaimed = await queue.claim(["probe"])
    assert reclaimed["id"] == crashed["id"] and reclaimed["attempts"] == 2
    assert await queue.succeed(crashed, {}) is None  # the old owner cannot overwrite the new one
    assert (await queue.succeed(reclaimed, {"ok": 1}))["status"] == "done"


async def test_cancelled_worker_releases_its_job_and_another_pool_finishes_it(document_store):
    queue = queue_on(document_store)
    started = asyncio.Event()

    async def slow(job):
        started.set()
        await asyncio.sleep(30)

    pool = WorkerPool(queue, {"thumbnails": slow}, concurrency=1, poll_interval=0.05, grace_seconds=0.1)
    pool.start()
    await queue.enqueue("thumbnails", 3)
    await asyncio.wait_for(started.wait(), 5)
    await pool.stop()  # app shutdown mid-job: grace period passes, the job is released
    released = await queue.get("thumbnails:3")
    assert released["status"] == "queued" and released["attempts"] == 0 and released["lease_id"] is None

    async def quick(job):
        return {"made": job["subject"]}

    second = WorkerPool(queue, {"thumbnails": quick}, concurrency=2, poll_interval=0.05)
    second.start()
    try:
        done = await wait_for_status(queue, "thumbnails:3", "done")
    finally:
        await second.stop()
    assert done["result"] == {"made": 3} and done["attempts"] == 1


async def test_failing_job_retries_with_backoff_then_fails_and_reports(document_store):
    queue = queue_on(document_store, max_attempts=3)
    attempts, reported = [], []

    async def broken(job):
        attempts.append(asyncio.get_running_loop().time())
        raise RuntimeError("boom")

    async def on_failed(job, error):
        reported.append(error)

    pool = WorkerPool(queue, {"probe": JobHandler(broken, on_failed)}, concurrency=1, poll_interval=0.02)
    pool.start()
    try:
        await queue.enqueue("probe", 5)
        failed = await wait_for_status(queue, "probe:5", "failed")
    finally:
        await pool.stop()
    assert failed["attempts"] == 3 and failed["error"] == "RuntimeError: boom"
    assert reported == ["RuntimeError: boom"]
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # 0.05 s, then doubled


async def test_permanent_error_fails_at_once(document_store):
    queue = queue_on(document_store, max_attempts=5)

    async def rejects(job):
        raise PermanentError("corrupt_image", "cannot decode")

    pool = WorkerPool(queue, {"thumbnails": rejects}, concurrency=1, poll_interval=0.02)
    pool.start()
    try:
        await queue.enqueue("thumbnails", 2)
        failed = await wait_for_status(queue, "thumbnails:2", "failed")
    finally:
        await pool.stop()
    assert failed["attempts"] == 1 and failed["error"] == "corrupt_image: cannot decode"


async def test_restart_runs_a_finished_or_running_job_again_on_new_input(document_store):
    queue = queue_on(document_store)
    await queue.enqueue("probe", 4, {"key": "old"})
    first = await queue.claim(["probe"])
    await queue.succeed(first, {})
    restarted = await queue.restart("probe", 4, {"key": "new"})  # the file was replaced
    assert (restarted["status"], restarted["payload"], restarted["attempts"]) == ("queued", {"key": "new"}, 0)
    running = await queue.claim(["probe"])
    await queue.restart("probe", 4, {"key": "newer"})  # replaced again while a worker runs
    assert await queue.succeed(running, {}) is None  # the stale run is not recorded
    again = await queue.claim(["probe"])
    assert again["payload"] == {"key": "newer"}
