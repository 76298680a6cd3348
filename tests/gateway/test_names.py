"""File names made safe to store and to show: cut by UTF-8 bytes, invisible characters gone."""
from __future__ import annotations

import pytest

from gateway.core.names import MAX_NAME_BYTES, safe_filename, visible_text

CASES = [
    ("beach.jpg", "beach.jpg"),
    ("Q3 report.pdf", "Q3 report.pdf"),
    ("C:\\Users\\me\\photo.png", "photo.png"),
    ("../../etc/passwd", "passwd"),
    ("..", "file"),
    (None, "file"),
    ('a"b<c>d|e?.txt', "a_b_c_d_e_.txt"),
    ("tab\there\x85.txt", "tab_here_.txt"),  # C0 and C1 controls
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("\u2067x\u2069\u200e\u200f\ufeff.png", "x.png"),
    ("\u202e", "file"),
    ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),  # NFC: one code point per accented letter
    ("line\u2028break.txt", "line break.txt"),
    ("lone\ud800surrogate.txt", "lonesurrogate.txt"),
    ("漢" * 130 + ".pdf", "漢" * 65 + ".pdf"),
    ("😀" * 100 + ".jpeg", "😀" * 48 + ".jpeg"),
    ("a" * 300 + ".txt", "a" * 116 + ".txt"),
    ("a" * 300, "a" * 120),
    ("x." + "漢" * 100, "x." + "漢" * 66),  # an "extension" too long to be one: cut as a whole
    ("漢" * 65 + " " + "b" * 9 + ".pdf", "漢" * 65 + ".pdf"),  # the cut ends on a space: dropped
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_safe_filename(raw, expected):
    name = safe_filename(raw)
    assert name == expected
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES


def test_visible_text_keeps_what_shows():
    assert visible_text("Café 東京 🎉 a\u00adb\u200dc") == "Café 東京 🎉 abc"
