"""A live gateway on a loopback socket, in a thread with its own event loop, that
cannot reach anything but loopback.

Fuzzers (schemathesis) are synchronous clients in another process; the gateway
serves them from a thread through the production server (``gateway.serving``).
Its event loop refuses every DNS lookup and every connection to a non-loopback
address before a packet is sent, and records what it refused: generated link
URLs (``POST /api/v2/media/`` with ``type: url``, ``PUT`` of a preview image)
then fail like an unreachable site, and the tests can show that nothing left.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from typing import Any, Awaitable, Callable

from aiohttp import web

from config.settings import Settings
from gateway import serving
from gateway.app import create_app


def is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it would be a DNS query


class LoopbackOnlyLoop(asyncio.SelectorEventLoop):
    """An event loop whose outbound traffic can only go to loopback."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[tuple[str, str]] = []

    async def getaddrinfo(self, host, port, *args, **kwargs):
        if not is_loopback(host):
            self.refused.append(("dns", str(host)))
            raise socket.gaierror(socket.EAI_NONAME, f"no DNS in this test ({host})")
        return await super().getaddrinfo(host, port, *args, **kwargs)

    async def sock_connect(self, sock, address):
        if not is_loopback(address[0]):
            self.refused.append(("connect", str(address[0])))
            raise ConnectionRefusedError(f"no traffic beyond loopback in this test ({address[0]})")
        return await super().sock_connect(sock, address)

    async def create_connection(self, protocol_factory, host=None, port=None, *args, **kwargs):
        if host is not None and not is_loopback(host):
            self.refused.append(("connect", str(host)))
            raise ConnectionRefusedError(f"no traffic beyond loopback in this test ({host})")
        return await super().create_connection(protocol_factory, host, port, *args, **kwargs)


class LiveGateway:
    """``with LiveGateway(settings) as live: live.url ...``; ``live.run(coro_fn)`` runs
    ``coro_fn(app)`` on the gateway's loop (to seed users and data)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = LoopbackOnlyLoop()
        self.app: web.Application | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, work: Callable[[web.Application], Awaitable[Any]], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(work(self.app), self.loop).result(timeout)

    async def _start(self) -> None:
        self.app = create_app(self.settings)
        self._runner = serving.runner(self.app, self.settings, max_connections=256)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> "LiveGateway":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    def __exit__(self, *exc) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
