"""The SelfCommunity Media v2 JSON shape, for file, link (url/vimeo) and embed media."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.core import clock

LINK_FIELDS = ("keywords", "choice_images", "oembed_type", "oembed_url", "oembed_width", "oembed_height",
               "oembed_duration", "oembed_html", "oembed_available", "oembed_preview_ready", "image_source")


def content_url(base: str, media: dict[str, Any]) -> str:
    return f"{base}/content/{media['hash_code']}/{quote(media['title'])}"


def thumbnails_json(base: str, media: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": t["id"], "f": f"{base}/thumbnails/{media['hash_code']}/{t['size']}", "size": t["size"],
             "width": t["width"], "height": t["height"]} for t in media.get("thumbnails") or []]


def media_json(media: dict[str, Any], base: str) -> dict[str, Any]:
    body = {
        "id": media["id"],
        "hash_code": media["hash_code"],
        "added_at": clock.iso(media["added_at"]),
        "type": media["type"],
        "title": media.get("title", ""),
        "description": media.get("description", ""),
        "url": media.get("url"),
        "image": media.get("image"),
        "image_width": media.get("image_width"),
        "image_height": media.get("image_height"),
        "order": media.get("order", 0),
        "embed": media.get("embed"),
        "embed_type": (media.get("embed") or {}).get("embed_type"),
        "embed_id": (media.get("embed") or {}).get("embed_id"),
        "thumbnails": thumbnails_json(base, media),
        "processing": media.get("processing", "done"),
        "processing_error": media.get("processing_error"),
    }
    if media.get("key"):  # a stored file
        url = content_url(base, media)
        body.update(url=url, image=url if media.get("image_width") is not None else None, size=media["size"],
                    mime_type=media["mime_type"], md5=media["md5"])
    if media["type"] in ("url", "vimeo"):
        body.update({name: media.get(name) for name in LINK_FIELDS})
        if media.get("image_copy"):  # the preview image the owner chose, served by the gateway
            body["image"] = f"{base}/previews/{media['hash_code']}"
    return body
