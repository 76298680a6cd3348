"""The ``gateway`` command: ``serve``, ``users add|list|grant|token``, ``jobs list|retry``,
``uploads list`` (on the configured stores) and ``upload FILE…`` (a client of a running gateway)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from config.settings import Settings, SettingsError, load_settings
from gateway import backends, logs, serving, startup
from gateway.app import create_app
from gateway.core import clock
from gateway.core import jobs as job_ops
from gateway.core import uploads as upload_ops
from gateway.core.auth import Users
from gateway.core.errors import GatewayError
from gateway.core.jobs import JobQueue
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
    _ops_parsers(commands)
    _upload_parser(commands)
    return parser


def _ops_parsers(commands) -> None:
    jobs = commands.add_parser("jobs", help="inspect and retry background jobs")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listed = job_commands.add_parser("list", help="list jobs, most recently changed first")
    listed.add_argument("--failed", action="store_true", help="only failed jobs")
    listed.add_argument("--state", choices=job_ops.STATES)
    listed.add_argument("--limit", type=int, default=50)
    retry = job_commands.add_parser("retry", help="put a failed job back in the queue")
    retry.add_argument("id")
    uploads = commands.add_parser("uploads", help="inspect uploads in progress")
    upload_commands = uploads.add_subparsers(dest="uploads_command", required=True)
    listed = upload_commands.add_parser("list", help="list unfinished, unexpired uploads")
    listed.add_argument("--user", help="only this user's uploads")
    listed.add_argument("--limit", type=int, default=100)


def _upload_parser(commands) -> None:
    upload = commands.add_parser("upload", help="upload files to a running gateway (resumable)")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--url", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"),
                        help="the gateway's base URL (default: $GATEWAY_URL or http://127.0.0.1:8080)")
    upload.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN"),
                        help="API token (default: $GATEWAY_TOKEN)")
    upload.add_argument("--chunk-size", type=_size, default=8 * 1024 * 1024,
                        help="bytes per chunk, e.g. 8M, 200K (default 8M)")
    upload.add_argument("--parallel", type=int, default=3, help="files sent at once (default 3)")
    upload.add_argument("--retries", type=int, default=8, help="attempts per request (default 8)")


def _size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    number, unit = text.strip().upper().rstrip("IB") or "0", ""
    if number[-1:] in units:
        number, unit = number[:-1], number[-1]
    if not number.isascii() or not number.isdigit() or int(number) * units[unit] <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(number) * units[unit]


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


async def _with_documents(settings: Settings, action):
    documents = backends.document_store(settings)
    await documents.open()
    try:
        return await action(documents)
    finally:
        await documents.close()


def _jobs(settings: Settings, args) -> int:
    if args.jobs_command == "retry":
        job = asyncio.run(_with_documents(settings, lambda docs: job_ops.retry_failed(JobQueue(docs), args.id)))
        print(f"{job['id']}: queued again")
        return 0
    state = "failed" if args.failed else args.state
    total, found = asyncio.run(_with_documents(settings, lambda docs: job_ops.list_jobs(
        JobQueue(docs), state, limit=max(args.limit, 1))))
    for job in found:
        print(f"{job['id']}\t{job['status']}\t{job['attempts']}\t{clock.iso(job['updated_at'])}\t"
              f"{job.get('error') or '-'}")
    print(f"{len(found)} of {total} jobs{' (' + state + ')' if state else ''}", file=sys.stderr)
    return 0


def _uploads(settings: Settings, args) -> int:
    async def listing(documents):
        users = {u.id: u.username for u in await Users(documents).list()}
        user_id = None
        if args.user:
            user_id = next((uid for uid, name in users.items() if name == args.user), None)
            if user_id is None:
                raise GatewayError(404, "not_found", f"no user {args.user!r}")
        total, found = await upload_ops.in_progress(documents, user_id=user_id, limit=max(args.limit, 1))
        return total, [(s, users.get(s["user_id"], "?")) for s in found]

    total, found = asyncio.run(_with_documents(settings, listing))
    for session, owner in found:
        print(f"{session['id']}\t{owner}\t{session['filename']}\t{session['offset']}/{session['total']}\t"
              f"{clock.iso(session['expires_at'])}")
    print(f"{len(found)} of {total} uploads in progress", file=sys.stderr)
    return 0


def _upload(args) -> int:
    from gateway.client.run import upload_all
    from gateway.client.transfer import Options

    if not args.token:
        print("gateway: an API token is needed: --token or $GATEWAY_TOKEN", file=sys.stderr)
        return 2
    if args.parallel < 1 or args.retries < 1:
        print("gateway: --parallel and --retries must be at least 1", file=sys.stderr)
        return 2
    options = Options(url=args.url, token=args.token, chunk_size=args.chunk_size, attempts=args.retries)
    try:
        return asyncio.run(upload_all([Path(f) for f in args.files], options, parallel=args.parallel))
    except KeyboardInterrupt:
        print("gateway: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


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
    if args.command == "upload":  # a client: it needs no server settings
        return _upload(args)
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
        if args.command == "jobs":
            return _jobs(settings, args)
        if args.command == "uploads":
            return _uploads(settings, args)
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
