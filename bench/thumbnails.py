"""Thumbnail throughput: workers.imaging.make_thumbnails against a naive Pillow baseline.

    python bench/thumbnails.py [--repeat 5] [--write docs/benchmarks.md]

Generates a 24-megapixel photo-like JPEG (6000x4000, quality 90) and a 12-megapixel
RGB PNG (4000x3000), then times, in the same run and on the same files, one
"thumbnail set" (all of DEFAULT_SIZES for one image) made by:

- worker: ``make_thumbnails(path)`` (JPEG DCT scaling, one decode, chained resizes);
- naive:  ``Image.open(p).convert("RGB")``, then for each size a LANCZOS
  ``resize`` of the full image to the fitted size, each encoded to JPEG with the
  same quality and options as the worker, so both produce the same artefacts.

Reports the median of ``--repeat`` runs (after one warm-up) as sets/s and
thumbnails/s, and the ratio worker/naive. ``--write FILE`` replaces the
``## Thumbnails`` section of that markdown file (appending it if absent) and leaves
every other section as it is.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import PIL  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bench.report import write_section  # noqa: E402
from workers.imaging import DEFAULT_SIZES, make_thumbnails  # noqa: E402

JPEG_QUALITY = 85  # make_thumbnails' default, used for the baseline's output too
HEADING = "## Thumbnails"


def photo_like(width: int, height: int) -> Image.Image:
    """Smooth gradients, some hard edges and sensor-like noise: roughly the entropy of
    a real photo, which matters because decode and encode time depend on content."""
    size = (width, height)
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").rotate(90).resize(size)
    img = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(img)
    for i in range(12):
        x, y = width * (i % 4) // 4, height * (i // 4) // 3
        draw.ellipse((x, y, x + width // 5, y + height // 4), fill=(40 * (i % 6), 255 - 20 * i, 90 + 12 * i))
    noise = Image.effect_noise(size, 48).convert("RGB")
    return Image.blend(img, noise, 0.18)


def fitted(size: tuple[int, int], box: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def naive(path: Path) -> list[bytes]:
    full = Image.open(path).convert("RGB")
    out = []
    for box in DEFAULT_SIZES:
        buffer = io.BytesIO()
        full.resize(fitted(full.size, box), Image.Resampling.LANCZOS).save(
            buffer, "JPEG", quality=JPEG_QUALITY, optimize=False)
        out.append(buffer.getvalue())
    return out


def worker(path: Path) -> list[bytes]:
    return [thumb.data for thumb in make_thumbnails(path, DEFAULT_SIZES, jpeg_quality=JPEG_QUALITY)]


def median_seconds(function, path: Path, repeat: int) -> float:
    function(path)  # warm-up: page cache, lazy plugin imports
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_inputs(directory: Path) -> list[tuple[str, Path]]:
    jpeg = directory / "photo-24mp.jpg"
    photo_like(6000, 4000).save(jpeg, "JPEG", quality=90)
    png = directory / "image-12mp.png"
    photo_like(4000, 3000).save(png, "PNG")
    return [("JPEG 6000x4000 (24 MP)", jpeg), ("PNG 4000x3000 (12 MP, RGB)", png)]


def measure(repeat: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-thumbs-") as tmp:
        for label, path in make_inputs(Path(tmp)):
            naive_s = median_seconds(naive, path, repeat)
            worker_s = median_seconds(worker, path, repeat)
            rows.append({"label": label, "file_mib": path.stat().st_size / 2**20,
                         "naive": naive_s, "worker": worker_s})
            print(f"{label}: naive {naive_s * 1000:.0f} ms/set, worker {worker_s * 1000:.0f} ms/set, "
                  f"ratio {naive_s / worker_s:.2f}x", flush=True)
    return rows


def section(rows: list[dict], command: str, repeat: int) -> str:
    per_set = len(DEFAULT_SIZES)
    lines = [
        f"{HEADING} (`bench/thumbnails.py`)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, Pillow {PIL.__version__}, "
        f"single thread; median of {repeat} runs after a warm-up; {dt.date.today().isoformat()}.  ",
        f"One set = the {per_set} sizes {', '.join(map(str, DEFAULT_SIZES))} px of one image, encoded "
        f"(JPEG q{JPEG_QUALITY}). Naive: `Image.open(p).convert(\"RGB\")`, then a LANCZOS `resize` of the "
        "full image per size. Worker: `workers.imaging.make_thumbnails`.",
        "",
        "| source image | naive sets/s | naive thumbs/s | worker sets/s | worker thumbs/s | ratio worker/naive |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        naive_rate, worker_rate = 1 / row["naive"], 1 / row["worker"]
        lines.append(
            f"| {row['label']}, {row['file_mib']:.1f} MiB | {naive_rate:.2f} | {naive_rate * per_set:.1f} | "
            f"{worker_rate:.2f} | {worker_rate * per_set:.1f} | {worker_rate / naive_rate:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--write", type=Path, metavar="FILE", help="update the Thumbnails section of FILE")
    args = parser.parse_args()
    rows = measure(args.repeat)
    command = "python bench/thumbnails.py" + (f" --repeat {args.repeat}" if args.repeat != 5 else "")
    if args.write:
        command += f" --write {args.write}"
    text = section(rows, command, args.repeat)
    print()
    print(text)
    if args.write:
        write_section(args.write, text)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
