"""Write a benchmark's section into docs/benchmarks.md: the section with the same
``## `` heading is replaced (up to the next ``## ``), else the section is appended."""
from __future__ import annotations

from pathlib import Path


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    heading = section.splitlines()[0]
    if heading in text:
        before, _, rest = text.partition(heading)
        after = rest.split("\n## ", 1)
        text = before + section.rstrip("\n") + "\n" + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
