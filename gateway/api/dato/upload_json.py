"""A media as a DatoCMS ``upload`` resource."""
from __future__ import annotations

import mimetypes
from typing import Any

from gateway.api.dato.jsonapi import resource
from gateway.api.media_json import content_url
from gateway.core import clock
from gateway.core.library import upload_path
from gateway.core.media_model import Media


def split_filename(filename: str) -> tuple[str, str]:
    """``photo.final.PNG`` -> (``photo.final``, ``.PNG``); a name without a dot has no extension."""
    stem, dot, extension = filename.rpartition(".")
    return (stem, dot + extension) if dot and stem else (filename, "")


def file_format(media: Media) -> str | None:
    """What DatoCMS calls ``format``: the extension, lower-case (``jpg``, ``pdf``), else from the MIME type."""
    extension = split_filename(media.title)[1].lstrip(".").lower()
    if extension:
        return extension
    guessed = mimetypes.guess_extension(media.mime_type or "") or ""
    return guessed.lstrip(".") or None


def upload_json(base: str, media: Media) -> dict[str, Any]:
    attributes = {
        "size": media.size,
        "width": media.image_width,
        "height": media.image_height,
        "path": upload_path(media),
        "basename": split_filename(media.title)[0],
        "filename": media.title,
        "url": content_url(base, media),
        "format": file_format(media),
        "author": media.author,
        "copyright": media.copyright,
        "notes": media.notes,
        "md5": media.md5,
        "duration": None,
        "frame_rate": None,
        "mux_playback_id": None,
        "mux_mp4_highest_res": None,
        "blurhash": media.blurhash,
        "thumbhash": media.thumbhash,
        "is_image": media.is_image,
        "created_at": clock.iso(media.added_at),
        "updated_at": clock.iso(media.updated_at),
        "mime_type": media.mime_type,
        "tags": list(media.tags),
        "smart_tags": [],
        "exif_info": media.exif,
        "colors": [dict(colour) for colour in media.colors],
        "default_field_metadata": media.default_field_metadata,
    }
    relationships = {"creator": {"data": {"type": "user", "id": str(media.user_id)}},
                     "upload_collection": {"data": None}}
    return resource("upload", str(media.id), attributes, relationships)
