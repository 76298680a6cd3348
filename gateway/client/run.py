"""Run ``gateway upload``: several files at once, a progress bar per file and one overall.

Progress goes to stderr; stdout gets one ``PATH<TAB>MEDIA_URL`` line per uploaded file,
so the output can be piped. The exit status is 1 if any file failed.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from gateway.client.state import ResumeState
from gateway.client.transfer import Options, Transfer, UploadFailed

# Per request: the connection may take a while on a busy server, a chunk body has no total limit.
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)


def _bars(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                    DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=console)


async def upload_all(paths: list[Path], options: Options, *, parallel: int = 3,
                     state: ResumeState | None = None) -> int:
    state = state or ResumeState()
    console = Console(stderr=True)
    missing = [p for p in paths if not p.is_file()]
    for path in missing:
        console.print(f"gateway: {path}: not a file", markup=False, highlight=False)
    files = [p for p in paths if p.is_file()]
    sizes = {p: p.stat().st_size for p in files}
    failed = len(missing)
    gate = asyncio.Semaphore(max(parallel, 1))
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        transfer = Transfer(http, options, state)
        with _bars(console) as bars:
            overall = bars.add_task("all files", total=sum(sizes.values()))
            done = {p: 0 for p in files}

            async def one(path: Path) -> bool:
                task = bars.add_task(path.name, total=sizes[path], start=False)

                def progress(at: int) -> None:
                    bars.update(task, completed=at)
                    done[path] = at
                    bars.update(overall, completed=sum(done.values()))

                async with gate:
                    bars.start_task(task)
                    try:
                        media = await transfer.upload(path, progress, lambda text: bars.console.print(
                            text, markup=False, highlight=False))
                    except (UploadFailed, OSError) as exc:
                        bars.console.print(f"gateway: {path}: {exc}", markup=False, highlight=False)
                        return False
                print(f"{path}\t{media.get('url')}", flush=True)
                return True

            results = await asyncio.gather(*(one(p) for p in files))
    failed += results.count(False)
    if failed:
        print(f"gateway: {failed} of {len(paths)} files failed", file=sys.stderr)
    return 1 if failed else 0
