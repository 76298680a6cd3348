"""What bench/upload.py reads besides the clock: a real `gateway serve` process (its CPU
time and peak RSS), Prometheus counters (SeaweedFS's and the gateway's), and py-spy."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent


class GatewayProcess:
    """``gateway serve`` on loopback with S3 and the chosen document store."""

    def __init__(self, env: dict[str, str], port: int, source: Path = ROOT) -> None:
        self.env = {**os.environ, **env, "GATEWAY_LOG_LEVEL": "WARNING"}
        self.base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gateway.cli"]
        added = subprocess.run([*command, "users", "add", "bench"], env=self.env, cwd=source, capture_output=True,
                               text=True, check=True)
        self.token = added.stdout.strip().splitlines()[-1]
        self.process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                        env=self.env, cwd=source)
        self.stats = psutil.Process(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}")
            try:
                async with http.get(self.base + "/health/ready") as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("gateway did not become ready")

    def cpu_seconds(self) -> float:
        times = self.stats.cpu_times()
        return times.user + times.system

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_cpu(server) -> float:
    """CPU seconds of a tests.servers server (its process and children), 0 if external."""
    if server.process is None:
        return 0.0
    try:
        process = psutil.Process(server.process.pid)
        return sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0.0


def counters(url: str, name: str, label: str) -> Counter[str]:
    """One Prometheus counter's samples summed by one label (e.g. S3 requests by type)."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    totals: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                totals[sample.labels.get(label, "")] += sample.value
    return totals


def seaweed_s3_requests(metrics_url: str) -> Counter[str]:
    return counters(metrics_url, "SeaweedFS_s3_request_total", "type")


def gateway_backend_requests(base: str) -> Counter[str]:
    """``gateway_backend_requests_total`` keyed "backend operation"."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    totals: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_backend_requests_total":
                totals[f"{sample.labels['backend']} {sample.labels['operation']}"] += sample.value
    return totals


class Profiler:
    """py-spy attached to the gateway while a workload runs: collapsed stacks
    (``--format raw``, for flamegraph.pl or speedscope) that ``summarize`` reads.
    ``--nonblocking`` does not pause the gateway to sample it, so it barely slows it."""

    def __init__(self, pid: int, out: Path, name: str, rate: int = 250) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.raw = out / f"{name}.txt"
        spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", str(rate),
               "--nonblocking", "--idle", "--threads"]
        self.process = subprocess.Popen([*spy, "--format", "raw", "-o", str(self.raw)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        self.process.wait(timeout=60)


# Where an idle thread's stack ends: the event loop in epoll, a pool thread on its queue.
IDLE_LEAVES = ("EpollSelector.select", "_worker (concurrent/futures/thread.py:81)",
               "_connection_worker_thread (aiosqlite/core.py:59)")


def summarize(raw: Path, top: int = 18) -> str:
    """Per thread (the four busiest), the top functions by inclusive and by self samples.
    py-spy runs with ``--idle --threads``, so a thread's samples are its wall time and each
    share is a share of the wall time (waiting in epoll or on a queue included)."""
    threads: dict[str, tuple[Counter, Counter]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        inclusive, own = threads.setdefault(thread, (Counter(), Counter()))
        own[frames[-1] if frames else "?"] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    if not threads:
        return "no samples"
    lines = []
    def busy(own: Counter) -> int:
        return sum(n for leaf, n in own.items() if not leaf.startswith(IDLE_LEAVES))

    for thread, (inclusive, own) in sorted(threads.items(), key=lambda item: -busy(item[1][1]))[:4]:
        total = sum(own.values())
        lines += [f"{thread}: {total} samples", "  inclusive:"]
        lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
        lines += ["  self:"] + [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)
