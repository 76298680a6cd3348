"""The authorization rules, one table per question."""
from __future__ import annotations

import pytest

from gateway.core import policy
from gateway.core.auth import User
from gateway.core.media_model import Media

OWNER = User(1, "owner")
OTHER = User(2, "other")
STAFF = User(3, "staff", is_staff=True)
FILES = User(4, "files", is_staff=True, permissions=("files",))
ADMIN = User(5, "admin", is_admin=True)
FILE = Media(id=1, user_id=1, hash_code="h", type="image", added_at=0.0, updated_at=0.0, key="media/1/a.jpg")
LINK = Media(id=2, user_id=1, hash_code="l", type="url", added_at=0.0, updated_at=0.0, url="https://x.example/")


@pytest.mark.parametrize("user, media, read, change", [
    (OWNER, FILE, True, True), (OWNER, LINK, True, True),
    (OTHER, FILE, False, False), (OTHER, LINK, False, False),
    (STAFF, FILE, True, False), (STAFF, LINK, True, False),
    (FILES, FILE, True, True), (FILES, LINK, True, False),  # the Files API manages files, not links
    (ADMIN, FILE, True, True), (ADMIN, LINK, True, True),
])
def test_media(user, media, read, change):
    assert policy.may_read_media(user, media) is read
    assert policy.may_change_media(user, media) is change
    assert policy.may_delete_media(user, media) is change


@pytest.mark.parametrize("user, files_api, curate", [
    (OWNER, False, False), (STAFF, False, True), (FILES, True, True), (ADMIN, True, True),
])
def test_roles(user, files_api, curate):
    assert policy.may_use_files_api(user) is files_api
    assert policy.may_curate_catalog(user) is curate


def test_statuses():
    status = {"author_id": OWNER.id}
    assert [policy.may_change_status(u, status) for u in (OWNER, OTHER, STAFF, ADMIN)] == [True, False, False, True]
    assert policy.may_attach_media(OWNER, FILE) and not policy.may_attach_media(ADMIN, FILE)
