"""Repeated log lines are limited (issue 8, A5: 171 742 identical accept() errors)."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import socket

import pytest

from gateway import logs


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    clock = FakeClock()
    limiter = logs.RepeatLimiter(handler.handle, limit=5, window=60, clock=clock)
    handler.addFilter(limiter)
    logger = logging.getLogger("test.repeats")
    logger.handlers[:], logger.propagate, logger.level = [handler], False, logging.DEBUG
    yield logger, clock, limiter, lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    logger.handlers[:] = []


def test_a_flood_of_one_error_is_cut_to_the_limit_then_summarised(captured):
    logger, clock, limiter, lines = captured
    for fd in range(1000):
        logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", fd)
    assert len(lines()) == 5
    clock.now += 61
    logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", 7)
    summary, again = lines()[5:]
    assert summary["event"] == "suppressed 995 similar lines" and summary["level"] == "warning"
    assert summary["like"] == "socket.accept() out of system resource" and summary["logger"] == "test.repeats"
    assert again["level"] == "error"  # a new window lets the line through again


def test_info_lines_and_different_lines_are_not_limited(captured):
    logger, clock, limiter, lines = captured
    for n in range(50):
        logger.info("request", extra={"n": n})
        if n < 5:
            logger.warning("line %d", n)
        logger.warning("another warning")
    assert sum(line["event"] == "request" for line in lines()) == 50
    assert sum(line["event"] == "another warning" for line in lines()) == 5
    limiter.flush()  # at exit, whatever was suppressed is reported
    assert lines()[-1]["event"] == "suppressed 45 similar lines"


async def test_asyncio_accept_errors_go_through_the_limit(captured, monkeypatch):
    logger, clock, limiter, lines = captured
    monkeypatch.setattr(logging.getLogger("asyncio"), "handlers", logger.handlers)
    monkeypatch.setattr(logging.getLogger("asyncio"), "propagate", False)
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        for _ in range(100):
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": OSError(24, "Too many open files"), "socket": sock})
    assert len(lines()) == 5 and "Too many open files" in lines()[0]["error"]
