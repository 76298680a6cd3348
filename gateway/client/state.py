"""Where interrupted uploads are remembered between runs: one small JSON file in the user's cache dir.

An entry is keyed by the server URL and the file's path, size and modification time, so a
file that changed since (or the same path sent to another gateway) starts a new upload.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def default_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "media-gateway" / "uploads.json"


def file_key(url: str, path: Path) -> str:
    stat = path.stat()
    return f"{url.rstrip('/')}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class ResumeState:
    """upload ids by file key. Every change is written at once (atomically, so a killed run loses
    nothing) onto what the file holds then, so two runs at once keep each other's entries."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def _load(self) -> dict[str, str]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # a missing or damaged file only costs a fresh upload
        return {k: v for k, v in entries.items() if isinstance(v, str)} if isinstance(entries, dict) else {}

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    def put(self, key: str, upload_id: str) -> None:
        self._save({**self._load(), key: upload_id})

    def drop(self, key: str) -> None:
        entries = self._load()
        if entries.pop(key, None) is not None:
            self._save(entries)

    def _save(self, entries: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as out:
            json.dump(entries, out, indent=1)
        os.replace(out.name, self.path)
