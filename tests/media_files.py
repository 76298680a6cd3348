"""Real files for tests, made with Pillow."""
from __future__ import annotations

import io
import os

from PIL import Image


def jpeg(width: int = 640, height: int = 480, pad_to: int = 0) -> bytes:
    """A real JPEG; ``pad_to`` appends random bytes after EOI (still a valid JPEG to
    readers) so big files stay cheap to make."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(out, "JPEG", quality=90)
    data = out.getvalue()
    return data + os.urandom(max(0, pad_to - len(data)))


def png(width: int = 32, height: int = 16, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 20, 30, 128) if mode == "RGBA" else 128).save(out, "PNG")
    return out.getvalue()


def pdf_like() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + os.urandom(300_000)
