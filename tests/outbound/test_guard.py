"""The guard's decisions, made without sending a packet: resolvers here are fakes and
a spy fails the test if any connection is attempted."""
from __future__ import annotations

import socket

import pytest

from config.settings import parse_allow
from gateway.outbound import FetchError, Fetcher
from gateway.outbound.guard import is_blocked, literal_address

BLOCKED_URLS = [
    "http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/", "http://10.0.0.1/",
    "http://192.168.1.1/", "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://[::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo carrying 127.0.0.1
    "https://224.0.0.1/", "http://100.100.100.200/",
]


@pytest.fixture
def no_connections(monkeypatch):
    """Any real connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def fake_dns(table: dict[str, list[str]]):
    async def lookup(host, port):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return table[host]
    return lookup


@pytest.mark.parametrize("url", BLOCKED_URLS)
async def test_literal_blocked_addresses_are_refused_before_connecting(url, no_connections):
    async with Fetcher(lookup=fake_dns({})) as fetcher:
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch(url, max_bytes=1000)
    assert refused.value.code == "blocked_address"


# Spellings the URL library normalizes (IDNA/NFKC) into a blocked address.
UNICODE_BLOCKED_URLS = [
    "http://１２７.０.０.１/", "http://127。0。0。1/", "http://①②⑦.0.0.1/", "http://１２７．０．０．１:8080/",
    "http://①⑥⑨.②⑤④.①⑥⑨.②⑤④/latest/meta-data/", "http://[::ｆｆｆｆ:127.0.0.1]/", "http://ＬＯＣＡＬＨＯＳＴ/",
]


@pytest.mark.parametrize("url", UNICODE_BLOCKED_URLS)
async def test_unicode_spellings_are_judged_as_the_host_the_connection_uses(url, no_connections):
    async with Fetcher(lookup=fake_dns({"localhost": ["127.0.0.1"]})) as fetcher:
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch(url, max_bytes=1000)
    assert refused.value.code == "blocked_address"


def test_check_returns_the_url_as_judged_and_the_allow_list_sees_the_normalized_host():
    fetcher = Fetcher(allow=frozenset({("127.0.0.1", 8080)}))
    checked = fetcher.check("http://１２７.０.０.１:8080/page")
    assert (checked.raw_host, checked.port, str(checked)) == ("127.0.0.1", 8080, "http://127.0.0.1:8080/page")
    with pytest.raises(FetchError) as refused:
        fetcher.check("http://１２７.０.０.１:8081/")
    assert refused.value.code == "blocked_address"
    assert fetcher.check("http://пример.рф/").raw_host == "xn--e1afmkfd.xn--p1ai"


async def test_idn_names_are_resolved_in_their_ascii_form(no_connections):
    async with Fetcher(lookup=fake_dns({"xn--e1afmkfd.xn--p1ai": ["127.0.0.1"]})) as fetcher:
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch("http://ПРИМЕР.рф/", max_bytes=1000)
    assert refused.value.code == "blocked_address"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/x",
                                 "javascript:alert(1)", "data:text/html,hi", "http://user:pw@example.com/",
                                 "http:///nohost", "http://example.com:99999/", "http://example.com:0/",
                                 # aiohttp would pass these to the OS as addresses, skipping the resolver
                                 "http://999.1.1.1/", "http://1.2.3.4.5/", "http://127.0.0.1./",
                                 "http://[fe80::1%25eth0]/", "http://%31%32%37.0.0.1/", "http://a b.example/",
                                 "http://evil.example\\@127.0.0.1/", "http://a\u00adb.example/"])
async def test_bad_schemes_and_urls_are_refused(url, no_connections):
    async with Fetcher(lookup=fake_dns({})) as fetcher:
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch(url, max_bytes=1000)
    assert refused.value.code == "invalid_url"


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["93.184.215.14", "10.1.2.3"], ["::1"],
                                       ["::ffff:169.254.169.254"]])
async def test_names_resolving_to_any_blocked_address_are_refused(addresses, no_connections):
    async with Fetcher(lookup=fake_dns({"evil.example": addresses})) as fetcher:
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch("http://evil.example/page", max_bytes=1000)
    assert refused.value.code == "blocked_address"


def test_public_addresses_pass_the_decision():
    for text in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"):
        assert not is_blocked(literal_address(text)), text


def test_allow_list_parsing():
    assert parse_allow("127.0.0.1:8081, localhost:9000") == {("127.0.0.1", 8081), ("localhost", 9000)}
    assert parse_allow("") == frozenset()
    for bad in ("127.0.0.1", "host:port", ":80", "h:0"):
        with pytest.raises(ValueError):
            parse_allow(bad)
