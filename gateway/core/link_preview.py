"""What a fetched page says about itself: title, description, images, oEmbed.

Parsing uses the standard library's tolerant HTML tokenizer; nothing of the page
is kept as markup. The only HTML that survives is an oEmbed player, rebuilt from
scratch as one ``<iframe>`` whose ``src`` is https on the provider's own domain,
with a fixed attribute allowlist.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

MIN_IMG_SIDE = 200  # <img> tags count as candidates only when they declare a large size
IFRAME_ATTRIBUTES = ("width", "height", "frameborder", "allow", "allowfullscreen", "title", "referrerpolicy")
OEMBED_TYPE = "application/json+oembed"


@dataclass
class PagePreview:
    title: str = ""
    description: str = ""
    keywords: str = ""
    images: list[str] = field(default_factory=list)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    oembed_url: str | None = None


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
    description: str | None = None


def _int(value: Any) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _absolute(base: str, url: str | None) -> str | None:
    if not url:
        return None
    resolved = urljoin(base, url.strip())
    return resolved if urlsplit(resolved).scheme in ("http", "https") else None


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title_parts: list[str] = []
        self.in_title = False
        self.oembed: str | None = None
        self.imgs: list[tuple[str, int | None, int | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"].strip())
        elif tag == "title":
            self.in_title = True
        elif tag == "link" and "alternate" in values.get("rel", "").lower().split() \
                and values.get("type", "").lower() == OEMBED_TYPE and self.oembed is None:
            self.oembed = values.get("href")
        elif tag == "img" and values.get("src"):
            self.imgs.append((values["src"], _int(values.get("width")), _int(values.get("height"))))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)


def parse_page(markup: bytes | str, base_url: str) -> PagePreview:
    text = markup.decode("utf-8", "replace") if isinstance(markup, bytes) else markup
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    meta = parser.meta
    preview = PagePreview(
        title=(meta.get("og:title") or meta.get("twitter:title") or " ".join("".join(parser.title_parts).split()))[:500],
        description=(meta.get("og:description") or meta.get("twitter:description") or meta.get("description", ""))[:2000],
        keywords=meta.get("keywords", "")[:1000],
        oembed_url=_absolute(base_url, parser.oembed),
    )
    og_image = _absolute(base_url, meta.get("og:image:secure_url") or meta.get("og:image"))
    if og_image:
        width, height = _int(meta.get("og:image:width")), _int(meta.get("og:image:height"))
        preview.images.append(og_image)
        if width and height:
            preview.image_sizes[og_image] = (width, height)
    for candidate in (meta.get("twitter:image"), meta.get("twitter:image:src")):
        add_image(preview, _absolute(base_url, candidate))
    for src, width, height in parser.imgs:
        if width and height and min(width, height) >= MIN_IMG_SIDE:
            add_image(preview, _absolute(base_url, src), (width, height))
    return preview


def add_image(preview: PagePreview, url: str | None, size: tuple[int, int] | None = None) -> None:
    if url and url not in preview.images:
        preview.images.append(url)
        if size:
            preview.image_sizes[url] = size


def parse_oembed(data: Any) -> OEmbed:
    if not isinstance(data, dict):
        return OEmbed()
    text = {k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("type", "url", "html", "thumbnail_url", "title", "description")}
    return OEmbed(width=_int(data.get("width")), height=_int(data.get("height")), duration=_int(data.get("duration")),
                  **text)


class _IframeFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.iframes: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "iframe":
            self.iframes.append({k.lower(): (v if v is not None else "") for k, v in attrs})


def on_domain(host: str, domain: str) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


def sanitize_oembed_html(markup: str | None, provider_domain: str) -> str | None:
    """One rebuilt ``<iframe>`` from the provider's own https domain, or None."""
    if not markup:
        return None
    finder = _IframeFinder()
    finder.feed(markup)
    finder.close()
    for attrs in finder.iframes:
        src = attrs.get("src", "").strip()
        parts = urlsplit(src)
        if parts.scheme != "https" or not parts.hostname or not on_domain(parts.hostname, provider_domain):
            continue
        kept = [f'src="{html.escape(src, quote=True)}"']
        for name in IFRAME_ATTRIBUTES:
            if name in attrs:
                value = attrs[name]
                kept.append(name if name == "allowfullscreen" and not value
                            else f'{name}="{html.escape(value, quote=True)}"')
        return f"<iframe {' '.join(kept)}></iframe>"
    return None


def is_vimeo_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname) and on_domain(parts.hostname, "vimeo.com")
