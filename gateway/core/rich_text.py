"""User-written HTML made safe: an allowlist sanitizer (nh3, the Rust ammonia
library), plain text and summaries, and ``@username`` mention links.

Nothing from users is rendered as given: tags and attributes outside the
allowlist are dropped, ``<script>``/``<style>`` lose their content too, URLs must
be http, https or mailto, and links get ``rel="nofollow noopener"``. Mentions are
linked after sanitizing, in text outside existing links, and the result is
sanitized once more so the linking step cannot open a hole.
"""
from __future__ import annotations

import html
import re
from typing import Callable

import nh3

TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "a", "ul", "ol", "li", "blockquote", "code", "pre", "span"}
ATTRIBUTES = {"a": {"href", "title", "class", "data-username"}}
URL_SCHEMES = {"http", "https", "mailto"}
DROP_WITH_CONTENT = {"script", "style"}
SUMMARY_LENGTH = 200

_TAG = re.compile(r"(<[^>]*>)")
_MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_.-]{1,150})")


def sanitize_html(text: str) -> str:
    return nh3.clean(text, tags=TAGS, clean_content_tags=DROP_WITH_CONTENT, attributes=ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="nofollow noopener")


def plain_text(markup: str) -> str:
    stripped = nh3.clean(markup, tags=set(), clean_content_tags=DROP_WITH_CONTENT)
    return " ".join(html.unescape(stripped).split())


def summary(markup: str, limit: int = SUMMARY_LENGTH) -> str:
    """Plain text of at most ``limit`` characters, cut at a word boundary when there is one."""
    text = plain_text(markup)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def link_mentions(markup: str, resolve: Callable[[str], str | None]) -> str:
    """Turn ``@name`` in text (not inside links or attributes) into a mention link
    when ``resolve(name)`` gives a URL; unknown names stay plain text."""
    out, in_link = [], 0
    for piece in _TAG.split(markup):
        if piece.startswith("<"):
            name = piece[1:].lstrip("/").split(None, 1)[0].rstrip(">").lower() if len(piece) > 2 else ""
            if name == "a":
                in_link += -1 if piece.startswith("</") else 1
            out.append(piece)
        elif in_link:
            out.append(piece)
        else:
            out.append(_MENTION.sub(lambda m: _mention(m, resolve), piece))
    return sanitize_html("".join(out))


def _mention(match: re.Match, resolve: Callable[[str], str | None]) -> str:
    username = match.group(1)
    trailing = ""
    url = resolve(username)
    if url is None and username.endswith("."):  # "@bob." at the end of a sentence
        username, trailing = username.rstrip("."), username[len(username.rstrip(".")):]
        url = resolve(username)
    if url is None:
        return match.group(0)
    return (f'<a href="{html.escape(url)}" class="mention" data-username="{html.escape(username)}">'
            f"@{html.escape(username)}</a>{trailing}")
