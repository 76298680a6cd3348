"""What a DatoCMS client may send about uploads, checked: attributes and list queries.

Every failure is a 422 ``INVALID_FIELD`` naming the attribute (or ``INVALID_FILTER``
naming the query parameter), and every input that grows work has a cap: the
number of tags, locales and ids, the length of texts, the size of ``custom_data``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from gateway.api.dato.jsonapi import DatoError, invalid_field
from gateway.core.names import visible_text

MAX_TEXT = 2000  # author, copyright, notes, alt, title
MAX_TAG, MAX_TAGS = 64, 100
MAX_LOCALES = 50
MAX_CUSTOM_DATA = 10_000  # bytes of JSON per locale
MAX_BASENAME = 180  # leaves room for an extension in the gateway's 200-byte file names
MAX_IDS = 500
DEFAULT_PAGE, MAX_PAGE = 30, 500
NUMBER = re.compile(r"[0-9]{1,18}")  # ids and counts: ASCII digits only, and always within 64 bits
LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
LOCALE_KEYS = ("alt", "title", "custom_data", "focal_point", "poster_time")
READ_ONLY = frozenset({"size", "width", "height", "basename", "filename", "url", "format", "md5", "duration",
                       "frame_rate", "blurhash", "thumbhash", "mux_playback_id", "mux_mp4_highest_res", "is_image",
                       "created_at", "updated_at", "mime_type", "smart_tags", "exif_info", "colors"})
CREATABLE = ("path", "author", "copyright", "notes", "tags", "default_field_metadata")
UPDATABLE = (*CREATABLE, "basename")


def upload_attributes(attributes: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Checked values of the attributes present; read-only ones are ignored, unknown ones refused."""
    unknown = set(attributes) - set(allowed) - READ_ONLY
    if unknown:
        raise invalid_field(sorted(unknown)[0], "VALIDATION_INVALID", "this attribute does not exist or is read-only")
    out: dict[str, Any] = {}
    for name in ("author", "copyright", "notes"):
        if name in attributes:
            out[name] = _text(name, attributes[name])
    if "tags" in attributes:
        out["tags"] = tag_list("tags", attributes["tags"])
    if "default_field_metadata" in attributes:
        out["default_field_metadata"] = _metadata(attributes["default_field_metadata"])
    if "path" in attributes and "path" in allowed:
        if not isinstance(attributes["path"], str) or not attributes["path"]:
            raise invalid_field("path", "VALIDATION_REQUIRED", "path must be an upload request's id")
        out["path"] = attributes["path"]
    if "basename" in attributes and "basename" in allowed:
        out["basename"] = _basename(attributes["basename"])
    return out


def _text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise invalid_field(field, "VALIDATION_INVALID", f"{field} must be null or a string of at most {MAX_TEXT} "
                                                         "characters")
    return value


