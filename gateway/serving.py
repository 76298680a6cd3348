"""The HTTP server around the app: the limits aiohttp does not enforce by itself.

aiohttp holds every connection it accepts until the client goes away, so slow or
idle clients can take every file descriptor and starve everyone (issue 8, A5).
Three guards, all in the protocol layer so every handler benefits:

- **Headers in time.** aiohttp (>= 3.14.5) starts its keep-alive timer when a
  connection is made and closes a connection still waiting for a complete request
  when it fires; ``keepalive_timeout=header_timeout`` makes that timer the header
  timeout: the headers of a request must arrive within it of connecting or of the
  previous response, however slowly they trickle.
- **Bodies keep moving.** A request body that sends nothing for ``body_idle_timeout``
  seconds while the server is ready to read it is cut: the handler's next read
  raises ``BodyIdleTimeout`` (a ``ConnectionResetError``, what a client that went
  away produces) and the connection is closed. Time the server itself is not
  reading (flow control paused the transport) does not count.
- **A connection cap.** Past ``max_connections`` a new connection gets a 503 and is
  closed at once, so the process keeps file descriptors for its stores, files and
  the connections it serves (health checks included).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import weakref

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from config.settings import Settings, SettingsError

log = logging.getLogger("gateway.serving")

# Descriptors kept back from client connections: store connection pools (S3 opens up
# to 50), SQLite, spooled uploads, thumbnails, the listening socket, logs.
FD_RESERVE = 1024
AUTO_MAX_CONNECTIONS = 10_000
BACKLOG = 1024

_REFUSAL_BODY = b'{"code": "too_many_connections", "detail": "the server is at its connection limit"}'
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


class BodyIdleTimeout(ConnectionResetError):
    """The client stopped sending its request body; treated like a client that went away."""


def raise_fd_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):  # a kernel cap (nr_open) below the hard limit: keep what we have
        return soft
    return wanted


def connection_cap(setting: int, fd_limit: int) -> int:
    """The connection cap for this process: the setting, or derived from the fd limit when it is 0.

    A quarter of a small limit (all of ``FD_RESERVE`` from 4096 up) stays for everything else.
    """
    room = fd_limit - min(FD_RESERVE, fd_limit // 4)
    if setting == 0:
        return min(AUTO_MAX_CONNECTIONS, room)
    if setting > room:
        raise SettingsError(f"GATEWAY_MAX_CONNECTIONS: {setting} does not fit the open-files limit {fd_limit} "
                            f"(some are kept for stores and files); use at most {room} "
                            "or raise the limit (ulimit -Hn)")
    return setting


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol, plus what the body-idle clock needs to know."""

    def __init__(self, manager: "GuardedServer", **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self.body: StreamReader | None = None  # the body of the request being handled
        self.last_bytes = 0.0
        self.flow_paused = False

    def data_received(self, data: bytes) -> None:
        self.last_bytes = self._loop.time()
        super().data_received(data)

    def pause_reading(self) -> None:
        self.flow_paused = True
        super().pause_reading()

    def resume_reading(self, *args, **kwargs) -> None:
        self.flow_paused = False
        self.last_bytes = self._loop.time()  # the server was not reading: that time is not the client's
        super().resume_reading(*args, **kwargs)

    def request_started(self, body: StreamReader) -> None:
        self.body, self.last_bytes = body, self._loop.time()

    def request_finished(self) -> None:
        self.body = None

    def body_idle_for(self, now: float) -> float:
        """Seconds the current body has sent nothing while the server was ready for it (0: not waiting)."""
        if self.body is None or self.flow_paused or self.body.is_eof() or self.transport is None:
            return 0.0
        return now - self.last_bytes

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Malformed HTTP (a bad request line, a header over the size limit) is the client's
        fault: one info line and a JSON 4xx, not aiohttp's traceback and text/plain."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        log.info("malformed http request", extra={"status": status, "error": str(exc or message)[:200],
                                                  "remote": request.remote})
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent on this connection")
        response = web.json_response({"code": "malformed_http", "detail": f"malformed HTTP request: "
                                      f"{getattr(exc, 'message', None) or message or 'bad request'}"[:300]},
                                     status=status)
        response.force_close()
        return response

    def cut_body(self, idle_timeout: float) -> None:
        if self.body is not None:
            self.body.set_exception(BodyIdleTimeout(f"request body sent nothing for {idle_timeout:g} s"))
        self.force_close()


