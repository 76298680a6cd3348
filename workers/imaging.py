"""Pure imaging helpers for the background workers: thumbnails of raster images.
(What a file is, the probe, is gateway.core.sniff, shared with complete.)

No HTTP and no database here. Everything is synchronous and CPU-bound; workers call
it in an executor, on a temporary file they downloaded.
"""
from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

from gateway.core import sniff
from gateway.core.sniff import NotAnImage

ACCEPTED_FORMATS = sniff.RASTER_FORMATS
DEFAULT_SIZES = (64, 128, 512, 1080)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# Same trade-off as Pillow's own thumbnail(): shrink cheaply (JPEG DCT scaling,
# integer reduce) down to about twice the target, then finish with LANCZOS.
_REDUCING_GAP = 2.0

_SWAPS_AXES = sniff.SWAPS_AXES
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Decoder and encoder buffers (libjpeg, zlib, output) on top of the pixels, measured.
_CODEC_BYTES = 16 * 1024 * 1024

# Rows of a 16-bit image converted to 8 bits at a time (see _sixteen_bit_to_8bit).
_BAND_BYTES = 4 * 1024 * 1024

# What a decoder may raise on truncated or malformed pixel data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass
class Thumbnail:
    size: int  # the bounding square asked for; width/height are what fits in it
    width: int
    height: int
    format: str
    content_type: str
    data: bytes


def make_thumbnails(
    path: str | Path,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    *,
    max_pixels: int = 50_000_000,
    jpeg_quality: int = 85,
) -> list[Thumbnail]:
    """One thumbnail per distinct size in ``sizes`` (same order), each fitting a
    size x size square and never larger than the image, EXIF orientation applied.

    Raises NotAnImage before decoding anything over ``max_pixels``.
    """
    boxes = _check_sizes(sizes)
    with open(path, "rb") as fp:
        img = _open(fp)
        width, height = img.size  # before draft() shrinks it
        if width * height > max_pixels:
            raise NotAnImage("too_many_pixels", f"{width}x{height} is over {max_pixels} pixels")
        box, orientation = _decode(img, max(boxes))
    if orientation in _SWAPS_AXES:
        width, height = height, width

    source_mode = img.mode
    frame = _normalize_mode(img)
    out_format = _output_format(img.format, frame)
    frame = _prepare_for(out_format, frame)
    icc = img.info.get("icc_profile") if _colour_family(source_mode) == _colour_family(frame.mode) else None
    frame.info = {}  # no EXIF (GPS, a stale orientation), comments etc. in thumbnails

    made: dict[int, Thumbnail] = {}
    current, data = None, b""
    for size in sorted(boxes, reverse=True):
        target = _fit(width, height, size)
        if current is None:
            current = _first_step(frame, target, box, orientation)
            frame = img = None  # let the full decode go as soon as possible
        elif current.size != target:
            current = current.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
            data = b""
        if not data:
            data = _encode(current, out_format, jpeg_quality, icc)
        made[size] = Thumbnail(size, current.width, current.height, out_format, CONTENT_TYPES[out_format], data)
    return [made[size] for size in boxes]


def decode_cost(path: str | Path, sizes: tuple[int, ...] = DEFAULT_SIZES, *, max_pixels: int = 50_000_000) -> int:
    """Bytes of pixel memory make_thumbnails(path, sizes) holds at its peak, estimated
    from the header alone (nothing is decoded), so a caller can budget memory across
    concurrent decodes before starting one.

    Raises NotAnImage as make_thumbnails would before decoding.
    """
    largest = max(_check_sizes(sizes))
    with open(path, "rb") as fp:
        img = _open(fp)
        width, height = img.size
        if width * height > max_pixels:
            raise NotAnImage("too_many_pixels", f"{width}x{height} is over {max_pixels} pixels")
        _draft(img, largest)  # JPEGs decode scaled down: count what load() will really hold
        width, height = img.size
        return width * height * _peak_bytes_per_pixel(img.mode, "transparency" in img.info) + _CODEC_BYTES


def _peak_bytes_per_pixel(mode: str, transparency: bool) -> int:
    """Bytes per decoded pixel held at once: the decode itself, the full-size copy
    _normalize_mode makes, the one _prepare_for makes to flatten alpha, and about two
    more for resampling intermediates (measured on 24-49 megapixel images). Pillow
    stores 1, L and P at 1 byte a pixel, I;16 at 2 and every other mode at 4."""
    decoded = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    if (mode in ("L", "RGB") and not transparency) or mode in ("LA", "RGBA"):
        converted = 0
    elif mode.startswith("I;16"):
        converted = 1  # straight to L, a band at a time
    elif mode in ("I", "F"):
        converted = 4 + 1  # point() at 32 bits, then L
    else:
        converted = 4
    alpha = mode in ("LA", "RGBA", "PA") or transparency
    return decoded + converted + (4 if alpha else 0) + 2


def shrink_shown(img: ImageFile.ImageFile, box: int) -> Image.Image:
    """The first frame of an opened image as viewers show it (EXIF orientation applied),
    fitted to a box x box square, in L, LA, RGB or RGBA: decoded as small as JPEG DCT
    scaling allows, the way make_thumbnails starts. The caller has checked the pixel
    cap on the header size. Raises NotAnImage for pixels that do not decode."""
    width, height = img.size  # before draft() shrinks it
    draft_box, orientation = _decode(img, box)
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return _first_step(_normalize_mode(img), _fit(width, height, box), draft_box, orientation)


def _check_sizes(sizes: tuple[int, ...]) -> list[int]:
    boxes = list(dict.fromkeys(sizes))
    if not boxes or any(not isinstance(s, int) or s < 1 for s in boxes):
        raise ValueError(f"thumbnail sizes must be positive integers, got {sizes!r}")
    return boxes


