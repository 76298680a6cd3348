"""Rate limits under /dato: X-RateLimit-* on every reply, 429 with X-RateLimit-Reset, bounded memory.

The gateway runs on local storage and SQLite through aiohttp's test client. No
route of the dialect streams its reply yet, so this test adds one of its own to
see the headers there too; the limiter's clock is a fake one, so a window ends
when the test says so.
"""
from __future__ import annotations

import os

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config.settings import SettingsError, load_settings
from gateway.api.dato import rate_limit
from gateway.app import create_app
from gateway.keys import USERS
from tests.dato.helpers import DATO_HEADERS, ask, put_file

JSON_ROUTE, STREAM_ROUTE = "/dato/uploads", "/dato/__test/stream"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)  # headers leave here, before any middleware sees the response
    await response.write(b"streamed")
    await response.write_eof()
    return response


@pytest.fixture
async def gateway(tmp_path):
    made: list[TestClient] = []

    async def make(limit: int = 60, window: float = 3.0, keys: int = 10_000) -> TestClient:
        settings = load_settings(environ={"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "0",
                                          "GATEWAY_DATO_RATE_LIMIT": str(limit),
                                          "GATEWAY_DATO_RATE_WINDOW": str(window),
                                          "GATEWAY_DATO_RATE_KEYS": str(keys)})
        app = create_app(settings)
        app.router.add_get(STREAM_ROUTE, stream)
        clock = FakeClock()
        app[rate_limit.LIMITER] = rate_limit.RateLimiter(limit, window, keys, clock=clock)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        client.clock = clock
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def bearer(client: TestClient) -> dict[str, str]:
    _, token = await client.app[USERS].add(f"u{os.urandom(4).hex()}")
    return {"Authorization": f"Bearer {token}"}


def budget(response) -> tuple[int, int]:
    return int(response.headers["X-RateLimit-Limit"]), int(response.headers["X-RateLimit-Remaining"])


async def test_success_carries_the_budget(gateway):
    client = await gateway(limit=5)
    auth = await bearer(client)
    first = await client.get(JSON_ROUTE, headers=auth)
    second = await client.get(JSON_ROUTE, headers=auth)
    assert first.status == second.status == 200
    assert budget(first) == (5, 4) and budget(second) == (5, 3)
    assert "X-RateLimit-Reset" not in first.headers


async def test_a_bad_tokens_401_carries_the_budget(gateway):
    client = await gateway(limit=5)
    response = await client.get(JSON_ROUTE, headers={**DATO_HEADERS, "Authorization": "Bearer not-a-token"})
    assert response.status == 401
    assert "application/json" in response.headers["Content-Type"]
    assert (await response.json())["data"][0]["attributes"]["code"] == "INVALID_AUTHORIZATION_HEADER"
    assert budget(response) == (5, 4)


async def test_an_unknown_dato_routes_404_is_json_and_carries_the_budget(gateway):
    client = await gateway(limit=5)
    response = await client.get("/dato/no-such-thing", headers=await bearer(client))
    assert response.status == 404
    assert response.content_type == "application/json"
    assert (await response.json())["data"][0]["attributes"]["code"] == "NOT_FOUND"
    assert budget(response) == (5, 4)


async def test_the_upload_put_is_never_refused_and_carries_the_budget(gateway):
    # The official client throws on a 429 here instead of waiting, so the PUT must not spend a budget.
    client = await gateway(limit=1)
    _, url = await ask(client, await bearer(client), "photo.png")  # the token's whole budget
    assert (await client.get("/dato/no-such-thing")).status == 404  # the address's whole budget
    stored = await put_file(client, url, b"\x89PNG not really")
    assert stored.status == 200, await stored.text()
    assert budget(stored) == (1, 0)


async def test_a_streamed_reply_carries_the_budget(gateway):
    client = await gateway(limit=5)
    response = await client.get(STREAM_ROUTE)
    assert response.status == 200 and await response.read() == b"streamed"
    assert budget(response) == (5, 4)


async def test_paths_outside_dato_have_no_rate_limit_headers(gateway):
    client = await gateway(limit=1)
    for path in ("/health/live", "/no-such-thing", "/datoish", "/api/v2/media/"):
        for _ in range(3):  # past the limit of 1: nothing outside /dato counts either
            response = await client.get(path)
            assert response.status != 429, path
            assert not any(h.lower().startswith("x-ratelimit") for h in response.headers), path


