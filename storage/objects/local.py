"""Local-disk object store: objects are files under ``root/objects``.

An upload appends to ``root/uploads/<id>`` and is renamed into place on complete.
Each append truncates the file to the acknowledged offset first, so bytes written
by a request that crashed before its offset was recorded are simply overwritten;
it fsyncs before returning, so an acknowledged chunk survives a power cut.
"""
from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import uuid
from pathlib import Path

import aiofiles
import aiofiles.os

from storage.errors import BackendUnavailable, ObjectNotFound
from storage.objects.port import Chunks, IncompleteBody, ObjectBody, ObjectInfo, UploadState

READ_PIECE = 256 * 1024


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
        return {"key": key, "file": name, "content_type": content_type}

    async def append(self, state: UploadState, offset: int, chunks: Chunks, length: int) -> UploadState:
        path = self.uploads / state["file"]
        received = 0
        try:
            async with aiofiles.open(path, "r+b") as out:
                await out.truncate(offset)
                await out.seek(offset)
                async for piece in chunks:
                    received += len(piece)
                    if received > length:
                        raise IncompleteBody(length, received)
                    await out.write(piece)
                if received != length:
                    raise IncompleteBody(length, received)
                await out.flush()
                await asyncio.to_thread(os.fsync, out.fileno())
        except FileNotFoundError:
            raise ObjectNotFound(state["file"]) from None
        except OSError as exc:
            raise BackendUnavailable("local", str(exc)) from exc
        return state

    async def complete(self, state: UploadState) -> ObjectInfo:
        path = self._path(state["key"])
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        source = self.uploads / state["file"]
        if await aiofiles.os.path.exists(source):
            await aiofiles.os.replace(source, path)
        elif not await aiofiles.os.path.exists(path):  # a retried complete finds it in place
            raise ObjectNotFound(state["key"])
        return await self.stat(state["key"])

    async def cleanup(self, keep: UploadState, drop: UploadState) -> None:
        pass  # appends go to one file in place: nothing is staged

    async def abort(self, state: UploadState) -> None:
        try:
            await aiofiles.os.remove(self.uploads / state["file"])
        except FileNotFoundError:
            pass
