"""What a file is, from its first bytes: MIME type (libmagic) and image dimensions.

Pillow's ``Image.open`` parses only the header, so dimensions come without
decoding pixels; the head we read is enough for every format we accept as image.
"""
from __future__ import annotations

import io
import warnings

import magic
from PIL import Image, UnidentifiedImageError

HEAD_BYTES = 256 * 1024
SAFE_INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
RASTER_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")


def mime_type(head: bytes) -> str:
    return magic.from_buffer(head, mime=True) or "application/octet-stream"


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) of a raster image, or None if the head is not one we accept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(head), formats=RASTER_FORMATS) as img:
                return img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


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
    mime = mime_type(data[:HEAD_BYTES])
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
