"""What a fetched page says about itself: title, description, images, oEmbed.

Pages are parsed with BeautifulSoup on the standard library's tolerant
"html.parser" backend, keeping only the few tags we read. Nothing of the page is
kept as markup: the only HTML that leaves this module is an oEmbed player,
rebuilt from scratch as one ``<iframe>`` whose ``src`` is https on the provider's
own domain, with a fixed attribute allowlist and escaped values.

Decisions:
- Images, in order: each ``og:image`` (its ``og:image:secure_url`` preferred when
  given, since it names the same picture over https; its width/height kept), then
  ``twitter:image``, then ``<img>`` tags that DECLARE both width and height of at
  least 200 px. An ``<img>`` without sizes is skipped: most are icons, spacers or
  tracking pixels, and we cannot tell without fetching them.
- Every URL is made absolute against the page (or its ``<base href>``); only
  http(s) URLs are kept, each once, at most ``MAX_CHOICE_IMAGES`` of them.
- Work is bounded whatever the page: the parser sees at most
  ``MAX_PARSE_BYTES`` (the metadata we read sits near the top; BeautifulSoup
  holds the GIL, so even in a worker thread an unbounded parse slows the event
  loop), at most ``MAX_TAGS`` tags of each kind are read, and oEmbed JSON is
  refused when deeper than ``MAX_JSON_DEPTH`` (``json.loads`` would raise
  RecursionError) or when a number does not fit 64 bits (``int()`` also refuses
  more than 4300 digits). These functions are
  CPU work: callers run them in an executor.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, SoupStrainer, Tag, UnicodeDammit

MIN_IMG_SIDE = 200
OEMBED_TYPES = ("application/json+oembed", "text/json+oembed")  # the second is a common legacy spelling
IFRAME_ATTRIBUTES = ("width", "height", "frameborder", "allow", "allowfullscreen", "title", "referrerpolicy")
# Permissions a player may ask for; camera, microphone, geolocation, payment... are dropped.
IFRAME_PERMISSIONS = frozenset({"autoplay", "fullscreen", "picture-in-picture", "encrypted-media", "clipboard-write",
                                "accelerometer", "gyroscope", "web-share"})
REFERRER_POLICIES = frozenset({"no-referrer", "origin", "strict-origin", "strict-origin-when-cross-origin",
                               "no-referrer-when-downgrade", "same-origin", "origin-when-cross-origin"})
SIZE = re.compile(r"^\s*(\d{1,5})(?:\.\d+)?\s*(px)?\s*$", re.IGNORECASE)
IFRAME_SIZE = re.compile(r"^\d{1,5}%?$")
LIMITS = {"title": 500, "description": 2000, "keywords": 1000}
PAGE_TAGS = SoupStrainer(["meta", "title", "link", "img", "base"])  # the rest is never read
MAX_PARSE_BYTES = 1024 * 1024  # about 0.3 s of parsing; a 4 MB page of tags took seconds
MAX_TAGS = 2000  # meta, link and img tags read from one page, each
MAX_CHOICE_IMAGES = 100
MAX_SIZE = 2**31 - 1  # widths, heights, durations: anything larger is nonsense (and overflows stores)
MAX_JSON_DEPTH = 64  # oEmbed is flat; nesting beyond this is an attack
MAX_PLAYER_HTML = 64 * 1024  # an oEmbed player is one short <iframe>
JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
JSON_BRACKET = re.compile(r"[\[\]{}]")


@dataclass
class PagePreview:
    title: str = ""
    description: str = ""
    keywords: str = ""
    images: list[str] = field(default_factory=list)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # only when the page declares them
    oembed_url: str | None = None
    seen: set[str] = field(default_factory=set, repr=False, compare=False)  # images offered, for O(1) dedup


@dataclass
class OEmbed:
    type: str | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    html: str | None = None
    thumbnail_url: str | None = None
    title: str | None = None
    provider_name: str | None = None
    description: str | None = None


def _int(value: Any) -> int | None:
    """A non-negative size: 640, "640", "640px", 640.0; None for anything else
    (infinity, NaN, or more than ``MAX_SIZE``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if math.isfinite(value) and 0 <= value <= MAX_SIZE else None
    match = SIZE.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def absolute_url(base: str, url: Any) -> str | None:
    """``url`` made absolute against ``base``; None unless it is http(s) with a host."""
    if not isinstance(url, str) or not url.strip():
        return None
    resolved = urljoin(base, url.strip())
    parts = urlsplit(resolved)
    return resolved if parts.scheme in ("http", "https") and parts.hostname else None


def add_image(preview: PagePreview, url: str | None, size: tuple[int, int] | None = None) -> None:
    """Append a candidate image once, up to ``MAX_CHOICE_IMAGES``; non-http(s) URLs are ignored."""
    if len(preview.images) >= MAX_CHOICE_IMAGES or not url or url in preview.seen:
        return
    if absolute_url(url, url) == url:
        preview.seen.add(url)
        preview.images.append(url)
        if size:
            preview.image_sizes[url] = size


def bounded_markup(markup: bytes | str, limit: int = MAX_PARSE_BYTES) -> bytes | str:
    """The first ``limit`` bytes (or characters) of a page, cut before the last tag
    that would be split. No ``<`` byte occurs inside a character in UTF-8 or the
    common multi-byte encodings, so the cut never splits a character either."""
    if len(markup) <= limit:
        return markup
    cut = markup.rfind(b"<" if isinstance(markup, bytes) else "<", 0, limit)
    return markup[:cut if cut > 0 else limit]


def _meta(soup: BeautifulSoup) -> list[tuple[str, str]]:
    """(property-or-name lowercased, content) for the first ``MAX_TAGS`` meta tags, in page order."""
    found = []
    for tag in soup.find_all("meta", limit=MAX_TAGS):
        key = tag.get("property") or tag.get("name")
        if isinstance(key, str) and isinstance(tag.get("content"), str):
            found.append((key.strip().lower(), tag["content"].strip()))
    return found


def _og_images(meta: list[tuple[str, str]]) -> list[dict[str, str]]:
    """OpenGraph image arrays: each og:image starts an image, its og:image:* follow it."""
    images: list[dict[str, str]] = []
    for key, value in meta:
        if key in ("og:image", "og:image:url"):
            images.append({"url": value})
        elif key.startswith("og:image:") and images:
            images[-1].setdefault(key.removeprefix("og:image:"), value)
    return images


def _base(soup: BeautifulSoup, page_url: str) -> str:
    tag = soup.find("base", href=True)
    return (absolute_url(page_url, tag["href"]) if isinstance(tag, Tag) else None) or page_url


def _oembed_link(soup: BeautifulSoup, base: str) -> str | None:
    for tag in soup.find_all("link", href=True, limit=MAX_TAGS):
        rel = [r.lower() for r in tag.get("rel") or []]
        if "alternate" in rel and str(tag.get("type", "")).strip().lower() in OEMBED_TYPES:
            return absolute_url(base, tag["href"])
    return None


def parse_page(markup: bytes | str, base_url: str, *, encoding: str | None = None) -> PagePreview:
    """Preview fields of a page. Bytes are decoded with ``encoding`` (the HTTP
    charset) when given, else as the page declares, else as UTF-8 if they are valid
    UTF-8, else sniffed (a statistical guess, which misreads short UTF-8 text as
    Thai or Cyrillic). Only the first ``MAX_PARSE_BYTES`` are read."""
    markup = bounded_markup(markup or "")
    if isinstance(markup, bytes):
        markup = UnicodeDammit(markup, [encoding] if encoding else [], is_html=True,
                               user_encodings=["utf-8"]).unicode_markup or ""
    soup = BeautifulSoup(markup, "html.parser", parse_only=PAGE_TAGS)
    meta = _meta(soup)
    first = {}
    for key, value in meta:
        first.setdefault(key, value)
    title_tag = soup.find("title")
    base = _base(soup, base_url)
    preview = PagePreview(
        title=_text(first.get("og:title") or first.get("twitter:title")
                    or (title_tag.get_text() if title_tag else ""))[:LIMITS["title"]],
        description=_text(first.get("og:description") or first.get("twitter:description")
                          or first.get("description"))[:LIMITS["description"]],
        keywords=_text(first.get("keywords"))[:LIMITS["keywords"]],
        oembed_url=_oembed_link(soup, base),
    )
    for image in _og_images(meta):
        if len(preview.images) >= MAX_CHOICE_IMAGES:
            break
        width, height = _int(image.get("width")), _int(image.get("height"))
        url = absolute_url(base, image.get("secure_url")) or absolute_url(base, image["url"])
        add_image(preview, url, (width, height) if width and height else None)
    for key in ("twitter:image", "twitter:image:src"):
        add_image(preview, absolute_url(base, first.get(key)))
    for tag in soup.find_all("img", src=True, limit=MAX_TAGS):
        width, height = _int(tag.get("width")), _int(tag.get("height"))
        if width and height and min(width, height) >= MIN_IMG_SIDE:
            add_image(preview, absolute_url(base, tag["src"]), (width, height))
    return preview


def parse_oembed(data: Any) -> OEmbed:
    """The oEmbed fields we use; values of the wrong type are dropped, not coerced."""
    if not isinstance(data, dict):
        return OEmbed()
    text = {key: data[key] if isinstance(data.get(key), str) else None
            for key in ("type", "url", "html", "thumbnail_url", "title", "provider_name", "description")}
    for key in ("title", "description"):
        text[key] = text[key][:LIMITS[key]] if text[key] else text[key]
    return OEmbed(width=_int(data.get("width")), height=_int(data.get("height")),
                  duration=_int(data.get("duration")), **text)


def _json_int(digits: str) -> int:
    if len(digits) > 20 or not -2**63 <= (value := int(digits)) < 2**63:  # what every store can hold
        raise ValueError("a JSON number is out of range")
    return value


def _json_float(digits: str) -> float:
    if len(digits) > 400 or not math.isfinite(value := float(digits)):
        raise ValueError("a JSON number is out of range")
    return value


def _json_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict ``json.loads`` that cannot blow the stack: ValueError for nesting
    deeper than ``max_depth`` (checked before parsing: deep nesting makes
    ``json.loads`` raise RecursionError), for integers outside 64 bits or too long
    for ``int()``, and for NaN/Infinity. The caller bounds the size."""
    text = body.decode(json.detect_encoding(body), "replace") if isinstance(body, bytes) else body
    if text.count("[") + text.count("{") > max_depth:  # only then can it be too deep
        depth = 0
        for bracket in JSON_BRACKET.finditer(JSON_STRING.sub("", text)):
            depth += 1 if bracket.group() in "[{" else -1
            if depth > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth}")
    return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)


def read_oembed(body: bytes, provider_domain: str) -> OEmbed:
    """An oEmbed reply: bounded JSON, the fields we use, the player rebuilt (or
    None). ValueError when the body is not acceptable JSON."""
    oembed = parse_oembed(load_json(body))
    player = oembed.html if oembed.html and len(oembed.html) <= MAX_PLAYER_HTML else None
    return dataclasses.replace(oembed, html=sanitize_oembed_html(player, provider_domain))


def on_domain(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (player.vimeo.com on vimeo.com)."""
    host, domain = host.lower().rstrip("."), domain.lower().rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _player_src(src: Any, provider_domain: str) -> str | None:
    """The iframe src rebuilt from its parsed parts, if https on the provider's domain."""
    if not isinstance(src, str) or "\\" in src:
        return None
    try:
        parts = urlsplit(src.strip())
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username is not None or not parts.hostname:
        return None
    return urlunsplit(parts) if on_domain(parts.hostname, provider_domain) else None


def _iframe_attribute(name: str, value: Any) -> str | None:
    """One allowlisted attribute, validated and escaped; None drops it."""
    value = " ".join(value) if isinstance(value, list) else str(value or "")
    if name == "allowfullscreen":
        return "allowfullscreen"  # a boolean attribute: its value never matters
    if name in ("width", "height", "frameborder") and not IFRAME_SIZE.match(value.strip()):
        return None
    if name == "allow":
        value = "; ".join(p for p in (part.strip() for part in value.split(";")) if p.split(" ")[0] in
                          IFRAME_PERMISSIONS)
    if name == "referrerpolicy" and value.strip().lower() not in REFERRER_POLICIES:
        return None
    return f'{name}="{html.escape(value.strip(), quote=True)}"' if value.strip() else None


def sanitize_oembed_html(markup: str | None, provider_domain: str) -> str | None:
    """One rebuilt ``<iframe>`` from the provider's own https domain, or None."""
    if not markup or not isinstance(markup, str):
        return None
    for iframe in BeautifulSoup(markup, "html.parser").find_all("iframe"):
        src = _player_src(iframe.get("src"), provider_domain)
        if src is None:
            continue
        kept = [f'src="{html.escape(src, quote=True)}"']
        for name in IFRAME_ATTRIBUTES:
            if iframe.has_attr(name) and (attribute := _iframe_attribute(name, iframe[name])):
                kept.append(attribute)
        return f"<iframe {' '.join(kept)}></iframe>"
    return None


def is_vimeo_url(url: str) -> bool:
    """An http(s) URL on vimeo.com or a subdomain, without credentials (which some
    parsers read as the host: ``https://evil.example\\@vimeo.com``)."""
    if not isinstance(url, str) or "\\" in url:
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and "@" not in parts.netloc and bool(parts.hostname)
            and on_domain(parts.hostname, "vimeo.com"))
