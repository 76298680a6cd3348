"""What a file is, from its first bytes: MIME type (libmagic) and image dimensions.

Images are opened header-only, so dimensions come without decoding pixels; the
head we read is enough for every format we accept as image. Everything here is
synchronous (libmagic, Pillow): async callers run it in an executor.
"""
from __future__ import annotations

import io
import struct
import warnings
from typing import BinaryIO

import magic
from PIL import Image, ImageFile, UnidentifiedImageError

HEAD_BYTES = 256 * 1024
SAFE_INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
RASTER_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees
# What reading EXIF may raise on a broken block.
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def mime_type(head: bytes) -> str:
    return magic.from_buffer(head, mime=True) or "application/octet-stream"


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) of a raster image as it is shown (EXIF orientation applied),
    or None if the head is not one we accept.

    An image over Pillow's decompression-bomb limit is still an image: its size is
    reported, and deciding what to decode is the workers' per-call pixel cap.
    """
    try:
        img = open_header(io.BytesIO(head))
    except NotAnImage:
        return None
    return oriented_size(img)


def describe_head(head: bytes) -> tuple[str, tuple[int, int] | None]:
    """(MIME type, shown image size or None) of a file's first bytes, in one executor call."""
    mime = mime_type(head)
    return mime, image_size(head) if mime.startswith("image/") else None


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
