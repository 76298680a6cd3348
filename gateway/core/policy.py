"""Who may do what: every authorization rule of the gateway, in one place.

Each function answers one question with a bool and raises nothing; callers turn
a "no" into the error their dialect uses (403, or 404 where a dialect hides what
the caller may not see).

- Media: owners read, change and delete their own. Staff and admins read all;
  admins change and delete all; Files API managers (admins, and staff granted
  ``files``) change and delete stored files, whoever uploaded them.
- Statuses: the author, or an admin, changes or deletes one; the media a status
  lists must belong to its author.
- Categories and tags: staff and admins curate them; anyone signed in reads.
"""
from __future__ import annotations

from typing import Any

from gateway.core.auth import User
from gateway.core.media_model import Media


def may_use_files_api(user: User) -> bool:
    return user.manages_files


def may_read_media(user: User, media: Media) -> bool:
    return media.user_id == user.id or user.is_staff or user.is_admin


def may_change_media(user: User, media: Media) -> bool:
    return media.user_id == user.id or user.is_admin or (media.is_file and user.manages_files)


def may_delete_media(user: User, media: Media) -> bool:
    return may_change_media(user, media)


def may_attach_media(author: User, media: Media) -> bool:
    """A status lists only media its author owns."""
    return media.user_id == author.id


def may_change_status(user: User, status: dict[str, Any]) -> bool:
    return status["author_id"] == user.id or user.is_admin


def may_curate_catalog(user: User) -> bool:
    return user.is_staff or user.is_admin
