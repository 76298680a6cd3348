"""The one probe: what a file is, from its first bytes (MIME type by libmagic, kind,
shown image dimensions and mode), used by complete and by the ``probe`` job alike.

Images are opened header-only, so dimensions come without decoding pixels. The
first ``PROBE_HEAD`` bytes are enough for almost every image; one whose header lies
past them (a JPEG behind a huge ICC profile) is probed again on up to
``HEADER_MAX`` bytes. ``probe_stored`` runs libmagic and Pillow in an executor;
everything else here is synchronous.
"""
from __future__ import annotations

import asyncio
import io
import os
import struct
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import magic
from PIL import Image, ImageFile, UnidentifiedImageError

from gateway.core.object_files import downloaded
from storage.objects.port import ObjectStore

SNIFF_BYTES = 256 * 1024  # what libmagic looks at: reading more of a multi-GiB video only costs time
PROBE_HEAD = 1024 * 1024  # image headers almost always end well before 1 MiB
HEADER_MAX = 64 * 1024 * 1024  # an image whose header is not within this is not measured
SAFE_INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
RASTER_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees
# What reading EXIF may raise on a broken block.
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class Probe:
    mime_type: str
    kind: str  # "image", "video", "audio", "document", "text" or "other"
    size: int
    width: int | None = None  # as shown: EXIF orientation applied
    height: int | None = None
    mode: str | None = None

    @property
    def needs_more(self) -> bool:
        """A raster image by its magic bytes whose header was not within what was read."""
        return kind_for_mime(self.mime_type) == "image" and self.width is None


def mime_type(head: bytes) -> str:
    return magic.from_buffer(head[:SNIFF_BYTES], mime=True) or "application/octet-stream"


def describe(fp: BinaryIO, size: int) -> Probe:
    """What the file behind ``fp`` really is (by content, never by name or the client's claim).

    An image over Pillow's decompression-bomb limit is still an image: its size is
    reported, and deciding what to decode is the workers' per-call pixel cap. A file
    with image magic bytes that no accepted decoder opens is ``other``.
    """
    mime = mime_type(fp.read(SNIFF_BYTES))
    kind = kind_for_mime(mime)
    if kind != "image":
        return Probe(mime, kind, size)
    fp.seek(0)
    try:
        img = open_header(fp)
    except NotAnImage as exc:
        return Probe(mime, "image" if exc.reason == "too_many_pixels" else "other", size)
    width, height = oriented_size(img)
    return Probe(mime, "image", size, width, height, img.mode)


def probe_file(path: str | Path) -> Probe:
    with open(path, "rb") as fp:
        return describe(fp, os.fstat(fp.fileno()).st_size)


async def probe_stored(objects: ObjectStore, key: str, size: int, executor: Executor | None = None) -> Probe:
    """Probe a stored object off the event loop, reading only as much of it as needed."""
    loop = asyncio.get_running_loop()
    head = await (await objects.get(key, 0, min(size, PROBE_HEAD) - 1)).read_all() if size else b""
    found = await loop.run_in_executor(executor, describe, io.BytesIO(head), size)
    if found.needs_more and size > PROBE_HEAD:
        async with downloaded(objects, key, min(size, HEADER_MAX) - 1) as path:
            with_header = await loop.run_in_executor(executor, probe_file, path)
        found = Probe(with_header.mime_type, with_header.kind, size, with_header.width, with_header.height,
                      with_header.mode)
    return found


def open_header(fp: BinaryIO) -> ImageFile.ImageFile:
    """Image.open(fp, formats=RASTER_FORMATS) without Pillow's MAX_IMAGE_PIXELS check.

    Image.open warns above that process-wide limit and raises above twice it, before
    the caller can even read the size: big images could not be described, and the
    warning would escape into whatever warning filters the process has. Changing the
    limit is global state shared with every other thread. So this runs the same
    lookup as Image.open over the accepted plugins only, and callers apply their own
    per-call limit to the header size. Raises NotAnImage (not_an_image,
    too_many_pixels for GIF frames checked while opening, corrupt_image).
    """
    prefix = fp.read(16)
    for name in RASTER_FORMATS:
        if name not in Image.OPEN:
            Image.init()  # WEBP and TIFF are not among the plugins Pillow preloads
        factory, accept = Image.OPEN[name]
        verdict = accept(prefix) if accept else True
        if not verdict or isinstance(verdict, str):  # a str is Pillow's "looks like it, but unsupported"
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except Image.DecompressionBombError as exc:  # GIF frames are checked while opening
            raise NotAnImage("too_many_pixels", str(exc)) from exc
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # Image.open treats these as "not this format"; so do we
        except (OSError, EOFError, ValueError) as exc:  # the header itself is cut short
            raise NotAnImage("corrupt_image", f"cannot read the {name} header: {exc}") from exc
    raise NotAnImage("not_an_image", "not a JPEG, PNG, GIF, WebP, BMP or TIFF image")


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) found in the header; 1 when there is none."""
    # A PNG's eXIf chunk may follow the pixel data, and Pillow's getexif() would then
    # decode the whole image to reach it: when it is not in the header, assume none.
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except _EXIF_ERRORS:
        return 1  # broken EXIF must not make an otherwise fine image unusable
    return value if isinstance(value, int) else 1


def oriented_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) as viewers show the image, which is what clients lay out."""
    width, height = img.size
    return (height, width) if orientation(img) in SWAPS_AXES else (width, height)


_RASTER_MIME_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/x-ms-bmp", "image/tiff",
})
# SVG is a "document", not an image: it can carry <script>, so it is never decoded or
# thumbnailed here and is served as an attachment, like the office formats.
_DOCUMENT_MIME_TYPES = frozenset({
    "image/svg+xml", "application/pdf", "application/postscript", "application/rtf", "text/rtf",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/epub+zip",
})
_DOCUMENT_MIME_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
_TEXT_MIME_TYPES = frozenset({"application/json", "application/xml"})


def kind_for_mime(mime: str) -> str:
    if mime in _DOCUMENT_MIME_TYPES or mime.startswith(_DOCUMENT_MIME_PREFIXES):
        return "document"
    if mime in _RASTER_MIME_TYPES:
        return "image"
    family = mime.split("/", 1)[0]
    if family in ("video", "audio", "text"):
        return family
    return "text" if mime in _TEXT_MIME_TYPES else "other"


class NotAnImage(ValueError):
    """``reason`` is not_an_image, too_many_pixels or corrupt_image."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decoded_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """(MIME type, width, height) of bytes that fully decode as an accepted raster image.

    The size is read from the header and refused above ``max_pixels`` before any
    pixel is decoded, so a decompression bomb costs nothing. CPU-bound: run it in
    an executor.
    """
    mime = mime_type(data)
    if mime not in SAFE_INLINE_IMAGES:
        raise NotAnImage("not_an_image", f"not a JPEG, PNG, GIF, WebP or BMP image ({mime})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=RASTER_FORMATS) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise NotAnImage("too_many_pixels", f"{width}x{height} is over {max_pixels} pixels")
                img.load()
    except Image.DecompressionBombError as exc:
        raise NotAnImage("too_many_pixels", str(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        if isinstance(exc, NotAnImage):
            raise
        raise NotAnImage("corrupt_image", f"the image does not decode: {exc}") from None
    return mime, width, height
