"""Parts uploaded in the background from staged pieces ("flushes"), at most one per upload.

The chunk that completes a part starts its flush and is answered once it is staged;
its session commit carries the marker ``{"number", "pieces"}``: the first ``pieces``
staged pieces are being uploaded as part ``number``. The next chunk on this instance,
or the complete, folds the finished part into the state (``folded``). Everything here
is a hint kept in one instance's memory: the pieces stay staged until a committed
state holds their part, so a flush that fails, stalls or dies with its instance only
means they are flushed again (by whoever finds the marker is not theirs, or failed).
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Coroutine

from storage.errors import ObjectNotFound
from storage.objects.port import UploadState

log = logging.getLogger("storage.s3")

# Flushes remembered, one per upload (the newest): a finished one waits here for the
# upload's next chunk. An upload that never returns only leaves a small record,
# dropped first when more uploads run.
MAX_FLUSHES = 1024


@dataclass(frozen=True)
class _Flush:
    number: int
    keys: tuple[str, ...]  # the staged pieces it uploads, in order
    task: asyncio.Task  # returns [number, etag]


class Flushes:
    def __init__(self) -> None:
        self._by_upload: OrderedDict[str, _Flush] = OrderedDict()  # by multipart upload id

    def start(self, state: UploadState, number: int, upload: Coroutine[Any, Any, list]) -> UploadState:
        """Run ``upload`` (every staged piece as part ``number``); the state that says so."""
        task = asyncio.create_task(upload)
        task.add_done_callback(_log_failure)
        mpu = state["mpu"]
        self._by_upload[mpu] = _Flush(number, tuple(key for key, _ in state["staged"]), task)
        self._by_upload.move_to_end(mpu)
        while len(self._by_upload) > MAX_FLUSHES:
            self._by_upload.popitem(last=False)
        return {**state, "flush": {"number": number, "pieces": len(state["staged"])}}

    def folded(self, state: UploadState) -> UploadState:
        """The state with its flush done, if this instance ran it and it has finished: the
        flushed pieces become a part. After a failed flush here, any flush is taken as
        lost, so the pieces are flushed again."""
        marked, flush = state.get("flush"), self._by_upload.get(state["mpu"])
        if not marked or flush is None or not flush.task.done():
            return state
        if _failed(flush.task):
            return {**state, "flush": None}
        if flush.number != marked["number"]:
            return state  # another instance's (or another attempt's) flush
        pieces = marked["pieces"]
        if tuple(key for key, _ in state["staged"][:pieces]) != flush.keys:
            return {**state, "flush": None}
        return {**state, "parts": state["parts"] + [flush.task.result()], "staged": state["staged"][pieces:],
                "flush": None}

    async def settled(self, state: UploadState) -> UploadState:
        """The state with no flush running: ours waited for and folded, anyone else's
        dropped (its pieces are still staged and get flushed again)."""
        marked, flush = state.get("flush"), self._by_upload.get(state["mpu"])
        if marked and flush is not None and flush.number == marked["number"]:
            await asyncio.wait([flush.task])  # not cancelled with this request: it may serve the next
            state = self.folded(state)
        return {**state, "flush": None} if state.get("flush") else state

    async def finished(self, state: UploadState) -> None:
        """Wait for the flush ``state`` just started; raises its failure, and ObjectNotFound
        when it was stopped because the upload ended meanwhile."""
        task = self._by_upload[state["mpu"]].task
        await asyncio.wait([task])  # not cancelled with the request: the flush may serve the next
        if task.cancelled():
            raise ObjectNotFound(state["key"])
        task.result()

    def failed(self, mpu: str) -> bool:
        flush = self._by_upload.get(mpu)
        return flush is not None and _failed(flush.task)

    def forget(self, mpu: str) -> None:
        """The upload is finished or aborted: stop its flush, if one runs."""
        flush = self._by_upload.pop(mpu, None)
        if flush is not None:
            flush.task.cancel()

    async def close(self) -> None:
        # Running flushes are only a head start: their pieces stay staged for whoever goes on.
        tasks = [flush.task for flush in self._by_upload.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._by_upload.clear()


def unflushed(state: UploadState) -> list:
    """The staged pieces no flush is uploading."""
    marked = state.get("flush")
    return state["staged"][marked["pieces"]:] if marked else state["staged"]


def _failed(task: asyncio.Task) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("part flush failed; its pieces stay staged", extra={"error": str(task.exception())})
