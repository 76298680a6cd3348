"""The media model: one typed ``Media`` for every dialect, and its processing state.

A media is a stored file (``key`` set: chunk uploads, the Files API, later DatoCMS
uploads and tus), a link (``url``/``vimeo``, with a preview) or an ``embed``. The
stored document is this dataclass flattened (``to_doc``/``from_doc``); only
``gateway.core.media_store`` reads and writes it, and each dialect maps ``Media``
to its own JSON.

Processing is derived, never written by hand: ``owed`` lists the job kinds whose
results the media still waits for, ``job_errors`` the kinds that gave up. A media
is ``failed`` while any job failed, ``pending`` while any job is owed, else
``done``; so one job finishing (thumbnails of a preview image) cannot call the
media done while another (the link preview) is still owed.

Fields planned for the coming dialects live here too, so those issues do not
reopen the model: DatoCMS's author, copyright, notes, tags, per-locale
``default_field_metadata`` (alt, title, custom_data, focal_point), blurhash,
thumbhash, colors and EXIF; and ``dialect_data``, one slot per dialect keyed by
its name (tus keeps its ``Upload-Metadata`` pairs under ``"tus"``), which no other
dialect reads or writes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Wire type -> stored type. The SelfCommunity web client sends "eimage" for editor images.
FILE_TYPES = {"image": "image", "document": "document", "eimage": "editor_image", "editor_image": "editor_image"}
IMAGE_TYPES = frozenset({"image", "editor_image"})
LINK_TYPES = ("url", "vimeo")
EMBED = "embed"

PENDING, DONE, FAILED = "pending", "done", "failed"
LEGACY = "legacy"  # stands for the jobs of a document written before the model; the next result settles it


@dataclass(frozen=True)
class StoredObject:
    """A derived object the gateway serves: a thumbnail, or the preview image copied for a link."""
    key: str
    bytes: int
    etag: str
    content_type: str


@dataclass(frozen=True)
class Thumbnail(StoredObject):
    id: int = 0
    size: int = 0  # the bounding square asked for; width/height are what fits in it
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Media:
    id: int
    user_id: int
    hash_code: str
    type: str  # image, document, editor_image, url, vimeo or embed
    added_at: float
    updated_at: float
    title: str = ""
    description: str = ""
    order: int = 0
    # a stored file
    key: str | None = None
    upload_id: str | None = None
    size: int | None = None
    md5: str | None = None
    mime_type: str | None = None
    kind: str | None = None  # image, video, audio, document, text or other, by content
    image_width: int | None = None  # as shown: EXIF orientation applied
    image_height: int | None = None
    mode: str | None = None
    thumbnails: tuple[Thumbnail, ...] = ()
    # a link: its preview, and the image its owner chose (copied into the object store)
    url: str | None = None
    image: str | None = None
    image_source: str | None = None
    image_copy: StoredObject | None = None
    keywords: str = ""
    choice_images: tuple[str, ...] = ()
    oembed_type: str | None = None
    oembed_url: str | None = None
    oembed_width: int | None = None
    oembed_height: int | None = None
    oembed_duration: int | None = None
    oembed_html: str | None = None
    oembed_available: bool = False
    oembed_preview_ready: bool = False
    # an embed: {"id", "embed_type", "embed_id", "url", "metadata"}
    embed: dict[str, Any] | None = None
    # processing (see the module docstring)
    owed: tuple[str, ...] = ()
    job_errors: dict[str, str] = field(default_factory=dict)
    # planned for the DatoCMS dialect
    author: str | None = None
    copyright: str | None = None
    notes: str | None = None
    tags: tuple[str, ...] = ()
    default_field_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # locale -> alt, title, ...
    blurhash: str | None = None
    thumbhash: str | None = None
    colors: tuple[dict[str, int], ...] = ()  # dominant colours as {"red", "green", "blue", "alpha"}
    exif: dict[str, Any] = field(default_factory=dict)
    # one slot per dialect (e.g. "tus": its upload metadata), owned by that dialect alone
    dialect_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0  # bumped by every write; the repository's compare-and-set token

    # what it is

    @property
    def is_file(self) -> bool:
        return self.key is not None

    @property
    def is_link(self) -> bool:
        return self.type in LINK_TYPES

    @property
    def is_image(self) -> bool:
        """Measured as a raster image (its size is known)."""
        return self.image_width is not None

    @property
    def image_source_key(self) -> str | None:
        """Where the bytes thumbnails are made from live: the file, or a link's copied preview image."""
        return self.key if self.key else (self.image_copy.key if self.image_copy else None)

    # processing

    @property
    def processing(self) -> str:
        return FAILED if self.job_errors else PENDING if self.owed else DONE

    @property
    def processing_error(self) -> str | None:
        return next(iter(self.job_errors.values()), None)

    def owing(self, job: str, /) -> "Media":
        """The media waiting for a (new) run of the ``job`` kind; that kind's old failure is forgotten."""
        errors = {k: v for k, v in self.job_errors.items() if k != job}
        owed = self.owed if job in self.owed else (*self.owed, job)
        return dataclasses.replace(self, owed=owed, job_errors=errors)

    def settled(self, job: str, /, **changes: Any) -> "Media":
        """The ``job`` kind finished with ``changes``."""
        errors = {k: v for k, v in self.job_errors.items() if k not in (job, LEGACY)}
        owed = tuple(k for k in self.owed if k not in (job, LEGACY))
        return dataclasses.replace(self, **changes, owed=owed, job_errors=errors)

    def failed(self, job: str, error: str, /) -> "Media":
        """The ``job`` kind gave up; ``error`` is shown as the processing error."""
        owed = tuple(k for k in self.owed if k not in (job, LEGACY))
        return dataclasses.replace(self, owed=owed, job_errors={**self.job_errors, job: error[:500]})

    # storage

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        # Derived, stored for people reading the database (and for queries); never read back.
        doc.update(processing=self.processing, processing_error=self.processing_error,
                   image_copy_key=self.image_copy.key if self.image_copy else None, search_text=self.search_text)
        return doc

    @property
    def search_text(self) -> str:
        """What a text search looks in, lower-cased: the name, the DatoCMS details, alt texts and titles."""
        described = [value for meta in self.default_field_metadata.values() for name, value in meta.items()
                     if name in ("alt", "title") and isinstance(value, str)]
        parts = [self.title, self.description, self.author, self.copyright, self.notes, *self.tags, *described]
        return "\n".join(part for part in parts if part).lower()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Media":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {name: value for name, value in doc.items() if name in known}
        values["thumbnails"] = tuple(Thumbnail(**t) for t in doc.get("thumbnails") or ())
        copy = doc.get("image_copy")
        values["image_copy"] = StoredObject(**copy) if copy else None
        for name in ("choice_images", "tags", "colors", "owed"):
            values[name] = tuple(doc.get(name) or ())
        values.setdefault("updated_at", doc["added_at"])
        if "owed" not in doc and "job_errors" not in doc:  # written before the model: keep what it said
            values["owed"] = (LEGACY,) if doc.get("processing") == PENDING else ()
            values["job_errors"] = ({LEGACY: doc.get("processing_error") or "failed"}
                                    if doc.get("processing") == FAILED else {})
        return cls(**{name: value for name, value in values.items() if value is not None or name in _NULLABLE})


_NULLABLE = frozenset(f.name for f in dataclasses.fields(Media) if f.default is None)
