"""Run the ``gateway`` command as an operator does: a real process on a free loopback port."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port

__all__ = ["free_port", "gateway_env", "run", "running_gateway", "wait_until_ready"]


def gateway_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "GATEWAY_DATA_DIR": str(tmp_path / "var"), **extra}


def run(args, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, **kwargs)


def start(env: dict, port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_ready(server: subprocess.Popen, port: int, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gateway did not start (exit {server.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(server: subprocess.Popen) -> int:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            return server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return server.wait()


@contextlib.contextmanager
def running_gateway(tmp_path: Path, **env: str):
    """A started gateway: yields (process, port, log path); stopped afterwards."""
    port, log = free_port(), tmp_path / f"gateway-{time.monotonic_ns()}.log"
    server = start(gateway_env(tmp_path, **env), port, log)
    try:
        wait_until_ready(server, port, log)
        yield server, port, log
    finally:
        stop(server)
