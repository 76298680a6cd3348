"""Time in one place, as epoch seconds (what both document stores compare natively)."""
from __future__ import annotations

import time
from datetime import datetime, timezone


def now() -> float:
    return time.time()


def iso(epoch: float) -> str:
    """RFC 3339 with milliseconds and 'Z', as Django REST framework renders datetimes."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
