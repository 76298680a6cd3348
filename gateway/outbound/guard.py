"""Which addresses a server-side fetch may reach: the decision, without any I/O.

Blocked: loopback, private, link-local, CGNAT (100.64/10), unspecified,
multicast, reserved and benchmarking ranges, cloud metadata addresses, and every
IPv6 form that carries one of those IPv4 addresses (IPv4-mapped, IPv4-compatible,
NAT64, 6to4, Teredo). Anything Python does not call globally reachable is blocked
too. Hosts written as numbers in the notations libc accepts (``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1``) are read as the address they name.

The host judged is the one the connection will use. URLs are parsed by yarl,
the URL library aiohttp itself uses, which normalizes hosts (IDNA/UTS 46, so
NFKC: ``１２７．０．０．１``, ``127。0。0。1`` and ``①②⑦.0.0.1`` all become
``127.0.0.1``), and the fetcher hands aiohttp that same parsed URL. A host
aiohttp would connect to as an address without asking the resolver must be one
this module can read as an address; anything else that is not a plain DNS name
is refused.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_network

from aiohttp.helpers import is_ip_address
from yarl import URL

from gateway.core.fetching import FetchError  # the port's error; re-exported by gateway.outbound

IPAddress = IPv4Address | IPv6Address

BLOCKED_NETWORKS = tuple(ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "100.100.100.200/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "fd00:ec2::254/128",
))
NAT64 = ip_network("64:ff9b::/96")
SCHEMES = ("http", "https")
NUMERIC_HOST = re.compile(r"^[0-9][0-9a-fA-FxX.]*$")
DNS_NAME = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?$")


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, compatible, NAT64, 6to4, Teredo."""
    found = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.append(address.teredo[1])
    if address.packed[:12] == bytes(12) or address in NAT64:
        found.append(IPv4Address(address.packed[12:]))
    return found


def is_blocked(address: IPAddress) -> bool:
    if isinstance(address, IPv6Address) and any(is_blocked(v4) for v4 in embedded_ipv4(address)):
        return True
    return any(address in net for net in BLOCKED_NETWORKS if net.version == address.version) or not (
        address.is_global or (isinstance(address, IPv6Address) and address in NAT64))


def literal_address(host: str) -> IPAddress | None:
    """The address a literal host names, in any notation libc accepts; None for names."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if NUMERIC_HOST.match(host):
        try:
            return IPv4Address(socket.inet_aton(host))  # 2130706433, 0x7f.1, 0177.0.0.1, 127.1
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class Target:
    """A URL as the connection will see it: ``host`` is yarl's normalized (ASCII,
    IDNA-encoded) host, ``address`` what that host names when it is a literal."""
    url: URL
    scheme: str
    host: str
    port: int
    address: IPAddress | None


def check_url(url: str | URL) -> Target:
    """The target of an acceptable URL, else FetchError(invalid_url)."""
    try:
        parsed = url if isinstance(url, URL) else URL(url.strip())
        host, port = parsed.raw_host, parsed.port
    except (ValueError, TypeError) as exc:  # UnicodeError (bad IDNA) is a ValueError
        raise FetchError("invalid_url", f"not a valid URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in SCHEMES or not parsed.absolute:
        raise FetchError("invalid_url", "only http and https URLs can be fetched")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise FetchError("invalid_url", "URLs with credentials are not fetched")
    if not host:
        raise FetchError("invalid_url", "the URL has no host")
    host = host.lower()
    if "%" in host:  # an IPv6 zone or a percent-escape: never a public host
        raise FetchError("invalid_url", f"{host} is neither a host name nor an address")
    address = literal_address(host)
    if address is None and (is_ip_address(host) or not DNS_NAME.match(host)):
        # aiohttp would hand this host to the OS as an address, skipping the
        # resolver, or it is no DNS name at all: nothing here could judge it.
        raise FetchError("invalid_url", f"{host} is neither a host name nor an address")
    if not port:
        raise FetchError("invalid_url", "the URL has no valid port")
    return Target(parsed, scheme, host, port, address)
