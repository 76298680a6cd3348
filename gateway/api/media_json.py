"""The SelfCommunity Media v2 JSON shape."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.core import clock


def content_url(base: str, media: dict[str, Any]) -> str:
    return f"{base}/content/{media['hash_code']}/{quote(media['title'])}"


def thumbnails_json(base: str, media: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": t["id"], "f": f"{base}/thumbnails/{media['hash_code']}/{t['size']}", "size": t["size"],
             "width": t["width"], "height": t["height"]} for t in media.get("thumbnails") or []]


def media_json(media: dict[str, Any], base: str) -> dict[str, Any]:
    url = content_url(base, media)
    is_image = media["image_width"] is not None
    return {
        "id": media["id"],
        "hash_code": media["hash_code"],
        "added_at": clock.iso(media["added_at"]),
        "type": media["type"],
        "title": media["title"],
        "description": media.get("description", ""),
        "url": url,
        "image": url if is_image else None,
        "image_width": media["image_width"],
        "image_height": media["image_height"],
        "order": media.get("order", 0),
        "embed": None,
        "embed_type": None,
        "embed_id": None,
        "size": media["size"],
        "mime_type": media["mime_type"],
        "md5": media["md5"],
        "thumbnails": thumbnails_json(base, media),
        "processing": media.get("processing", "done"),
        "processing_error": media.get("processing_error"),
    }
