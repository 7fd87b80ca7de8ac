"""Which URLs a webhook subscription may target (the one definition, asked by the admin page, the CLI
and, again, by every delivery attempt).

A subscription's URL is ``http`` or ``https`` with a host, no user name or password in it, no
fragment, at most 500 characters. Its addresses (an IP literal, or every address the host name
resolves to when a delivery is sent) must be public unicast addresses:

- always refused: link-local (169.254.0.0/16, where cloud metadata services answer, and fe80::/10),
  multicast, unspecified (0.0.0.0, ::), reserved and broadcast addresses, and IPv4-mapped forms of
  them;
- refused unless the setting ``webhook_allow_private_targets`` is on: loopback (127.0.0.0/8, ::1,
  ``localhost``), private networks (10/8, 172.16/12, 192.168/16), shared address space (100.64/10)
  and unique-local IPv6 (fc00::/7). Tests turn it on to deliver to a local receiver.

A delivery connects to the address it checked (``pinned``), never resolving the name a second time,
so a name that resolves to a public address when checked and to an internal one when connecting
(DNS rebinding) reaches nothing internal; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 500


class TargetRefused(ValueError):
    """A URL or address a webhook may not target; ``code`` names why (catalogue ``webhooks.url.<code>``)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class Target:
    """A checked URL's parts."""

    scheme: str
    host: str  # as written (a name, or an address literal without brackets)
    port: int
    path: str  # path and query, at least "/"


def parse_target(url: str) -> Target:
    """The URL's parts, or :class:`TargetRefused` (syntax only; addresses of literals checked by
    :func:`check_url`)."""
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused("empty")
    if len(url) > MAX_URL:
        raise TargetRefused("too_long")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise TargetRefused("syntax")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("syntax") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("credentials")
    if parts.fragment:
        raise TargetRefused("syntax")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("host")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def check_address(address: str, allow_private: bool) -> None:
    """Refuse an address a webhook may not reach (see the module's docstring)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise TargetRefused("host", address) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or any(ip in net for net in _INTERNAL if net.version == ip.version):
        if not allow_private:
            raise TargetRefused("private_address", str(ip))
        return
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        raise TargetRefused("forbidden_address", str(ip))  # metadata services, broadcast, documentation, ...


#: The networks of an organisation's own machines: allowed only with ``webhook_allow_private_targets``.
_INTERNAL = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                     "100.64.0.0/10", "fc00::/7"))


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_url(url: str, allow_private: bool) -> Target:
    """The checks made when a subscription is created: syntax, and the address when the host is one
    (a name is resolved and checked by every delivery, :func:`pinned`)."""
    target = parse_target(url)
    if _literal(target.host):
        check_address(target.host, allow_private)
    elif target.host.lower() == "localhost" or target.host.lower().endswith(".localhost"):
        if not allow_private:
            raise TargetRefused("private_address", target.host)
    return target


async def pinned(url: str, allow_private: bool) -> tuple[Target, str]:
    """The URL checked and its host resolved: ``(target, address)``, every resolved address allowed
    (one forbidden address refuses the name), the first one to connect to."""
    target = check_url(url, allow_private)
    if _literal(target.host):
        return target, target.host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused("unresolved", f"{target.host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused("unresolved", target.host)
    for address in addresses:
        check_address(address, allow_private)
    return target, addresses[0]
