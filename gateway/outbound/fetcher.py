"""The one guarded HTTP client for every server-side fetch (pages, oEmbed, images).

Every URL (the first and each redirect target) is checked: scheme, credentials,
literal addresses in any notation, judged on the host as aiohttp will use it
(the guard parses with yarl and the request is made with that very parsed URL,
so ``http://１２７.０.０.１/`` is judged as the ``127.0.0.1`` it connects to).
Host names are resolved by ``GuardedResolver``, which checks every address DNS
returns and hands aiohttp only checked ones, so the connection goes to the
address that was checked (no second lookup to rebind). Redirects are followed by
hand, at most ``max_redirects``; the body is read in pieces and cut off at
``max_bytes`` after decompression; one time budget covers the whole fetch;
proxies from the environment are ignored.
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from gateway.outbound.guard import FetchError, check_url, is_blocked, literal_address

Lookup = Callable[[str, int], Awaitable[list[str]]]
REDIRECTS = (301, 302, 303, 307, 308)


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class FetchResult:
    url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses names resolving to any blocked address."""

    def __init__(self, lookup: Lookup, allow: frozenset[tuple[str, int]]) -> None:
        self.lookup = lookup
        self.allow = allow

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        try:
            addresses = await self.lookup(host, port)
        except OSError as exc:
            raise FetchError("fetch_failed", f"cannot resolve {host}: {exc}") from None
        allowed = (host.lower(), port) in self.allow
        checked = []
        for text in addresses:
            address = literal_address(text.split("%", 1)[0])
            if address is None or (is_blocked(address) and not allowed):
                raise FetchError("blocked_address", f"{host} resolves to a blocked address")
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            checked.append({"hostname": host, "host": str(address), "port": port, "family": family,
                            "proto": 0, "flags": socket.AI_NUMERICHOST})
        if not checked:
            raise FetchError("fetch_failed", f"{host} has no address")
        return checked

    async def close(self) -> None:
        pass


class Fetcher:
    def __init__(self, *, allow: frozenset[tuple[str, int]] = frozenset(), lookup: Lookup | None = None,
                 timeout: float = 5.0, max_redirects: int = 5,
                 user_agent: str = "MediaGateway/1.0 (+link preview)") -> None:
        self.allow = allow
        self.lookup = lookup or system_lookup
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def check(self, url: str | URL) -> URL:
        """The URL to request, as the guard parsed it; FetchError when its scheme or
        literal address is not allowed (no I/O). Names are judged by the resolver."""
        target = check_url(url)
        if target.address is not None and is_blocked(target.address) and (
                (target.host, target.port) not in self.allow):
            # The same answer whatever listens on that port: nothing was sent there.
            raise FetchError("blocked_address", f"{target.host} is a blocked address")
        return target.url

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.lookup, self.allow), use_dns_cache=False,
                                             limit=20)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  headers={"User-Agent": self.user_agent})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def fetch(self, url: str, *, max_bytes: int, accept: str | None = None,
                    timeout: float | None = None) -> FetchResult:
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await self._follow(url, max_bytes, accept)
        except TimeoutError:
            raise FetchError("timeout", f"fetching {url} took too long") from None
        except (aiohttp.ClientError, ValueError) as exc:  # FetchError from the resolver passes through
            raise FetchError("fetch_failed", f"fetch failed: {exc}") from None

    async def _follow(self, url: str | URL, max_bytes: int, accept: str | None) -> FetchResult:
        headers = {"Accept": accept} if accept else {}
        for _ in range(self.max_redirects + 1):
            target = self.check(url)  # request exactly the URL that was judged
            async with self._client().get(target, headers=headers, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in REDIRECTS and location:
                    url = urljoin(str(target), location)
                    continue
                if not 200 <= response.status < 300:
                    raise FetchError("fetch_failed", f"{url} answered {response.status}", status=response.status)
                if (response.content_length or 0) > max_bytes:
                    raise FetchError("too_large", f"{url} is larger than {max_bytes} bytes")
                body = await _read_capped(response, max_bytes)
                return FetchResult(str(response.url), response.status, response.content_type.lower(),
                                   response.charset, body)
        raise FetchError("too_many_redirects", f"more than {self.max_redirects} redirects")


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """Read the (decompressed) body, refusing it once it passes ``max_bytes``."""
    body = bytearray()
    async for piece in response.content.iter_chunked(64 * 1024):
        body += piece
        if len(body) > max_bytes:
            raise FetchError("too_large", f"{response.url} is larger than {max_bytes} bytes")
    return bytes(body)
