"""The ``gateway`` command: ``serve`` and ``users add|list``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from config.settings import Settings, SettingsError, load_settings
from gateway import backends, logs
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
    elif args.users_command == "grant":
        user = asyncio.run(_with_users(settings, lambda users: users.grant(args.name, args.permission)))
        print(f"{user.username}: {', '.join(user.permissions)}")
    else:
        for user in asyncio.run(_with_users(settings, lambda users: users.list())):
            roles = ",".join(r for r, on in (("staff", user.is_staff), ("admin", user.is_admin)) if on) or "-"
            print(f"{user.id}\t{user.username}\t{roles}\t{','.join(user.permissions) or '-'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "serve_config", None) or args.config)
    except SettingsError as exc:
        print(f"gateway: invalid setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        if args.command == "users":
            return _users(settings, args)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        web.run_app(create_app(settings), host=args.host, port=args.port, access_log=None,
                    shutdown_timeout=30, print=lambda *_: log.info("listening", extra={
                        "host": args.host, "port": args.port, "object_store": settings.object_store,
                        "document_store": settings.document_store}))
        return 0
    except GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"gateway: storage error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