_open = sniff.open_header  # header-only, over the accepted formats (no process-wide bomb check)


_orientation = sniff.orientation


def _decode(img: ImageFile.ImageFile, largest: int) -> tuple[tuple[float, ...] | None, int]:
    """Load the first frame, as small as JPEG DCT scaling allows for ``largest``.

    Returns the draft crop box (the scaled image may carry a fraction of a padding
    pixel at its edges) and the EXIF orientation.
    """
    try:
        img.seek(0)  # animations: the first frame stands for the file
        box = _draft(img, largest)
        img.load()
        return box, _orientation(img)
    except Image.DecompressionBombError as exc:
        raise NotAnImage("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise NotAnImage("corrupt_image", f"cannot decode image: {exc}") from exc


def _draft(img: ImageFile.ImageFile, largest: int) -> tuple[float, ...] | None:
    """Ask libjpeg to decode at the smallest DCT scale that still gives about twice
    ``largest``; img.size becomes what load() will decode. Returns the crop box."""
    target = _fit(*img.size, largest)
    if img.format not in ("JPEG", "MPO") or target == img.size:
        return None
    draft = img.draft(img.mode, (int(target[0] * _REDUCING_GAP), int(target[1] * _REDUCING_GAP)))
    return draft[1] if draft else None


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    """Largest size with the same aspect that fits a box x box square, never larger
    than the image, never 0 (a 10000x10 strip still has a 1-pixel edge)."""
    if max(width, height) <= box:
        return width, height
    if width >= height:
        return box, max(1, round(height * box / width))
    return max(1, round(width * box / height)), box


def _normalize_mode(img: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB or RGBA, which every output format takes
    and which LANCZOS can resample (Pillow resizes "P" and "1" with NEAREST only)."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img.convert(mode + "A" if mode == "L" else "RGBA") if "transparency" in img.info else img
    if mode in ("LA", "RGBA"):
        return img
    if mode in ("P", "PA"):
        return img.convert("RGBA" if img.has_transparency_data else "RGB")
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img)
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    # Converting straight to L clips at 255, so nearly every 16-bit scan would come out
    # white. 16-bit modes have a known range; 32-bit int and float data have none, so
    # those are stretched to their own extrema.
    if img.mode.startswith("I;16"):
        return _sixteen_bit_to_8bit(img)
    low, high = img.getextrema()
    scale = 255 / (high - low) if high > low else 0.0
    offset = -low * scale if high > low else min(max(low, 0), 255)
    return img.point(lambda value: value * scale + offset).convert("L")


def _sixteen_bit_to_8bit(img: Image.Image) -> Image.Image:
    """The high byte of every sample (v >> 8, within 1 of v / 257), a band of rows at a
    time: going through mode I would hold two full-size 32-bit copies, 4x the decode."""
    raw_high_byte = "L;16B" if img.mode == "I;16B" or (img.mode == "I;16N" and sys.byteorder == "big") else "L;16"
    out = Image.new("L", img.size)
    rows = max(1, _BAND_BYTES // (2 * img.width))
    for top in range(0, img.height, rows):
        band = img.crop((0, top, img.width, min(top + rows, img.height)))
        out.paste(Image.frombytes("L", band.size, band.tobytes(), "raw", raw_high_byte), (0, top))
    return out


def _has_visible_alpha(img: Image.Image) -> bool:
    return img.mode in ("LA", "RGBA") and img.getextrema()[-1][0] < 255


def _output_format(source_format: str | None, img: Image.Image) -> str:
    if source_format == "WEBP":
        return "WEBP"
    if source_format in ("PNG", "GIF") and _has_visible_alpha(img):
        return "PNG"
    return "JPEG"  # smallest for photos, and what every client can show


def _prepare_for(out_format: str, img: Image.Image) -> Image.Image:
    if img.mode in ("LA", "RGBA") and not (out_format != "JPEG" and _has_visible_alpha(img)):
        # An alpha band that hides nothing only costs bytes; a visible one JPEG cannot
        # hold, so it goes onto white, where most transparent artwork is meant to sit.
        flat = Image.new(img.mode[:-1], img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    return img  # WEBP output only comes from WebP sources, which decode to RGB(A)


def _colour_family(mode: str) -> str:
    # An ICC profile only describes pixels of the colour space it was made for.
    if mode in ("RGB", "RGBA", "P", "PA"):
        return "rgb"
    if mode in ("L", "LA", "1") or mode.startswith("I") or mode == "F":
        return "gray"
    return mode


def _first_step(
    frame: Image.Image, target: tuple[int, int], box: tuple[float, ...] | None, orientation: int
) -> Image.Image:
    # Resize before applying the orientation: transposing the small result is cheaper,
    # and the draft box is in the stored (unrotated) coordinates.
    stored_target = target[::-1] if orientation in _SWAPS_AXES else target
    if frame.size != stored_target:
        frame = frame.resize(stored_target, Image.Resampling.LANCZOS, box=box, reducing_gap=_REDUCING_GAP)
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return frame.transpose(transpose) if transpose is not None else frame


def _encode(img: Image.Image, out_format: str, jpeg_quality: int, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    # optimize=False everywhere: a second Huffman/zlib pass costs more CPU than the few
    # percent of bytes it saves on thumbnails. icc_profile=None stops PNG copying one.
    options = {"icc_profile": icc}
    if out_format == "JPEG":
        options.update(quality=jpeg_quality, optimize=False)
    elif out_format == "WEBP":
        options.update(quality=jpeg_quality)
    else:
        options.update(optimize=False)
    img.save(out, out_format, **options)
    return out.getvalue()
