"""The ``gateway`` command as an operator runs it: real processes, real sockets."""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from gateway import serving
from gateway.core.auth import Users
from storage.documents.sqlite import SqliteDocumentStore
from tests.gateway.processes import free_port, gateway_env, run


def test_users_add_prints_the_token_last_and_list_shows_roles(tmp_path):
    env = gateway_env(tmp_path)
    added = run(["users", "add", "alice", "--staff"], env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    assert run(["users", "add", "bob", "--admin"], env).returncode == 0
    duplicate = run(["users", "add", "alice"], env)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    listed = run(["users", "list"], env)
    assert "alice\tstaff" in listed.stdout and "bob\tadmin" in listed.stdout
    assert token not in listed.stdout
    assert token.encode() not in (tmp_path / "var" / "gateway.sqlite3").read_bytes()
    granted = run(["users", "grant", "alice", "files"], env)
    assert granted.returncode == 0 and "alice: files" in granted.stdout
    assert "alice\tstaff\tfiles" in run(["users", "list"], env).stdout
    assert run(["users", "grant", "alice", "root"], env).returncode == 1
    assert run(["users", "grant", "nobody", "files"], env).returncode == 1


def test_bad_setting_stops_start_up_naming_it(tmp_path):
    result = run(["serve"], gateway_env(tmp_path, GATEWAY_S3_PART_SIZE="100"))
    assert result.returncode == 2 and "GATEWAY_S3_PART_SIZE" in result.stderr


def test_serve_answers_and_shuts_down_gracefully(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port",
                               str(port)], env=gateway_env(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "gateway did not start"
                time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        log = server.stderr.read()
        assert '"event": "listening"' in log and '"event": "request"' in log and '"request_id"' in log
    finally:
        if server.poll() is None:
            server.kill()


async def _authenticates(tmp_path, token: str) -> bool:
    store = SqliteDocumentStore(tmp_path / "var" / "gateway.sqlite3")
    await store.open()
    try:
        return await Users(store).authenticate(f"Bearer {token}") is not None
    finally:
        await store.close()


def test_users_token_issues_a_new_token_and_revokes_the_old_one(tmp_path):
    env = gateway_env(tmp_path)
    old = run(["users", "add", "alice", "--staff"], env).stdout.strip().splitlines()[-1]
    renewed = run(["users", "token", "alice"], env)
    assert renewed.returncode == 0, renewed.stderr
    new = renewed.stdout.strip().splitlines()[-1]
    assert new != old and len(new) >= 40 and "old one no longer works" in renewed.stdout
    assert asyncio.run(_authenticates(tmp_path, new)) and not asyncio.run(_authenticates(tmp_path, old))
    assert "alice\tstaff" in run(["users", "list"], env).stdout  # roles kept
    missing = run(["users", "token", "nobody"], env)
    assert missing.returncode == 1 and missing.stderr.strip() == "gateway: no user 'nobody'"


def test_a_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run(["serve", "--host", "127.0.0.1", "--port", str(port)], gateway_env(tmp_path))
    assert result.returncode == 1 and time.monotonic() - started < 10
    assert result.stderr.strip() == f"gateway: cannot listen on 127.0.0.1:{port}: address already in use"


def test_serving_limits_are_validated_against_the_open_files_limit(tmp_path):
    bad_timeout = run(["serve"], gateway_env(tmp_path, GATEWAY_HEADER_TIMEOUT="0"))
    assert bad_timeout.returncode == 2 and "GATEWAY_HEADER_TIMEOUT: must be positive" in bad_timeout.stderr
    too_many = run(["serve"], gateway_env(tmp_path, GATEWAY_MAX_CONNECTIONS="100000000"))
    assert too_many.returncode == 2 and "GATEWAY_MAX_CONNECTIONS: 100000000 does not fit" in too_many.stderr
    assert serving.connection_cap(0, 20_000) == 10_000  # derived: below the limit, above 3 000
    assert serving.connection_cap(0, 4096) == 4096 - serving.FD_RESERVE
    assert serving.connection_cap(0, 1024) == 768  # a small limit still serves, keeping a quarter back
    assert serving.connection_cap(5000, 20_000) == 5000
