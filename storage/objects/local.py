"""Local-disk object store: objects are files under ``root/objects``.

An upload builds ``root/uploads/<id>``, which is renamed into place on complete.
That file only ever receives committed bytes: each append writes its chunk to a
segment file of its own (fsynced before the chunk is acknowledged), and the
segment is copied into the upload file at its offset only once the core's
compare-and-set has made it part of the committed state. A writer that stalled
past its lease therefore writes only to its own segment, which nobody commits.
The copy is idempotent (committed bytes never change), so the committer, the next
append and complete may all perform it; a segment is deleted only after its copy
is on disk, so a missing segment means "already copied".
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import shutil
import uuid
from pathlib import Path

import aiofiles
import aiofiles.os

from storage.errors import BackendUnavailable, ObjectNotFound
from storage.objects.port import Chunks, Fence, IncompleteBody, ObjectBody, ObjectInfo, UploadState

READ_PIECE = 256 * 1024
COPY_PIECE = 1024 * 1024


class LocalObjectStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.uploads = self.root / "uploads"

    async def open(self) -> None:
        for folder in (self.objects, self.uploads):
            await aiofiles.os.makedirs(folder, exist_ok=True)

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        if not os.access(self.objects, os.W_OK):
            raise BackendUnavailable("local", f"{self.objects} is not writable")

    def _path(self, key: str) -> Path:
        path = (self.objects / key).resolve()
        if self.objects.resolve() not in path.parents:
            raise ObjectNotFound(key)  # a key never escapes the objects folder
        return path

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        path = self._path(key)
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        async with aiofiles.open(tmp, "wb") as out:
            await out.write(data)
            await out.flush()
            await asyncio.to_thread(os.fsync, out.fileno())
        await aiofiles.os.replace(tmp, path)
        return ObjectInfo(key, len(data), hashlib.md5(data).hexdigest(), content_type)

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = await aiofiles.os.stat(path)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # A cheap validator: changes whenever the file is replaced.
        return ObjectInfo(key, st.st_size, f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}", guessed)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody:
        info = await self.stat(key)
        last = info.size - 1 if end is None else min(end, info.size - 1)
        path = self._path(key)

        async def chunks():
            remaining = last - start + 1
            async with aiofiles.open(path, "rb") as src:
                await src.seek(start)
                while remaining > 0:
                    piece = await src.read(min(READ_PIECE, remaining))
                    if not piece:
                        break
                    remaining -= len(piece)
                    yield piece

        return ObjectBody(info, start, last, chunks())

    async def delete(self, key: str) -> None:
        try:
            await aiofiles.os.remove(self._path(key))
        except (FileNotFoundError, ObjectNotFound):
            pass

    async def begin(self, key: str, content_type: str) -> UploadState:
        name = uuid.uuid4().hex
        async with aiofiles.open(self.uploads / name, "wb"):
            pass
        return {"key": key, "file": name, "content_type": content_type, "size": 0, "pending": None}

    async def append(self, state: UploadState, offset: int, chunks: Chunks, length: int, *,
                     fence: Fence) -> UploadState:
        await self._merge(state)  # the last committed chunk, in case its writer died before copying it
        segment = f"{state['file']}.{offset:016d}.{uuid.uuid4().hex[:8]}"
        path = self.uploads / segment
        received = 0
        try:
            async with aiofiles.open(path, "xb") as out:
                async for piece in chunks:
                    received += len(piece)
                    if received > length:
                        raise IncompleteBody(length, received)
                    await out.write(piece)
                if received != length:
                    raise IncompleteBody(length, received)
                await out.flush()
                await asyncio.to_thread(os.fsync, out.fileno())
        except BaseException as exc:
            await asyncio.shield(asyncio.to_thread(_unlink, path))
            if isinstance(exc, OSError):
                raise BackendUnavailable("local", str(exc)) from exc
            raise
        return {**state, "size": offset + length, "pending": [segment, offset, length]}

    async def _merge(self, state: UploadState) -> None:
        """Copy the state's committed segment into the upload file (idempotent)."""
        if state.get("pending"):
            segment, offset, _ = state["pending"]
            try:
                await asyncio.to_thread(_copy_segment, self.uploads / segment, self.uploads / state["file"], offset)
            except FileNotFoundError:
                raise ObjectNotFound(state["file"]) from None
            except OSError as exc:
                raise BackendUnavailable("local", str(exc)) from exc

    async def concatenate(self, state: UploadState, sources: list[tuple[str, int]]) -> UploadState:
        """Fill a fresh upload with the objects ``sources`` names, in order (tus concatenation).
        Idempotent: a retry writes the same bytes again."""
        paths = [self._path(key) for key, _ in sources]
        try:
            await asyncio.to_thread(_concatenate, paths, self.uploads / state["file"])
        except FileNotFoundError as exc:
            raise ObjectNotFound(str(exc.filename)) from None
        except OSError as exc:
            raise BackendUnavailable("local", str(exc)) from exc
        return {**state, "size": sum(size for _, size in sources), "pending": None}

    async def complete(self, state: UploadState, *, fence: int = 0) -> ObjectInfo:
        path = self._path(state["key"])
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        # Concurrent or retried completes all end here; whoever renames first wins and
        # the others find the object in place (only committed bytes are ever copied).
        with contextlib.suppress(ObjectNotFound):
            await self._merge(state)
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.replace(self.uploads / state["file"], path)
        info = await self.stat(state["key"])
        if state.get("size") is not None and info.size != state["size"]:
            raise BackendUnavailable("local", f"{state['key']} has {info.size} bytes, expected {state['size']}")
        return info

    async def cleanup(self, keep: UploadState, drop: UploadState) -> None:
        dropped = drop.get("pending")
        if dropped and dropped != keep.get("pending"):
            await asyncio.to_thread(_unlink, self.uploads / dropped[0])
        with contextlib.suppress(ObjectNotFound):
            await self._merge(keep)

    async def abort(self, state: UploadState) -> None:
        await asyncio.to_thread(_remove_upload, self.uploads, state["file"])


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _copy_segment(segment: Path, target: Path, offset: int) -> None:
    try:
        source = open(segment, "rb")
    except FileNotFoundError:
        return  # copied before: segments are deleted only after their copy is durable
    with source, open(target, "r+b") as out:
        out.seek(offset)
        shutil.copyfileobj(source, out, COPY_PIECE)
        out.flush()
        os.fsync(out.fileno())
    _unlink(segment)


def _concatenate(sources: list[Path], target: Path) -> None:
    with open(target, "r+b") as out:
        out.truncate(0)
        for source in sources:
            with open(source, "rb") as piece:
                shutil.copyfileobj(piece, out, COPY_PIECE)
        out.flush()
        os.fsync(out.fileno())


def _remove_upload(folder: Path, name: str) -> None:
    """The upload file and every segment of it, committed or left by a failed attempt."""
    for path in [folder / name, *folder.glob(f"{name}.*")]:
        _unlink(path)
