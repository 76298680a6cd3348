"""File names a client sends, made safe to store and to show.

A name becomes the last part of an object key (a file name on local storage, so
at most 255 bytes on common file systems) and a media title. Three things go:
path separators, quotes and control characters (the key must stay one path
part); invisible format characters such as the bidi override U+202E and the
isolates U+2066-2069, which make "invoice<U+202E>fdp.exe" display as
"invoiceexe.pdf"; and whatever is past 120 characters or 200 bytes of UTF-8,
cut at a character boundary with the extension kept, because 130 CJK
characters are few characters but 390 bytes.
"""
from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200  # leaves room under the usual 255-byte limit for a suffix a store may add
MAX_NAME_CHARS = 120  # and a title that fits a line
MAX_EXTENSION_BYTES = 16
FALLBACK = "file"
# Titles keep Unicode and spaces; only path separators, quotes and control characters go.
UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f"/\\<>:|?*]+')


def visible_text(text: str) -> str:
    """``text`` in NFC without format characters (bidi controls, zero-width marks, soft hyphens) and
    lone surrogates (which UTF-8 cannot encode); line and paragraph separators become spaces."""
    kept = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category in ("Zl", "Zp"):
            kept.append(" ")
        elif category not in ("Cf", "Cs"):
            kept.append(ch)
    return "".join(kept)


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``max_bytes``."""
    return text.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")


def safe_filename(name: str | None) -> str:
    base = visible_text((name or "").replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = UNSAFE_NAME.sub("_", base).strip(" ._")
    if len(cleaned) > MAX_NAME_CHARS or len(cleaned.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, extension = cleaned.rpartition(".")
        if not dot or not stem or len(extension.encode("utf-8")) > MAX_EXTENSION_BYTES:
            stem, extension = cleaned, ""
        suffix = f".{extension}" if extension else ""
        stem = cut_utf8(stem[:MAX_NAME_CHARS - len(suffix)], MAX_NAME_BYTES - len(suffix.encode("utf-8")))
        cleaned = stem.rstrip(" ._") + suffix
    return cleaned.strip(" ._") or FALLBACK