async def test_over_the_limit_is_429_with_whole_seconds_to_wait(gateway):
    client = await gateway(limit=3, window=3.0)
    auth = await bearer(client)
    for expected in (2, 1, 0):
        response = await client.get(JSON_ROUTE, headers=auth)
        assert response.status == 200 and budget(response) == (3, expected)
    client.clock.now += 0.4
    refused = await client.get(JSON_ROUTE, headers=auth)
    assert refused.status == 429
    assert "application/json" in refused.headers["Content-Type"]
    error = (await refused.json())["data"][0]
    assert error["type"] == "api_error" and error["attributes"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert budget(refused) == (3, 0)
    assert refused.headers["X-RateLimit-Reset"] == "3"  # 2.6 s left, rounded up: never 0, never too short
    assert refused.headers["Retry-After"] == "3"
    client.clock.now += 2.5  # 0.1 s left: still a whole second to wait
    assert (await client.get(JSON_ROUTE, headers=auth)).headers["X-RateLimit-Reset"] == "1"


async def test_waiting_the_reset_recovers_the_whole_budget(gateway):
    client = await gateway(limit=2, window=3.0)
    auth = await bearer(client)
    for _ in range(2):
        assert (await client.get(JSON_ROUTE, headers=auth)).status == 200
    refused = await client.get(JSON_ROUTE, headers=auth)
    assert refused.status == 429
    client.clock.now += int(refused.headers["X-RateLimit-Reset"])  # what the official client sleeps
    again = await client.get(JSON_ROUTE, headers=auth)
    assert again.status == 200 and budget(again) == (2, 1)


async def test_two_tokens_have_separate_budgets(gateway):
    client = await gateway(limit=2)
    alice, bob = await bearer(client), await bearer(client)
    for _ in range(2):
        assert (await client.get(JSON_ROUTE, headers=alice)).status == 200
    assert (await client.get(JSON_ROUTE, headers=alice)).status == 429
    response = await client.get(JSON_ROUTE, headers=bob)
    assert response.status == 200 and budget(response) == (2, 1)


async def test_requests_without_a_token_share_one_budget_per_address(gateway):
    client = await gateway(limit=2)
    assert (await client.get(STREAM_ROUTE)).status == 200
    assert (await client.get("/dato/no-such-thing")).status == 404
    refused = await client.get(STREAM_ROUTE)
    assert refused.status == 429 and budget(refused) == (2, 0)
    assert (await client.get(STREAM_ROUTE, headers=await bearer(client))).status == 200


async def test_either_slash_form_counts_once(gateway):
    client = await gateway(limit=4)
    auth = await bearer(client)
    response = await client.get(JSON_ROUTE + "/", headers=auth)  # served by the route without the slash
    assert response.status == 200 and budget(response) == (4, 3)


async def test_a_flood_of_random_tokens_over_http_stays_at_the_cap(gateway):
    client = await gateway(limit=5, keys=50)
    for n in range(300):
        response = await client.get("/dato/no-such-thing", headers={"Authorization": f"Bearer flood-{n}"})
        assert response.status == 404 and budget(response) == (5, 4)
    assert len(client.app[rate_limit.LIMITER]) == 50


def test_a_flood_of_20000_tokens_keeps_the_tracked_keys_at_the_cap():
    clock = FakeClock()
    limiter = rate_limit.RateLimiter(60, 3.0, 1000, clock=clock)
    for n in range(20_000):
        clock.now += 0.0001  # all inside one window: nothing has ended, the cap alone bounds memory
        assert limiter.hit(f"token-{n}".encode()).allowed
        assert len(limiter) <= 1000
    assert len(limiter) == 1000


def test_ended_windows_are_forgotten_first():
    clock = FakeClock()
    limiter = rate_limit.RateLimiter(2, 3.0, 10, clock=clock)
    for n in range(10):
        limiter.hit(b"old-%d" % n)
    clock.now += 3.0
    limiter.hit(b"new")
    assert len(limiter) == 1


@pytest.mark.parametrize("name,value", [("GATEWAY_DATO_RATE_LIMIT", "0"), ("GATEWAY_DATO_RATE_WINDOW", "0"),
                                        ("GATEWAY_DATO_RATE_KEYS", "0")])
def test_bad_settings_name_themselves(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={name: value})
