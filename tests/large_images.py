"""Big but cheap PNGs for memory and decompression-bomb tests, written row by row so the
test never holds the pixels (Pillow keeps even mode "1" at a byte a pixel)."""
from __future__ import annotations

import struct
import zlib

GRAY, RGB, RGBA = 0, 2, 6  # PNG colour types
_CHANNELS = {GRAY: 1, RGB: 3, RGBA: 4}


def png_bytes(width: int, height: int, *, bit_depth: int = 8, colour: int = GRAY, blank: bool = False) -> bytes:
    """A real, complete PNG, all zeros when ``blank``, else a repeating pattern (so it
    compresses to almost nothing but is not all one value)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row_bytes = (width * _CHANNELS[colour] * bit_depth + 7) // 8
    samples = bytes(row_bytes) if blank else (bytes(range(256)) * (row_bytes // 256 + 1))[:row_bytes]
    row = b"\x00" + samples  # filter byte "none", then the samples
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png_bytes(width: int = 20000, height: int = 20000) -> bytes:
    """1-bit grayscale: 20000x20000 is 400 megapixels (over twice Pillow's MAX_IMAGE_PIXELS,
    where Image.open raises DecompressionBombError) in about 60 KB."""
    return png_bytes(width, height, bit_depth=1, colour=GRAY, blank=True)
