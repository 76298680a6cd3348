"""Put a failed job in a gateway's configured document store, from a separate process (as operators see it)."""
from __future__ import annotations

import subprocess
import sys

SEED_FAILED_JOB = """
import asyncio, sys
from config.settings import load_settings
from gateway import backends
from gateway.core.jobs import JobQueue

async def main(kind, subject):
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    documents = backends.document_store(settings)
    await documents.open()
    queue = JobQueue(documents)
    await queue.enqueue(kind, subject)
    await queue.fail(await queue.claim([kind]), "decoder exploded", permanent=True)
    await documents.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def seed_failed_job(env: dict, kind: str, subject: int) -> None:
    seeded = subprocess.run([sys.executable, "-c", SEED_FAILED_JOB, kind, str(subject)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
