"""Slow and idle clients against a real ``gateway serve`` process (issue 8, A5).

Thousands of connections that send half a request must neither exhaust the
process nor stop it answering health checks: headers have a deadline, bodies
must keep moving, and connections past the cap are turned away at once.
"""
from __future__ import annotations

import resource
import socket
import sqlite3
import time
import urllib.request

import pytest

from tests.gateway.processes import gateway_env, run, running_gateway

pytestmark = pytest.mark.slow

HALF_REQUEST = b"POST /api/v2/media/upload/chunk/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
IDLE = 3000


@pytest.fixture(autouse=True)
def enough_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE + 500:
        pytest.skip(f"needs an open-files limit above {IDLE + 500} (hard limit is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def health_seconds(port: int) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as reply:
        assert reply.status == 200
    return time.monotonic() - started


def half_sent(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(HALF_REQUEST)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes (or answers and closes) the connection within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def still_open(sock: socket.socket) -> bool:
    """Open and unanswered: nothing to read yet, not even an end of stream."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_3000_half_sent_connections_while_health_checks_answer_and_the_cap_turns_away_more(tmp_path):
    with running_gateway(tmp_path, GATEWAY_MAX_CONNECTIONS=str(IDLE + 60), GATEWAY_HEADER_TIMEOUT="60") as (
            server, port, log):
        idle = half_sent(port, IDLE)
        try:
            slowest = max(health_seconds(port) for _ in range(20))
            assert slowest < 1.0, f"/health/live took {slowest:.2f} s with {IDLE} idle connections"
            assert all(still_open(sock) for sock in idle[::100])  # held, not dropped: the cap is above them

            # Past the cap: turned away at once (503, then closed), not left to eat descriptors.
            extra = half_sent(port, 200)
            deadline = time.monotonic() + 10  # a loaded machine may take a while to accept them all
            while len(refused := [sock for sock in extra if not still_open(sock)]) < 100:
                assert time.monotonic() < deadline, f"only {len(refused)} of 200 connections over the cap refused"
                time.sleep(0.2)
            assert refused[-1].recv(4096).startswith(b"HTTP/1.1 503")
            for sock in extra:
                sock.close()
            time.sleep(0.5)

            # The connections already held still work: finish one request.
            idle[0].sendall(b"pe: application/json\r\nContent-Length: 0\r\n\r\n")
            idle[0].settimeout(5)
            assert idle[0].recv(4096).startswith(b"HTTP/1.1 401")
            assert health_seconds(port) < 1.0
        finally:
            for sock in idle:
                sock.close()
        assert server.poll() is None
    text = log.read_text()
    assert "connection refused: at the connection cap" in text
    assert "Too many open files" not in text


def test_headers_that_do_not_arrive_in_time_close_the_connection(tmp_path):
    with running_gateway(tmp_path, GATEWAY_HEADER_TIMEOUT="1.5") as (server, port, log):
        started = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", port))
        half = half_sent(port, 1)[0]
        trickling = socket.create_connection(("127.0.0.1", port))
        try:
            # slowloris: a byte every 0.2 s keeps the connection busy but never completes the headers
            for byte in (HALF_REQUEST * 2)[:40]:
                try:
                    trickling.sendall(bytes([byte]))
                except OSError:  # closed by the server
                    break
                time.sleep(0.2)
            assert 1.2 < time.monotonic() - started < 5, "a trickle of header bytes was held"
            for sock in (half, silent):
                assert closed_by_server(sock, within=max(0.1, 5 - (time.monotonic() - started)))
            assert health_seconds(port) < 1.0
        finally:
            for sock in (silent, half, trickling):
                sock.close()


def test_a_trickling_body_is_cut_after_the_idle_timeout(tmp_path):
    env = gateway_env(tmp_path)
    token = run(["users", "add", "alice"], env).stdout.strip().splitlines()[-1]
    with running_gateway(tmp_path, GATEWAY_BODY_IDLE_TIMEOUT="1.5") as (server, port, log):
        body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.bin\"\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n")
        head = (f"POST /api/v2/media/upload/chunk/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Range: bytes 0-99999/100000\r\n"
                f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body) + 100_000 + 8}\r\n\r\n")
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            sock.sendall(head.encode() + body + b"x" * 1000)
            moving = time.monotonic()
            for _ in range(8):  # a slow body that keeps moving is not cut
                time.sleep(0.5)
                sock.sendall(b"x" * 100)
            assert time.monotonic() - moving > 3.5
            stalled = time.monotonic()
            assert closed_by_server(sock, within=6)  # then it stalls: cut after ~1.5 s
            assert 1.0 < time.monotonic() - stalled < 6
            assert health_seconds(port) < 1.0
        finally:
            sock.close()
    text = log.read_text()
    assert "cut off idle request bodies" in text
    # the cut is the client's doing: a 499, no backend error, and the refused first chunk stored nothing
    assert '"status": 499' in text and "backend unavailable" not in text and '"level": "error"' not in text
    with sqlite3.connect(tmp_path / "var" / "gateway.sqlite3") as db:
        assert db.execute('SELECT COUNT(*) FROM "uploads"').fetchone() == (0,)


def test_malformed_http_is_a_json_400_without_a_traceback(tmp_path):
    with running_gateway(tmp_path) as (server, port, log):
        for raw in (b"GET /health/live HTTP/1.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",
                    b"GET /health/live HTTP/1.1\r\nBad Header\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(raw)
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.split()[1].startswith(b"4"), head
            assert b"application/json" in head and b"malformed_http" in body
        assert health_seconds(port) < 1.0
    text = log.read_text()
    assert '"level": "error"' not in text and "Traceback" not in text
