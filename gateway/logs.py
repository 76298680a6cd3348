"""Structured logs: one JSON object per line, carrying the request id of the
request being served (a context variable, so concurrent requests never mix)."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from typing import Callable

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "logger": record.name, "event": record.getMessage()}
        if rid := request_id.get():
            line["request_id"] = rid
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, default=str)


class RepeatLimiter(logging.Filter):
    """Let through at most ``limit`` copies of one warning or error line per ``window`` seconds.

    A flood of the same line (171 742 ``accept() ... Too many open files`` errors in
    issue 8) drowns what matters and fills the disk. "The same" is the logger, the
    level and the first line of the message template, so lines that differ only in
    their arguments or a socket repr count together. When a window with suppressed
    lines is over, one ``suppressed K similar lines`` line says how many were dropped.
    Info and debug lines (one per request, by design) are never limited.
    """

    MAX_KEYS = 1000  # distinct lines tracked at once; the oldest window is dropped beyond

    def __init__(self, emit: Callable[[logging.LogRecord], None], limit: int = 20, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.emit, self.limit, self.window, self.clock = emit, limit, window, clock
        self._seen: dict[tuple, list] = {}  # key -> [window start, count, suppressed, sample record]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self.clock()
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        with self._lock:
            due = self._close_windows(now)
            entry = self._seen.get(key)
            if entry is None:
                if len(self._seen) >= self.MAX_KEYS:
                    due += self._summaries([self._seen.pop(next(iter(self._seen)))])
                entry = self._seen[key] = [now, 0, 0, record]
            entry[1] += 1
            passed = entry[1] <= self.limit
            if not passed:
                entry[2] += 1
        for summary in due:
            self.emit(summary)
        return passed

    def flush(self) -> None:
        """Report what is still suppressed (at exit), whether or not its window is over."""
        with self._lock:
            due = self._summaries(self._seen.values())
            self._seen.clear()
        for summary in due:
            self.emit(summary)

    def _close_windows(self, now: float) -> list[logging.LogRecord]:
        over = [key for key, entry in self._seen.items() if now - entry[0] >= self.window]
        return self._summaries([self._seen.pop(key) for key in over])

    def _summaries(self, entries) -> list[logging.LogRecord]:
        out = []
        for start, _, suppressed, sample in entries:
            if suppressed:
                out.append(logging.makeLogRecord({
                    "name": sample.name, "levelno": logging.WARNING, "levelname": "WARNING",
                    "msg": "suppressed %d similar lines", "args": (suppressed,),
                    "like": str(sample.msg).split("\n", 1)[0][:200], "window_s": self.window}))
        return out


def configure(level: str = "INFO", *, repeat_limit: int = 20, repeat_window: float = 60.0) -> RepeatLimiter:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    limiter = RepeatLimiter(handler.handle, repeat_limit, repeat_window)
    handler.addFilter(limiter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # our middleware logs each request
    return limiter