def tag_list(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise invalid_field(field, "VALIDATION_INVALID", f"{field} must be a list of at most {MAX_TAGS} strings")
    tags = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
            raise invalid_field(field, "VALIDATION_INVALID", f"each tag is a non-empty string of at most {MAX_TAG} "
                                                             "characters")
        tags.append(tag.strip())
    return tags


def _metadata(value: Any) -> dict[str, dict[str, Any]]:
    field = "default_field_metadata"
    if not isinstance(value, dict) or len(value) > MAX_LOCALES:
        raise invalid_field(field, "VALIDATION_INVALID", "must be an object of locales")
    out = {}
    for locale, values in value.items():
        if not LOCALE.match(locale) or not isinstance(values, dict):
            raise invalid_field(field, "VALIDATION_INVALID", f"{locale!r} is not a locale with an object of values")
        unknown = set(values) - set(LOCALE_KEYS)
        if unknown:
            raise invalid_field(field, "VALIDATION_INVALID", f"unknown key {sorted(unknown)[0]!r} in {locale}")
        checked: dict[str, Any] = {}
        for name in ("alt", "title"):
            if name in values:
                checked[name] = _text(f"{field}.{locale}.{name}", values[name])
        if "custom_data" in values:
            checked["custom_data"] = _custom_data(f"{field}.{locale}.custom_data", values["custom_data"])
        if "focal_point" in values:
            checked["focal_point"] = _focal_point(f"{field}.{locale}.focal_point", values["focal_point"])
        if "poster_time" in values:
            checked["poster_time"] = _number_or_null(f"{field}.{locale}.poster_time", values["poster_time"])
        out[locale] = checked
    return out


def _custom_data(field: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_CUSTOM_DATA:
        raise invalid_field(field, "VALIDATION_INVALID", f"must be an object of at most {MAX_CUSTOM_DATA} bytes")
    return value


def _focal_point(field: str, value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"x", "y"}:
        raise invalid_field(field, "VALIDATION_INVALID", 'must be null or {"x": 0..1, "y": 0..1}')
    point = {}
    for axis in ("x", "y"):
        coordinate = _number_or_null(f"{field}.{axis}", value[axis])
        if coordinate is None or not 0 <= coordinate <= 1:
            raise invalid_field(field, "VALIDATION_INVALID", f"{axis} must be a number from 0 to 1")
        point[axis] = float(coordinate)
    return point


def _number_or_null(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid_field(field, "VALIDATION_INVALID", "must be a number")
    return value


def _basename(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_field("basename", "VALIDATION_INVALID", "basename must be a string")
    cleaned = visible_text(value).strip()
    if not cleaned or "/" in cleaned or "\\" in cleaned or len(cleaned.encode()) > MAX_BASENAME:
        raise invalid_field("basename", "VALIDATION_INVALID",
                            f"basename must be 1 to {MAX_BASENAME} bytes, without slashes")
    return cleaned


def relationship_ids(relationships: dict[str, Any], name: str) -> list[int]:
    """``{"uploads": {"data": [{"type": "upload", "id": "7"}, ...]}}`` -> [7, ...]."""
    data = (relationships.get(name) or {}).get("data") if isinstance(relationships.get(name), dict) else None
    if not isinstance(data, list) or not data or len(data) > MAX_IDS:
        raise invalid_field(name, "VALIDATION_REQUIRED", f"relationships.{name}.data must list 1 to {MAX_IDS} items")
    return [_upload_id(name, item.get("id") if isinstance(item, dict) else None) for item in data]


def _upload_id(field: str, raw: Any) -> int:
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not NUMBER.fullmatch(text):
        raise invalid_field(field, "VALIDATION_INVALID", f"{raw!r} is not an upload id")
    return int(text)


def path_upload_id(request: web.Request) -> int:
    """The ``{id}`` of a route: anything but an upload id is simply not found."""
    raw = request.match_info["id"]
    if not NUMBER.fullmatch(raw):
        raise DatoError(404, "NOT_FOUND", {"id": raw[:40]})
    return int(raw)


# list queries

ORDER_FIELDS = {"_created_at": "added_at", "created_at": "added_at", "_updated_at": "updated_at",
                "updated_at": "updated_at", "size": "size", "filename": "title", "basename": "title",
                "width": "image_width", "height": "image_height", "id": "id"}
TYPES = {"image": {"image_width": {"$ne": None}}, "video": {"kind": "video"}, "audio": {"kind": "audio"},
         "pdf_document": {"mime_type": "application/pdf"}}
FIELD_FILTERS = {"md5": ("md5", ("eq",)), "size": ("size", ("eq", "gt", "gte", "lt", "lte")),
                 "author": ("author", ("eq",)), "copyright": ("copyright", ("eq",)), "notes": ("notes", ("eq",)),
                 "filename": ("title", ("eq",)), "tags": ("tags", ("contains",)), "type": ("", ("eq", "neq"))}
OPERATORS = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte", "contains": "$has"}
FILTER_KEY = re.compile(r"^filter\[fields\]\[([a-z0-9_]+)\]\[([a-z]+)\]$")


def page_of(request: web.Request) -> tuple[int, int]:
    """``page[limit]`` (default 30, at most 500) and ``page[offset]``."""
    return (_count(request, "page[limit]", DEFAULT_PAGE, most=MAX_PAGE, least=1),
            _count(request, "page[offset]", 0, most=10 ** 18))


def _count(request: web.Request, name: str, default: int, *, most: int, least: int = 0) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    if not NUMBER.fullmatch(raw) or not least <= int(raw) <= most:
        raise DatoError(422, "INVALID_FIELD", {"field": name, "code": "VALIDATION_INVALID",
                                               "message": f"{name} must be an integer from {least} to {most}"})
    return int(raw)


def order_of(request: web.Request) -> list[tuple[str, int]]:
    """``order_by=_created_at_DESC,size_ASC`` -> [("added_at", -1), ("size", 1)]; newest first by default."""
    raw = request.query.get("order_by", "")
    if not raw:
        return [("added_at", -1)]
    order = []
    for part in raw.split(",")[:5]:
        name, _, direction = part.strip().rpartition("_")
        if name not in ORDER_FIELDS or direction not in ("ASC", "DESC"):
            raise _bad_filter("order_by", f"{part!r} is not FIELD_ASC or FIELD_DESC with one of "
                                          f"{', '.join(ORDER_FIELDS)}")
        order.append((ORDER_FIELDS[name], 1 if direction == "ASC" else -1))
    return order


def filters_of(request: web.Request) -> dict[str, Any]:
    """The media-document filter for ``filter[ids]``, ``filter[type]``, ``filter[query]`` and
    ``filter[fields][FIELD][OP]``."""
    where: dict[str, Any] = {}
    query = request.query
    if "filter[ids]" in query:
        ids = [part for part in query["filter[ids]"].split(",") if part][:MAX_IDS + 1]
        if len(ids) > MAX_IDS:
            raise _bad_filter("filter[ids]", f"at most {MAX_IDS} ids")
        where["id"] = {"$in": [_upload_id("filter[ids]", part) for part in ids]}
    if "filter[type]" in query:
        where.update(_type_filter("filter[type]", query["filter[type]"], "eq"))
    if query.get("filter[query]", "").strip():
        where["search_text"] = {"$contains": query["filter[query]"].strip().lower()[:MAX_TEXT]}
    for key, value in query.items():
        if not key.startswith("filter[fields]"):
            continue
        match = FILTER_KEY.match(key)
        if not match or match[1] not in FIELD_FILTERS or match[2] not in FIELD_FILTERS[match[1]][1]:
            raise _bad_filter(key, f"filterable fields: {', '.join(FIELD_FILTERS)}")
        field, operator = match[1], match[2]
        if field == "type":
            where.update(_type_filter(key, value, operator))
            continue
        column = FIELD_FILTERS[field][0]
        operand: Any = value
        if field == "size":
            operand = _upload_id(key, value)
        if field == "md5":
            operand = value.lower()
        where[column] = {OPERATORS[operator]: operand} if operator in OPERATORS else operand
    return where


def _type_filter(key: str, value: str, operator: str) -> dict[str, Any]:
    if value not in TYPES:
        raise _bad_filter(key, f"type is one of {', '.join(TYPES)}")
    ((column, condition),) = TYPES[value].items()
    if operator == "neq":  # "not an image" is "no width"; "not a video" is "any other kind"
        condition = None if isinstance(condition, dict) else {"$ne": condition}
    return {column: condition}


def _bad_filter(name: str, message: str) -> DatoError:
    return DatoError(422, "INVALID_FILTER", {"field": name, "message": message})
