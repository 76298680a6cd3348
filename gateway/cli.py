"""The ``gateway`` command: ``serve`` and ``users add|list|grant|token``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys

from aiohttp import web

from config.settings import Settings, SettingsError, load_settings
from gateway import backends, logs, serving, startup
from gateway.app import create_app
from gateway.core.auth import Users
from gateway.core.errors import GatewayError
from storage.errors import StorageError

log = logging.getLogger("gateway.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Media storage gateway")
    parser.add_argument("--config", help="TOML settings file (environment variables override it)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", dest="serve_config", help=argparse.SUPPRESS)
    users = commands.add_parser("users", help="manage users and API tokens")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser("add", help="create a user and print its API token (shown once)")
    add.add_argument("name")
    add.add_argument("--staff", action="store_true")
    add.add_argument("--admin", action="store_true")
    user_commands.add_parser("list", help="list users")
    token = user_commands.add_parser("token", help="issue a new API token for a user and revoke the old one")
    token.add_argument("name")
    grant = user_commands.add_parser("grant", help="give a user a permission (e.g. files)")
    grant.add_argument("name")
    grant.add_argument("permission")
    return parser


async def _with_users(settings: Settings, action):
    documents = backends.document_store(settings)
    await documents.open()
    try:
        return await action(Users(documents))
    finally:
        await documents.close()


def _users(settings: Settings, args) -> int:
    if args.users_command == "add":
        user, token = asyncio.run(_with_users(settings, lambda users: users.add(
            args.name, staff=args.staff, admin=args.admin)))
        roles = [r for r, on in (("staff", user.is_staff), ("admin", user.is_admin)) if on]
        print(f"created user {user.username} (id {user.id}{', ' + ', '.join(roles) if roles else ''})")
        print("API token (shown once; send it as 'Authorization: Bearer <token>'):")
        print(token)
    elif args.users_command == "token":
        user, token = asyncio.run(_with_users(settings, lambda users: users.new_token(args.name)))
        print(f"new API token for {user.username} (the old one no longer works; shown once):")
        print(token)
    elif args.users_command == "grant":
        user = asyncio.run(_with_users(settings, lambda users: users.grant(args.name, args.permission)))
        print(f"{user.username}: {', '.join(user.permissions)}")
    else:
        for user in asyncio.run(_with_users(settings, lambda users: users.list())):
            roles = ",".join(r for r, on in (("staff", user.is_staff), ("admin", user.is_admin)) if on) or "-"
            print(f"{user.id}\t{user.username}\t{roles}\t{','.join(user.permissions) or '-'}")
    return 0


async def _until(stop: asyncio.Event, work) -> bool:
    """Run ``work`` unless ``stop`` is set first; True if it finished."""
    task, stopped = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()
    return True


async def _serve_on(settings: Settings, sock: socket.socket, max_connections: int, fd_limit: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not await _until(stop, startup.wait_for_backends(settings)):
        return
    runner = serving.runner(create_app(settings), settings, max_connections)
    await runner.setup()
    try:
        await web.SockSite(runner, sock, backlog=serving.BACKLOG).start()
        host, port = sock.getsockname()[:2]
        log.info("listening", extra={"host": host, "port": port, "object_store": settings.object_store,
                                     "document_store": settings.document_store, "max_connections": max_connections,
                                     "open_files_limit": fd_limit, "header_timeout": settings.header_timeout,
                                     "body_idle_timeout": settings.body_idle_timeout})
        await stop.wait()
    finally:
        await runner.cleanup()


def _serve(settings: Settings, args) -> int:
    fd_limit = serving.raise_fd_limit()
    try:
        max_connections = serving.connection_cap(settings.max_connections, fd_limit)
    except SettingsError as exc:
        print(f"gateway: invalid setting: {exc}", file=sys.stderr)
        return 2
    if max_connections < 3000:
        log.warning("low open-files limit: few connections can be served", extra={
            "open_files_limit": fd_limit, "max_connections": max_connections})
    try:
        sock = serving.listen(args.host, args.port)
    except serving.ListenError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(_serve_on(settings, sock, max_connections, fd_limit))
    except startup.BackendsNotReady as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "serve_config", None) or args.config)
    except SettingsError as exc:
        print(f"gateway: invalid setting: {exc}", file=sys.stderr)
        return 2
    limiter = logs.configure(settings.log_level, repeat_limit=settings.log_repeat_limit,
                             repeat_window=settings.log_repeat_window)
    try:
        if args.command == "users":
            return _users(settings, args)
        return _serve(settings, args)
    except GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"gateway: storage error: {exc}", file=sys.stderr)
        return 1
    finally:
        limiter.flush()


if __name__ == "__main__":
    sys.exit(main())
