"""Start-up of ``gateway serve`` next to backends that are still starting (issue 8, A10)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.gateway.processes import free_port, gateway_env, start, stop, wait_until_ready
from tests.servers import LOOPBACK, _executable


def mongodb_env(tmp_path, port: int, **extra: str) -> dict:
    return gateway_env(tmp_path, GATEWAY_DOCUMENT_STORE="mongodb",
                       GATEWAY_MONGODB_URI=f"mongodb://{LOOPBACK}:{port}/gw?directConnection=true", **extra)


def log_events(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_serve_waits_for_a_document_store_that_starts_later(tmp_path):
    db_port, port, log = free_port(), free_port(), tmp_path / "gateway.log"
    server = start(mongodb_env(tmp_path, db_port), port, log)
    database = None
    try:
        time.sleep(5)  # the gateway is waiting, not gone
        assert server.poll() is None, log.read_text()
        (tmp_path / "db").mkdir()
        database = subprocess.Popen([_executable("secantusd-py"), "--host", LOOPBACK, "--port", str(db_port),
                                     "--storage-path", str(tmp_path / "db"), "--log-level", "WARNING"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_ready(server, port, log, timeout=60)
    finally:
        code = stop(server)
        if database is not None:
            database.kill()
            database.wait()
    assert code == 0
    waits = [e for e in log_events(log) if e["event"] == "waiting for backend"]
    assert len(waits) >= 2 and {e["backend"] for e in waits} == {"mongodb"}
    assert [e["attempt"] for e in waits][:2] == [1, 2] and str(db_port) in waits[0]["address"]
    assert all(e["level"] == "warning" and e["retry_in"] > 0 for e in waits)
    events = [e["event"] for e in log_events(log)]
    assert events.index("backend ready") < events.index("listening")


@pytest.mark.slow
def test_serve_gives_up_with_a_clear_message_after_the_startup_wait(tmp_path):
    port, log = free_port(), tmp_path / "gateway.log"
    started = time.monotonic()
    server = start(mongodb_env(tmp_path, free_port(), GATEWAY_STARTUP_WAIT="3"), port, log)
    try:
        assert server.wait(timeout=30) == 1
    finally:
        stop(server)
    assert time.monotonic() - started < 20
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith("gateway: mongodb at mongodb://") and "did not answer within 3 s" in last
    assert "Traceback" not in log.read_text()


FAILED_OPEN = """
import asyncio
from storage.errors import BackendUnavailable
from storage.objects.s3 import S3ObjectStore

async def main():
    store = S3ObjectStore(endpoint="http://127.0.0.1:%d", bucket="media", region="us-east-1", access_key="k",
                          secret_key="s", part_size=5 * 1024 * 1024, staging=None, timeout=1)
    try:
        await store.open()
    except BackendUnavailable:
        print("open failed")

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_failed_s3_open_closes_its_client():
    # What an operator saw: "Unclosed client session" on stderr when S3 was not up yet.
    result = subprocess.run([sys.executable, "-W", "always", "-c", FAILED_OPEN % free_port()], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "open failed", result.stderr
    assert "Unclosed" not in result.stderr, result.stderr
