"""Derived attributes of a raster image, as DatoCMS shows them on an upload:
``blurhash``, ``thumbhash`` (base64), dominant ``colors`` and a safe subset of EXIF.

Pure and synchronous like ``workers.imaging``: the ``attributes`` job calls it in an
executor, on a temporary file it downloaded, after reserving ``decode_cost`` from the
process's decode budget. The hashes and colours only need a small picture, so the
image is decoded the way thumbnails start (JPEG DCT scaling, first frame, EXIF
orientation applied) and shrunk to fit ``HASH_BOX`` pixels; ThumbHash itself takes
at most 100x100.

EXIF is an allow-list of what describes the shot (camera, lens, exposure, date,
orientation) plus the shown size. GPS, maker notes, thumbnails and every other tag
are never read out: an upload's EXIF is served to anyone who can read the upload,
and location data or binary blobs do not belong there. Keys are snake_case (as
DatoCMS's ``exif_info`` has them: ``iso``, ``model``, ``focal_length``,
``exposure_time``); values are JSON numbers or short strings.
"""
from __future__ import annotations

import base64
import math
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import blurhash
import thash
from PIL import Image

from gateway.core import sniff
from gateway.core.sniff import NotAnImage
from workers import imaging

HASH_BOX = 100  # ThumbHash's maximum; plenty for a 4x4-component BlurHash and a handful of colours
BLURHASH_BOX = 32
COLOR_COUNT = 5  # DatoCMS lists four or five
MIN_SHARE = 0.02  # of what is visible: a colour on less than that is not dominant
_SAME_COLOUR = 12  # channel difference under which two palette entries are one colour
MAX_TEXT = 100  # characters kept of an EXIF string (a camera model, a lens name)

EXIF_IFD = 0x8769
_MAIN_TAGS = {0x010F: "make", 0x0110: "model", 0x0112: "orientation"}
_EXIF_TAGS = {
    0x829A: "exposure_time", 0x829D: "f_number", 0x8827: "iso", 0x9003: "date_time_original",
    0x9209: "flash_mode", 0x920A: "focal_length", 0xA405: "focal_length_in_35mm_film",
    0xA433: "lens_make", 0xA434: "lens_model",
}
_OFFSET_TIME_ORIGINAL = 0x9011
_UTC_OFFSET = re.compile(r"[+-]\d\d:\d\d")
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error)


@dataclass(frozen=True)
class ImageAttributes:
    blurhash: str
    thumbhash: str  # base64 with padding, as DatoCMS shows it
    colors: tuple[dict[str, int], ...]  # most visible first: {"red", "green", "blue", "alpha"}, 0..255
    exif: dict[str, Any] = field(default_factory=dict)

    def as_changes(self) -> dict[str, Any]:
        """The media fields these attributes set."""
        return {"blurhash": self.blurhash, "thumbhash": self.thumbhash, "colors": self.colors, "exif": self.exif}


def image_attributes(path: str | Path, *, max_pixels: int = 50_000_000) -> ImageAttributes:
    """The derived attributes of the image at ``path``.

    Raises NotAnImage (not_an_image, too_many_pixels before decoding anything over
    ``max_pixels``, corrupt_image)."""
    with open(path, "rb") as fp:
        img = sniff.open_header(fp)
        width, height = sniff.oriented_size(img)
        if width * height > max_pixels:
            raise NotAnImage("too_many_pixels", f"{width}x{height} is over {max_pixels} pixels")
        small = imaging.shrink_shown(img, HASH_BOX)
        exif = {**safe_exif(img), "width": width, "height": height}
    rgba = small.convert("RGBA")
    return ImageAttributes(blurhash=_blurhash(rgba), thumbhash=_thumbhash(rgba), colors=dominant_colors(rgba),
                           exif=exif)


def decode_cost(path: str | Path, *, max_pixels: int = 50_000_000) -> int:
    """Bytes of pixel memory image_attributes holds at its peak (from the header alone)."""
    return imaging.decode_cost(path, (HASH_BOX,), max_pixels=max_pixels)


def _blurhash(rgba: Image.Image) -> str:
    # BlurHash has no alpha: transparent areas go onto white, as the JPEG thumbnails do.
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    # A few cosine components only see the coarsest shapes, which a 32-pixel copy
    # keeps; the encoder is pure Python, so fewer pixels is what makes it cheap.
    flat.thumbnail((BLURHASH_BOX, BLURHASH_BOX), Image.Resampling.BOX)
    data, width = flat.tobytes(), flat.width
    rows = [[data[(row + x) * 3:(row + x) * 3 + 3] for x in range(width)]
            for row in range(0, width * flat.height, width)]
    # Four components along the longer side, three across the shorter (4x4 if square).
    x_components = 4 if flat.width >= flat.height else 3
    y_components = 4 if flat.height >= flat.width else 3
    return blurhash.encode(rows, x_components, y_components)


