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
