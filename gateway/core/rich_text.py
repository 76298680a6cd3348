"""User-written HTML made safe: an allowlist sanitizer (nh3, the Rust ammonia
library), plain text and summaries, and ``@username`` mention links.

Decisions:
- Tags: p, br, b, strong, i, em, u, s, a, ul, ol, li, blockquote, code, pre and
  span (kept only so pasted inline markup keeps its text flow; it carries no
  attributes). ``<a>`` keeps href and title; no ``target`` (links open in place,
  so no tab-nabbing question arises). No style, class, id or event attributes.
- URLs must be http, https or mailto (relative ones pass); links get
  ``rel="nofollow noopener"``. ``<script>``/``<style>`` lose their content too.
- ``summary`` is plain text of at most ``limit`` characters INCLUDING the "…" it
  ends with when cut; the cut is at a word boundary when one exists in the
  second half, else mid-word.
- Mentions are linked after sanitizing, only in text outside links and code, then
  the result is sanitized once more with the mention attributes allowed (class
  limited to "mention"), so the linking step cannot open a hole.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Callable

import nh3

from gateway.core.auth import USERNAME, USERNAME_CHARS

TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "a", "ul", "ol", "li", "blockquote", "code", "pre", "span"}
ATTRIBUTES = {"a": {"href", "title"}}
MENTION_ATTRIBUTES = {"a": {"href", "title", "data-username"}}
MENTION_CLASSES = {"a": {"mention"}}
URL_SCHEMES = {"http", "https", "mailto"}
DROP_WITH_CONTENT = {"script", "style"}
LINK_REL = "nofollow noopener"
SUMMARY_LENGTH = 200
# Tags whose edges separate words in plain text ("<p>a</p><p>b</p>" is "a b", not "ab").
BLOCK_TAGS = {"p", "br", "li", "ul", "ol", "blockquote", "pre", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
              "td", "th"}
NO_MENTIONS_INSIDE = {"a", "code", "pre"}

# "@name" not preceded by a word character, "@" or "/" (mail@host, paths).
MENTION = re.compile(rf"(?<![\w@/])@([{USERNAME_CHARS}]+)")


def sanitize_html(text: str) -> str:
    return nh3.clean(text or "", tags=TAGS, clean_content_tags=DROP_WITH_CONTENT, attributes=ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel=LINK_REL)


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in DROP_WITH_CONTENT:
            self.skipping += 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def plain_text(markup: str) -> str:
    """Text only: tags stripped, entities unescaped, whitespace collapsed.
    The result is NOT HTML: escape it before putting it into a page."""
    collector = _TextCollector()
    collector.feed(markup or "")
    collector.close()
    return " ".join("".join(collector.parts).split())


def summary(markup: str, limit: int = SUMMARY_LENGTH) -> str:
    """Plain text of at most ``limit`` characters, "…" included when cut."""
    text = plain_text(markup)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:  # a word boundary close enough to the end
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


class _MentionLinker(HTMLParser):
    """Re-emits sanitized HTML, linking mentions in text nodes outside links and code."""

    def __init__(self, resolve: Callable[[str], str | None]) -> None:
        super().__init__(convert_charrefs=True)
        self.resolve = resolve
        self.out: list[str] = []
        self.inside = 0  # depth within a, code, pre

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.inside += tag in NO_MENTIONS_INSIDE
        self.out.append(self.get_starttag_text() or "")  # already sanitized markup

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in NO_MENTIONS_INSIDE and self.inside:
            self.inside -= 1
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.out.append(html.escape(data, quote=False))
            return
        position = 0
        for match in MENTION.finditer(data):
            self.out.append(html.escape(data[position:match.start()], quote=False))
            self.out.append(self._mention(match.group(1)) or html.escape(match.group(0), quote=False))
            position = match.end()
        self.out.append(html.escape(data[position:], quote=False))

    def _mention(self, name: str) -> str | None:
        """The link for ``@name``; a sentence's trailing dots stay outside it."""
        for candidate in dict.fromkeys((name, name.rstrip("."))):
            url = self.resolve(candidate) if USERNAME.match(candidate) else None
            if url:
                escaped = html.escape(candidate, quote=True)
                return (f'<a href="{html.escape(url, quote=True)}" class="mention" data-username="{escaped}">'
                        f"@{escaped}</a>" + "." * (len(name) - len(candidate)))
        return None


def link_mentions(markup: str, resolve: Callable[[str], str | None]) -> str:
    """Turn ``@name`` in text (not inside links, code or attributes) into a mention
    link when ``resolve(name)`` gives a URL; unknown names stay plain text."""
    linker = _MentionLinker(resolve)
    linker.feed(sanitize_html(markup))  # whatever the caller passed, only safe markup is walked
    linker.close()
    return nh3.clean("".join(linker.out), tags=TAGS, clean_content_tags=DROP_WITH_CONTENT,
                     attributes=MENTION_ATTRIBUTES, allowed_classes=MENTION_CLASSES, url_schemes=URL_SCHEMES,
                     link_rel=LINK_REL)
