"""Users and API tokens.

A token is shown once at creation and stored only as its SHA-256 (tokens are 256
random bits, so a fast hash is enough; there is nothing to brute-force). Lookup is
by hash, and the found hash is compared again in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field

from gateway.core import clock
from gateway.core.errors import GatewayError, bad_request
from storage.documents.port import DocumentStore
from storage.errors import DuplicateKey

USERNAME_CHARS = "A-Za-z0-9_.@+-"  # Django's: also what a mention may name
USERNAME = re.compile(rf"^[{USERNAME_CHARS}]{{1,150}}$")
SCHEMES = ("bearer", "token")
PERMISSIONS = ("files",)  # what staff may be granted beyond their role


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_staff: bool = False
    is_admin: bool = False
    permissions: tuple[str, ...] = field(default_factory=tuple)
    full_name: str = ""

    @property
    def manages_files(self) -> bool:
        """The Files API is for admins and for staff granted the ``files`` permission."""
        return self.is_admin or (self.is_staff and "files" in self.permissions)

    @classmethod
    def from_doc(cls, doc: dict) -> "User":
        return cls(doc["id"], doc["username"], bool(doc.get("is_staff")), bool(doc.get("is_admin")),
                   tuple(doc.get("permissions", ())), doc.get("full_name", ""))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    """Users and their API tokens. A token that authenticated is remembered for
    ``cache_seconds`` (a chunk upload sends one request per 200 KiB), so a revoked
    token stops working on every instance within that time, at once on this one."""

    MAX_CACHED = 10_000

    def __init__(self, documents: DocumentStore, *, cache_seconds: float = 0.0) -> None:
        self.documents = documents
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, User]] = {}  # token hash -> (valid until, user)

    async def add(self, username: str, *, staff: bool = False, admin: bool = False) -> tuple[User, str]:
        if not USERNAME.match(username):
            raise bad_request("invalid_username", "username may hold letters, digits and @.+-_ (1-150)")
        token = secrets.token_urlsafe(32)
        doc = {"id": await self.documents.next_id("users"), "username": username, "is_staff": staff,
               "is_admin": admin, "permissions": [], "token_hash": hash_token(token), "created_at": clock.now()}
        try:
            await self.documents.insert("users", doc)
        except DuplicateKey:
            raise GatewayError(409, "user_exists", f"user {username!r} already exists") from None
        return User.from_doc(doc), token

    async def new_token(self, username: str) -> tuple[User, str]:
        """Replace a user's token (a lost or leaked one): the old token stops working at once."""
        found = await self.documents.find("users", {"username": username}, limit=1)
        if not found:
            raise GatewayError(404, "not_found", f"no user {username!r}")
        token = secrets.token_urlsafe(32)
        doc = await self.documents.update("users", found[0]["id"], {"token_hash": hash_token(token)})
        self._cache = {key: hit for key, hit in self._cache.items() if hit[1].id != found[0]["id"]}
        return User.from_doc(doc or found[0]), token

    async def grant(self, username: str, permission: str) -> User:
        if permission not in PERMISSIONS:
            raise bad_request("invalid_permission", f"permission must be one of {', '.join(PERMISSIONS)}")
        found = await self.documents.find("users", {"username": username}, limit=1)
        if not found:
            raise GatewayError(404, "not_found", f"no user {username!r}")
        doc = found[0]
        permissions = sorted({*doc.get("permissions", []), permission})
        return User.from_doc(await self.documents.update("users", doc["id"], {"permissions": permissions}) or doc)

    async def get(self, user_id: int) -> User | None:
        doc = await self.documents.get("users", user_id)
        return User.from_doc(doc) if doc else None

    async def list(self) -> list[User]:
        return [User.from_doc(d) for d in await self.documents.find("users", sort=[("id", 1)])]

    async def authenticate(self, authorization: str | None) -> User | None:
        """The user for an ``Authorization: Bearer|Token <token>`` header, or None."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in SCHEMES or not token:
            return None
        wanted = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(wanted)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.documents.find("users", {"token_hash": wanted}, limit=1)
        if not found or not hmac.compare_digest(found[0]["token_hash"], wanted):
            self._cache.pop(wanted, None)
            return None
        user = User.from_doc(found[0])
        if self.cache_seconds > 0:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[wanted] = (now + self.cache_seconds, user)
        return user