def _thumbhash(rgba: Image.Image) -> str:
    # The pure-Python encoder (30 ms at 100x100) gives the bytes of the reference
    # (evanw's JavaScript) encoder, but for exact .5 ties, which Python rounds to even;
    # thash's NumPy one, its default wherever NumPy happens to be installed, computes
    # in float32 and comes out a few bits further off.
    hashed = thash.rgba_to_thumb_hash_pure(rgba.width, rgba.height, list(rgba.tobytes()))
    return base64.b64encode(bytes(hashed)).decode("ascii")


def dominant_colors(rgba: Image.Image, count: int = COLOR_COUNT) -> tuple[dict[str, int], ...]:
    """Up to ``count`` colours, the most visible first: a pixel counts as much as it is
    opaque, so the transparent background of a logo and its faint anti-aliased edges
    are nobody's colour (a picture that is all transparent gets its one colour)."""
    if rgba.getextrema()[3][0] == 255:  # opaque: median cut over RGB picks better colours than the octree
        quantized = rgba.convert("RGB").quantize(count, method=Image.Quantize.MEDIANCUT)
        palette = quantized.getpalette(rawmode="RGB")
        entry = lambda index: (*palette[index * 3:index * 3 + 3], 255)  # noqa: E731
    else:  # Pillow quantizes RGBA with the octree only
        quantized = rgba.quantize(count, method=Image.Quantize.FASTOCTREE)
        palette = quantized.getpalette(rawmode="RGBA")
        entry = lambda index: tuple(palette[index * 4:index * 4 + 4])  # noqa: E731
    counted = [(pixels * colour[3], colour) for pixels, colour in
               ((pixels, entry(index)) for pixels, index in quantized.getcolors())]
    total = sum(weight for weight, _ in counted)
    if not total:
        return ({"red": 0, "green": 0, "blue": 0, "alpha": 0},)
    ranked = [colour for weight, colour in _merge_close(counted) if weight >= total * MIN_SHARE]
    return tuple(dict(zip(("red", "green", "blue", "alpha"), colour)) for colour in ranked[:count])


def _merge_close(counted: list[tuple[int, tuple[int, ...]]]) -> list[tuple[int, tuple[int, ...]]]:
    """(weight, colour) by weight, shades the eye cannot tell apart counted as one: median
    cut always makes ``count`` boxes, so a two-colour picture comes back as two pairs of twins."""
    kept: list[list] = []  # [weight, colour]
    for weight, colour in sorted(counted, key=lambda pair: -pair[0]):
        twin = next((k for k in kept if max(abs(a - b) for a, b in zip(k[1], colour)) <= _SAME_COLOUR), None)
        if twin is not None:
            twin[0] += weight
        else:
            kept.append([weight, colour])
    return [(weight, colour) for weight, colour in sorted(kept, key=lambda k: -k[0])]


def safe_exif(img: Image.Image) -> dict[str, Any]:
    """The allow-listed EXIF of an opened (or loaded) image; {} when there is none or
    it does not parse (broken EXIF must not make an image unusable)."""
    try:
        exif = img.getexif()
        raw = {name: exif.get(tag) for tag, name in _MAIN_TAGS.items()}
        details = exif.get_ifd(EXIF_IFD) if EXIF_IFD in exif else {}
        raw.update({name: details.get(tag) for tag, name in _EXIF_TAGS.items()})
        offset = details.get(_OFFSET_TIME_ORIGINAL)
    except _EXIF_ERRORS:
        return {}
    found = {name: _json_value(value) for name, value in raw.items()}
    found["date_time_original"] = _taken_at(raw["date_time_original"], offset)
    if found["orientation"] not in range(1, 9):
        found["orientation"] = None
    return {name: value for name, value in found.items() if value is not None}


def _json_value(value: Any) -> str | int | float | None:
    """A short string or a finite number; None for anything else (bytes, blobs, NaN)."""
    if isinstance(value, (tuple, list)):  # ISO is a list of speeds; the first is the one used
        value = value[0] if value else None
    if isinstance(value, bool) or value is None or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2 ** 53 else None
    if isinstance(value, str):
        text = "".join(ch for ch in value.replace("\x00", "") if ch.isprintable()).strip()
        return text[:MAX_TEXT] or None
    try:
        number = float(value)  # EXIF rationals (IFDRational)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() else float(f"{number:.6g}")


def _taken_at(value: Any, offset: Any) -> str | None:
    """EXIF's "YYYY:MM:DD HH:MM:SS" as ISO 8601, with the UTC offset when the camera recorded one."""
    if not isinstance(value, str):
        return None
    try:
        taken = datetime.strptime(value.replace("\x00", "").strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None
    if isinstance(offset, str) and _UTC_OFFSET.fullmatch(offset.replace("\x00", "").strip()):
        taken += offset.replace("\x00", "").strip()
    return taken
