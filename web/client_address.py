"""The client address of a request: the one answer every per-address limit uses (logins; tracking and
reports may count by it too).

Any client can send ``X-Forwarded-For``, so it is believed only from a configured trusted proxy
(``WULIAN_TRUSTED_PROXIES``, empty by default). The web is started with uvicorn's
``--no-proxy-headers`` (``wulian/launcher.py``), so the ASGI ``client`` is the socket's peer; without
that flag uvicorn itself rewrites it from ``X-Forwarded-For`` for any request from 127.0.0.1, and every
client could choose its address.

Behind trusted proxies each proxy appends the address it received the request from, so the list is
read from the right: the first address that is not itself a trusted proxy is the client. Entries to its
left were written by the client and are ignored. An entry that is no address ends the walk at the last
trusted hop (the limits then count that proxy: stricter, never looser).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from wulian.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What a request without a usable peer address counts as.
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in spec.replace(",", " ").split())


def parse_address(text: str) -> IPAddress | None:
    """An address as found in a socket peer or a forwarded header (``[v6]``, ``v4:port`` and
    IPv4-mapped IPv6 accepted), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 192.0.2.1:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client address given the socket ``peer``, the ``X-Forwarded-For`` header values in order and
    the trusted proxy networks (see the module's docstring)."""
    address = parse_address(peer)
    if address is None:
        return peer[:64] if peer else UNKNOWN
    if not _trusted(address, trusted):
        return str(address)
    hops = [part for value in forwarded_for for part in value.split(",")]
    for hop in reversed(hops):
        found = parse_address(hop)
        if found is None:
            break
        address = found
        if not _trusted(address, trusted):
            break
    return str(address)


def client_ip(request: Any, settings: Settings) -> str:
    """The client address of ``request`` (a Litestar request): the socket's peer, or behind a trusted
    proxy the right-most ``X-Forwarded-For`` address that is not a trusted proxy."""
    client = request.client
    peer = client.host if client is not None and client.host else ""
    trusted = _networks(settings.trusted_proxies)
    if not trusted:
        parsed = parse_address(peer)
        return str(parsed) if parsed is not None else (peer[:64] or UNKNOWN)
    return forwarded_client(peer, request.headers.getall("x-forwarded-for", []), trusted)


def forwarded_https(scope: Any, settings: Settings) -> bool:
    """Whether a trusted proxy says the client came over HTTPS (``X-Forwarded-Proto: https``); the
    header is ignored from anyone else, as ``X-Forwarded-For`` is."""
    trusted = _networks(settings.trusted_proxies)
    client = scope.get("client")
    peer = parse_address(str(client[0])) if client else None
    if not trusted or peer is None or not _trusted(peer, trusted):
        return False
    protos = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-proto"]
    return bool(protos) and protos[-1].split(",")[-1].strip().lower() == "https"