class _Refused(asyncio.Protocol):
    """A connection over the cap: a 503 and close, before it can hold a descriptor."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class GuardedServer(Server):
    """aiohttp's low-level server with a connection cap and one clock for idle bodies."""

    def __init__(self, handler, *, max_connections: int, body_idle_timeout: float, **kwargs) -> None:
        super().__init__(self._tracked(handler), **kwargs)
        factory = self.request_factory

        def request_factory(message, payload, protocol, writer, task):
            if isinstance(protocol, GuardedHandler):
                protocol.request_started(payload)
            return factory(message, payload, protocol, writer, task)

        self.request_factory = request_factory
        self.max_connections = max_connections
        self.body_idle_timeout = body_idle_timeout
        self.refused = 0
        # Protocols made for accepted sockets whose connection_made has not run yet: a burst
        # of accepts creates many before any is counted in _connections, and the cap must
        # hold for them too. Weak, so one whose transport never came up is forgotten.
        self._opening: weakref.WeakSet = weakref.WeakSet()
        self._clock = self._loop.create_task(self._watch_bodies())

    @staticmethod
    def _tracked(handler):
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handler(request)
            finally:
                if isinstance(request.protocol, GuardedHandler):
                    request.protocol.request_finished()
        return handle

    def __call__(self) -> asyncio.BaseProtocol:  # type: ignore[override]
        if len(self._connections) + len(self._opening) >= self.max_connections:
            self.refused += 1
            log.warning("connection refused: at the connection cap", extra={"max_connections": self.max_connections})
            return _Refused()
        handler = GuardedHandler(self, loop=self._loop, **self._kwargs)
        self._opening.add(handler)
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._opening.discard(handler)
        super().connection_made(handler, transport)

    async def _watch_bodies(self) -> None:
        # One clock for all connections (cheaper than a timer per connection reset on every packet).
        tick = max(0.05, min(1.0, self.body_idle_timeout / 4))
        while True:
            await asyncio.sleep(tick)
            now, cut = self._loop.time(), 0
            for conn in list(self._connections):
                if isinstance(conn, GuardedHandler) and conn.body_idle_for(now) > self.body_idle_timeout:
                    conn.cut_body(self.body_idle_timeout)
                    cut += 1
            if cut:
                log.warning("cut off idle request bodies", extra={"connections": cut,
                                                                  "body_idle_timeout": self.body_idle_timeout})

    async def shutdown(self, timeout: float | None = None) -> None:
        self._clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._clock
        await super().shutdown(timeout)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``GuardedServer``."""

    def __init__(self, app: web.Application, *, max_connections: int, body_idle_timeout: float, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._guard = {"max_connections": max_connections, "body_idle_timeout": body_idle_timeout}

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=asyncio.get_running_loop(),
                             **self._guard, **plain._kwargs)


def runner(app: web.Application, settings: Settings, max_connections: int) -> GuardedAppRunner:
    return GuardedAppRunner(app, max_connections=max_connections, body_idle_timeout=settings.body_idle_timeout,
                            keepalive_timeout=settings.header_timeout, access_log=None, shutdown_timeout=30)


class ListenError(RuntimeError):
    pass


def listen(host: str, port: int) -> socket.socket:
    """Bind before anything else, so a taken port is one clear error at once, not after start-up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}") from None
    sock.setblocking(False)
    return sock
