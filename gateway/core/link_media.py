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
import logging
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from gateway.core import clock, sniff
from gateway.core.auth import User
from gateway.core.errors import GatewayError, field_error, forbidden, not_found
from gateway.core.jobs import JobQueue
from gateway.core.link_preview import add_image, is_vimeo_url, load_json, parse_page, read_oembed
from gateway.outbound import FetchError, Fetcher
from storage.documents.port import DocumentStore
from storage.objects.port import ObjectStore

log = logging.getLogger("gateway.links")

LINK_TYPES = ("url", "vimeo")
REFUSED_AT_ONCE = ("invalid_url", "blocked_address")
OEMBED_MAX = 1024 * 1024
JOB_FETCH_TIMEOUT = 30.0  # a background preview has no client waiting: give slow sites longer
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
                    "image/bmp": "bmp"}

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def fetch_refused(exc: FetchError, field: str) -> GatewayError:
    return field_error(field, str(exc), exc.code)


class LinkMedia:
    def __init__(self, documents: DocumentStore, objects: ObjectStore, fetcher: Fetcher, jobs: JobQueue, emit: Emit,
                 *, vimeo_oembed_url: str, budget: float, max_page: int, max_image: int, max_pixels: int) -> None:
        self.documents = documents
        self.objects = objects
        self.fetcher = fetcher
        self.jobs = jobs
        self.emit = emit
        self.vimeo_oembed_url = vimeo_oembed_url
        self.budget = budget
        self.max_page = max_page
        self.max_image = max_image
        self.max_pixels = max_pixels

    # creating

    async def create(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("type")
        if kind == "embed":
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
        media = await self._new(user, kind, url=url, oembed_preview_ready=False, oembed_available=False,
                                choice_images=[], keywords="", title=url, image_source=None)
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
            media.update(preview)
        else:  # the link_preview job owes the preview: say so until it has run
            media.update(processing="pending", processing_error=None)
        await self.documents.insert("media", media)
        if preview is None:
            await self.jobs.enqueue("link_preview", media["id"], {"url": url})
        return media

    async def _create_embed(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
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
        embed = {"id": await self.documents.next_id("embeds"), "embed_type": body["embed_type"].strip()[:100],
                 "embed_id": body["embed_id"].strip()[:255], "url": url, "metadata": metadata}
        media = await self._new(user, "embed", url=url, embed=embed, title="")
        await self.documents.insert("media", media)
        return media

    async def _new(self, user: User, kind: str, **fields: Any) -> dict[str, Any]:
        now = clock.now()
        return {"id": await self.documents.next_id("media"), "user_id": user.id, "hash_code": uuid.uuid4().hex,
                "added_at": now, "updated_at": now, "type": kind, "description": "", "order": 0, "key": None,
                "image": None, "image_width": None, "image_height": None, "thumbnails": [], "processing": "done",
                **fields}

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
                found = await _off_loop(parse_page, page.body, page.url)
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
        fields.update(choice_images=found.images, image=image, image_width=size[0] if size else None,
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

    async def finish_preview(self, media_id: int, url: str) -> dict[str, Any]:
        """The ``link_preview`` job: same preview, no request waiting on it."""
        media = await self.documents.get("media", media_id)
        if media is None or media.get("url") != url:
            return {"skipped": "media gone or changed"}
        fields = await self.preview(url, media["type"], timeout=JOB_FETCH_TIMEOUT)
        if media.get("image_source"):  # the owner already chose an image: keep it
            fields = {k: v for k, v in fields.items() if k not in ("image", "image_width", "image_height")}
        if not media.get("image_copy_key"):  # else the copy's thumbnails job owns the processing state
            fields.update(processing="done", processing_error=None)
        await self.documents.update("media", media_id, {**fields, "updated_at": clock.now()}, expect={"url": url})
        return {"title": fields["title"]}

    async def preview_failed(self, media_id: int, url: str, error: str) -> None:
        """The ``link_preview`` job gave up: show why instead of staying pending."""
        await self.documents.update("media", media_id, {"processing": "failed", "processing_error": error,
                                                        "updated_at": clock.now()}, expect={"url": url})

    # preview image

    async def set_image(self, user: User, media_id: int, image_url: Any, *, executor=None) -> dict[str, Any]:
        media = await self.documents.get("media", media_id)
        if media is None:
            raise not_found("media")
        if media["user_id"] != user.id:
            raise forbidden("only the creator can change the preview image")
        if media["type"] not in LINK_TYPES:
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
        copy = {"key": info.key, "bytes": info.size, "etag": info.etag, "content_type": mime}
        updated = await self.documents.update("media", media_id, {
            "image_copy": copy, "image_copy_key": info.key, "image_source": image_url.strip(),
            "image_width": width, "image_height": height, "processing": "pending", "updated_at": clock.now()})
        if media.get("image_copy_key"):
            await self.objects.delete(media["image_copy_key"])
        await self.emit("preview.image_set", updated)
        return updated


async def _off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """CPU-bound parsing in the default executor, so the event loop keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
