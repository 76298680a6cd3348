"""Link, Vimeo and embed media, and preview images set from a URL.

``url``/``vimeo`` media get a preview from the page (OpenGraph, Twitter card,
large images, oEmbed discovered on the page or, for Vimeo, asked of the
configured provider endpoint). The first fetch runs within the request's time
budget; when it does not finish in time (or the site fails), the media is created
with ``oembed_preview_ready: false`` and ``processing: pending``, and a
``link_preview`` job completes it (``done``, or ``failed`` with the reason). An
invalid URL or a blocked address is refused at once, and nothing is stored.
Every fetch goes through the one guarded ``Fetcher``; pages and oEmbed replies are
parsed in an executor, never on the event loop.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import uuid
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from gateway.core import clock, policy, sniff
from gateway.core.auth import User
from gateway.core.errors import GatewayError, field_error, forbidden, not_found
from gateway.core.fetching import Fetch, FetchError
from gateway.core.jobs import Job
from gateway.core.link_preview import add_image, is_vimeo_url, load_json, parse_page, read_oembed
from gateway.core.media_model import EMBED, LINK_TYPES, Media, StoredObject
from gateway.core.media_store import MediaStore
from gateway.core.processing import LINK_PREVIEW, THUMBNAILS, Processing
from storage.objects.port import ObjectStore

log = logging.getLogger("gateway.links")

REFUSED_AT_ONCE = ("invalid_url", "blocked_address")
OEMBED_MAX = 1024 * 1024
JOB_FETCH_TIMEOUT = 30.0  # a background preview has no client waiting: give slow sites longer
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
                    "image/bmp": "bmp"}

IMAGE_FIELDS = ("image", "image_width", "image_height")


def fetch_refused(exc: FetchError, field: str) -> GatewayError:
    return field_error(field, str(exc), exc.code)


class LinkMedia:
    def __init__(self, store: MediaStore, objects: ObjectStore, fetcher: Fetch, processing: Processing, *,
                 vimeo_oembed_url: str, budget: float, max_page: int, max_image: int, max_pixels: int) -> None:
        self.store = store
        self.objects = objects
        self.fetcher = fetcher
        self.processing = processing
        self.vimeo_oembed_url = vimeo_oembed_url
        self.budget = budget
        self.max_page = max_page
        self.max_image = max_image
        self.max_pixels = max_pixels

    # creating

    async def create(self, user: User, body: dict[str, Any]) -> Media:
        kind = body.get("type")
        if kind == EMBED:
            return await self._create_embed(user, body)
        if kind not in LINK_TYPES:
            raise field_error("type", "Must be one of url, vimeo, embed (files use the chunk upload).", "invalid_type")
        url = body.get("url")
        if not isinstance(url, str) or not url.strip():
            raise field_error("url", "This field is required.", "required")
        url = url.strip()
        try:
            self.fetcher.check(url)
        except FetchError as exc:
            raise fetch_refused(exc, "url") from None
        if kind == "vimeo" and not is_vimeo_url(url):
            raise field_error("url", "Enter a vimeo.com URL.", "not_vimeo")
        media = await self._new(user, kind, url=url, title=url)
        try:
            preview = await asyncio.wait_for(self.preview(url, kind), self.budget)
        except FetchError as exc:
            if exc.code in REFUSED_AT_ONCE:
                raise fetch_refused(exc, "url") from None
            preview = None
            log.info("link preview deferred", extra={"url": url, "error": str(exc)})
        except asyncio.TimeoutError:
            preview = None
            log.info("link preview deferred", extra={"url": url, "error": "time budget spent"})
        if preview is not None:
            media = await self.store.insert(dataclasses.replace(media, **preview))
        else:  # the link_preview job owes the preview: say so until it has run
            media = await self.store.insert(media.owing(LINK_PREVIEW.name))
            await self.processing.start(media, LINK_PREVIEW)
        return media

    async def _create_embed(self, user: User, body: dict[str, Any]) -> Media:
        for name in ("embed_type", "embed_id"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise field_error(name, "This field is required.", "required")
        metadata = body.get("metadata") or {}
        if isinstance(metadata, str):
            try:
                metadata = load_json(metadata)  # bounded: deep nesting is a 400, not a RecursionError
            except ValueError:
                raise field_error("metadata", "Value must be valid JSON.") from None
        if not isinstance(metadata, dict):
            raise field_error("metadata", "Must be an object.")
        url = body.get("url") if isinstance(body.get("url"), str) else None
        media = await self._new(user, EMBED, url=url, title="")
        embed = {"id": await self.store.new_id("embeds"), "embed_type": body["embed_type"].strip()[:100],
                 "embed_id": body["embed_id"].strip()[:255], "url": url, "metadata": metadata}
        return await self.store.insert(dataclasses.replace(media, embed=embed))

    async def _new(self, user: User, kind: str, **fields: Any) -> Media:
        now = clock.now()
        return Media(id=await self.store.new_id(), user_id=user.id, hash_code=uuid.uuid4().hex, type=kind,
                     added_at=now, updated_at=now, **fields)

    # previews

    async def preview(self, url: str, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """Preview fields for a link, fetched through the guard. Vimeo is asked through
        its oEmbed endpoint only: the player page says less and weighs more."""
        if kind == "vimeo":
            found = parse_page("", url)
            endpoint, provider = f"{self.vimeo_oembed_url}?{urlencode({'url': url})}", "vimeo.com"
        else:
            page = await self.fetcher.fetch(url, max_bytes=self.max_page,
                                            accept="text/html,application/xhtml+xml,*/*", timeout=timeout)
            if page.content_type.startswith("image/"):
                found = parse_page("", page.url)
                add_image(found, page.url)
            else:
                found = await _off_loop(functools.partial(parse_page, page.body, page.url, encoding=page.charset))
            endpoint, provider = found.oembed_url, (urlsplit(page.url).hostname or "").removeprefix("www.")
        fields: dict[str, Any] = {
            "title": found.title or url, "description": found.description, "keywords": found.keywords,
            "oembed_type": None, "oembed_url": None, "oembed_width": None, "oembed_height": None,
            "oembed_duration": None, "oembed_html": None, "oembed_available": False, "oembed_preview_ready": True,
        }
        if endpoint:
            fields.update(await self._oembed(endpoint, provider, found, required=kind == "vimeo", timeout=timeout))
            fields["title"] = found.title or url
        found.images = [candidate for candidate in found.images if self._fetchable(candidate)]
        image = found.images[0] if found.images else None
        size = found.image_sizes.get(image) if image else None
        fields.update(choice_images=tuple(found.images), image=image, image_width=size[0] if size else None,
                      image_height=size[1] if size else None)
        return fields

    def _fetchable(self, url: str) -> bool:
        try:
            self.fetcher.check(url)
        except FetchError:
            return False  # e.g. an og:image on a private address: never offered
        return True

    async def _oembed(self, endpoint: str, provider: str, found, *, required: bool,
                      timeout: float | None) -> dict[str, Any]:
        """oEmbed fields; a failing endpoint only loses them, unless they are all we have."""
        try:
            reply = await self.fetcher.fetch(endpoint, max_bytes=OEMBED_MAX, accept="application/json",
                                             timeout=timeout)
            oembed = await _off_loop(read_oembed, reply.body, provider.removeprefix("www."))
        except (FetchError, ValueError) as exc:  # ValueError: not JSON, or nested too deep to read
            if required and isinstance(exc, FetchError):
                raise
            log.info("oembed unavailable", extra={"endpoint": endpoint, "error": str(exc)})
            return {}
        if oembed.thumbnail_url:
            add_image(found, oembed.thumbnail_url)
        found.title = found.title or oembed.title or ""
        found.description = found.description or oembed.description or ""
        return {"oembed_type": oembed.type, "oembed_url": oembed.url, "oembed_width": oembed.width,
                "oembed_height": oembed.height, "oembed_duration": oembed.duration,
                "oembed_html": oembed.html,
                "oembed_available": True}

    async def finish_preview(self, job: Job) -> dict[str, Any]:
        """The ``link_preview`` job: same preview, no request waiting on it."""
        media = await self.processing.current(job)
        if media is None:
            return {"skipped": "media gone or changed"}
        fields = await self.preview(media.url, media.type, timeout=JOB_FETCH_TIMEOUT)
        # The owner may have chosen an image meanwhile: keep it (read again at the write).
        settled = await self.processing.settle(job, lambda current: {
            k: v for k, v in fields.items() if not (current.image_source and k in IMAGE_FIELDS)})
        return {"title": fields["title"]} if settled else {"skipped": "media gone or changed"}

    # preview image

    async def set_image(self, user: User, media_id: int, image_url: Any, *, executor=None) -> Media:
        media = await self.store.get(media_id)
        if media is None:
            raise not_found("media")
        if not policy.may_change_media(user, media):
            raise forbidden("only the owner (or an admin) can change the preview image")
        if not media.is_link:
            raise field_error("image", "Only url and vimeo media have a preview image.", "not_a_link")
        if not isinstance(image_url, str) or not image_url.strip():
            raise field_error("image", "This field is required.", "required")
        try:
            fetched = await self.fetcher.fetch(image_url.strip(), max_bytes=self.max_image, accept="image/*")
        except FetchError as exc:
            raise fetch_refused(exc, "image") from None
        try:
            mime, width, height = await asyncio.get_running_loop().run_in_executor(
                executor, sniff.decoded_image, fetched.body, self.max_pixels)
        except sniff.NotAnImage as exc:
            raise field_error("image", str(exc), exc.reason) from None
        key = f"previews/{media_id}/{uuid.uuid4().hex}.{IMAGE_EXTENSIONS[mime]}"
        info = await self.objects.put(key, fetched.body, mime)
        copy = StoredObject(key=info.key, bytes=info.size, etag=info.etag, content_type=mime)
        replaced: list[Media] = []

        def chosen(current: Media) -> Media:
            replaced[:] = [current]
            return dataclasses.replace(current, image_copy=copy, image_source=image_url.strip(), image_width=width,
                                       image_height=height).owing(THUMBNAILS.name)

        updated = await self.store.change(media_id, chosen)
        if updated is None:  # deleted meanwhile: the copy has no media to belong to
            await self.objects.delete(info.key)
            raise not_found("media")
        old = replaced[0].image_copy
        if old is not None and old.key != info.key:
            await self.objects.delete(old.key)
        await self.processing.start(updated, THUMBNAILS, again=True)
        return updated


async def _off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """CPU-bound parsing in the default executor, so the event loop keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
