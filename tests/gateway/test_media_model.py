"""The media model and its repository: processing state, stored shape, atomic changes."""
from __future__ import annotations

import asyncio
import dataclasses

from gateway.core.media_model import Media, StoredObject, Thumbnail
from gateway.core.media_store import MediaStore


def link(**fields) -> Media:
    return Media(id=7, user_id=1, hash_code="h7", type="url", added_at=100.0, updated_at=100.0,
                 url="https://example.com/", **fields)


def test_processing_is_done_only_when_no_job_is_owed():
    media = link().owing("link_preview").owing("thumbnails")
    assert (media.processing, media.processing_error) == ("pending", None)
    media = media.settled("thumbnails", thumbnails=(Thumbnail("t/7/64.jpg", 10, "e", "image/jpeg", 1, 64, 64, 40),))
    assert media.processing == "pending"  # the preview is still owed
    assert media.settled("link_preview", title="Page").processing == "done"


def test_a_failed_job_shows_until_that_job_is_owed_again():
    media = link().owing("link_preview").owing("thumbnails").failed("link_preview", "link_preview: timeout: slow")
    assert (media.processing, media.processing_error) == ("failed", "link_preview: timeout: slow")
    assert media.settled("thumbnails").processing == "failed"  # another job's success does not hide it
    assert media.owing("link_preview").processing == "pending"


def test_stored_shape_round_trips_and_names_derived_fields():
    media = link(image_copy=StoredObject("previews/7/a.jpg", 5, "etag", "image/jpeg"), choice_images=("a", "b"),
                 tags=("x",), default_field_metadata={"en": {"alt": "A", "title": None}},
                 dialect_data={"tus": {"filename": "a.jpg"}}).owing("thumbnails")
    doc = media.to_doc()
    assert (doc["processing"], doc["processing_error"], doc["image_copy_key"]) == ("pending", None, "previews/7/a.jpg")
    assert Media.from_doc(doc) == media


def test_documents_written_before_the_model_keep_their_state():
    old = {"id": 3, "user_id": 1, "hash_code": "h3", "type": "image", "added_at": 5.0, "key": "media/3/a.jpg",
           "processing": "failed", "processing_error": "thumbnails: corrupt_image: cut", "thumbnails": []}
    media = Media.from_doc(old)
    assert (media.processing, media.processing_error, media.updated_at) == ("failed", old["processing_error"], 5.0)
    pending = Media.from_doc({**old, "processing": "pending", "processing_error": None})
    assert pending.processing == "pending" and pending.settled("thumbnails").processing == "done"


async def test_concurrent_changes_are_all_kept(document_store):
    store = MediaStore(document_store)
    await store.insert(link())

    def tagged(n):
        return lambda media: dataclasses.replace(media, tags=(*media.tags, f"t{n}"))

    await asyncio.gather(*(store.change(7, tagged(n)) for n in range(8)))
    stored = await store.get(7)
    assert sorted(stored.tags) == [f"t{n}" for n in range(8)] and stored.version == 9
    assert await store.change(7, lambda media: None) is None  # declined: nothing written
    assert (await store.get(7)).version == 9
    assert await store.change(99, tagged(0)) is None  # missing
