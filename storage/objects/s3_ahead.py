"""Parts uploaded ahead: the S3 part made of staged chunks goes up while the client sends on.

When staged chunks add up to a part, the chunk that got there is acknowledged once it
is staged (durable in the staging store like the others), and the part is uploaded
from the staged pieces in the background, under a fencing token taken for it before
that chunk is acknowledged (the session's epoch, raised by compare-and-set: no other
attempt, lease or complete gets the same part number, and every token handed out
later is higher).

The upload's state does not change when that part is up. The next append (or the
complete) on this instance takes it in only if the pieces it holds are still the head
of the staged list: the state it returns has the part and no longer those pieces, and
the core's compare-and-set commits that like any other append; the pieces are deleted
after that commit. So whatever happens to the background upload (the process dies,
S3 fails, a chunk reaches another instance, compaction rewrites the pieces) the staged
pieces stay where the committed state says until a committed part holds their bytes,
and the next chunk or complete on any instance uploads them; an upload made here but
never taken in is never listed, and S3 drops unlisted parts when the upload completes.

Part order (S3 wants ascending numbers): the parts committed before the pieces became
the head of the staged list were committed before this part's number was taken, and
numbers only grow; a part whose number does not fit is not taken in.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Awaitable, Callable

MAX_REMEMBERED = 10_000  # uploads with a part ahead, at once, per instance


@dataclass
class _Ahead:
    keys: tuple[str, ...]  # the staged pieces the part holds, in order
    number: int
    task: asyncio.Task  # -> [number, etag]


class PartsAhead:
    def __init__(self) -> None:
        self._by_upload: dict[str, _Ahead] = {}  # by the upload's staging token

    def pending(self, token: str, staged: list) -> bool:
        """Whether a part of these staged pieces' head is going up, or is up and not taken in."""
        ahead = self._by_upload.get(token)
        if ahead is None or (ahead.task.done() and (ahead.task.cancelled() or ahead.task.exception())):
            return False
        return tuple(key for key, _ in staged[:len(ahead.keys)]) == ahead.keys

    def start(self, token: str, keys: list[str], number: int, upload: Callable[[], Awaitable[list]]) -> None:
        task = asyncio.create_task(upload())
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # kept, never raised
        self._by_upload.pop(token, None)
        self._by_upload[token] = _Ahead(tuple(keys), number, task)
        while len(self._by_upload) > MAX_REMEMBERED:
            self._by_upload.pop(next(iter(self._by_upload))).task.cancel()

    def taken_in(self, state: dict, below: int | None = None) -> dict:
        """``state`` with the part uploaded ahead, if it is up and holds the head of the
        staged list (and its number sorts after the state's parts and below ``below``)."""
        ahead = self._by_upload.get(state["token"])
        if ahead is None or not ahead.task.done() or ahead.task.cancelled() or ahead.task.exception():
            return state
        staged = state["staged"]
        if tuple(key for key, _ in staged[:len(ahead.keys)]) != ahead.keys:
            return state  # not (or no longer) the head: the pieces go up some other way
        if any(number >= ahead.number for number, _ in state["parts"]) or (below is not None and ahead.number >= below):
            return state
        return {**state, "parts": state["parts"] + [ahead.task.result()], "staged": staged[len(ahead.keys):]}

    async def settle(self, token: str) -> None:
        """Wait for a part of this upload that is going up (complete would send it again)."""
        ahead = self._by_upload.get(token)
        if ahead is not None:
            await asyncio.wait([ahead.task])

    def forget(self, token: str) -> None:
        ahead = self._by_upload.pop(token, None)
        if ahead is not None:
            ahead.task.cancel()

    async def close(self) -> None:
        tasks = [ahead.task for ahead in self._by_upload.values()]
        self._by_upload.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
