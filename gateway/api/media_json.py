"""The SelfCommunity Media v2 JSON shape, for file, link (url/vimeo) and embed media."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.core import clock
from gateway.core.media_model import Media

LINK_FIELDS = ("keywords", "oembed_type", "oembed_url", "oembed_width", "oembed_height",
               "oembed_duration", "oembed_html", "oembed_available", "oembed_preview_ready", "image_source")


def content_url(base: str, media: Media) -> str:
    return f"{base}/content/{media.hash_code}/{quote(media.title)}"


def thumbnails_json(base: str, media: Media) -> list[dict[str, Any]]:
    return [{"id": t.id, "f": f"{base}/thumbnails/{media.hash_code}/{t.size}", "size": t.size,
             "width": t.width, "height": t.height} for t in media.thumbnails]


def media_json(media: Media, base: str) -> dict[str, Any]:
    embed = media.embed or {}
    body = {
        "id": media.id,
        "hash_code": media.hash_code,
        "added_at": clock.iso(media.added_at),
        "type": media.type,
        "title": media.title,
        "description": media.description,
        "url": media.url,
        "image": media.image,
        "image_width": media.image_width,
        "image_height": media.image_height,
        "order": media.order,
        "embed": media.embed,
        "embed_type": embed.get("embed_type"),
        "embed_id": embed.get("embed_id"),
        "thumbnails": thumbnails_json(base, media),
        "processing": media.processing,
        "processing_error": media.processing_error,
    }
    if media.is_file:
        url = content_url(base, media)
        body.update(url=url, image=url if media.is_image else None, size=media.size, mime_type=media.mime_type,
                    md5=media.md5)
    if media.is_link:
        body.update({name: getattr(media, name) for name in LINK_FIELDS}, choice_images=list(media.choice_images))
        if media.image_copy:  # the preview image the owner chose, served by the gateway
            body["image"] = f"{base}/previews/{media.hash_code}"
    return body
