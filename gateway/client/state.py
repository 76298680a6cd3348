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
    """upload ids by file key; every change is written at once (atomically), so a killed run loses nothing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        try:
            self.entries: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}  # a missing or damaged file only costs a fresh upload

    def get(self, key: str) -> str | None:
        value = self.entries.get(key)
        return value if isinstance(value, str) else None

    def put(self, key: str, upload_id: str) -> None:
        self.entries[key] = upload_id
        self._save()

    def drop(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as out:
            json.dump(self.entries, out, indent=1)
        os.replace(out.name, self.path)
