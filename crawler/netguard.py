"""Which network destinations the crawlers may reach: public addresses only, unless allowed.

A feed is written by someone else. Its item links and the redirects of its pages can point at
the machine Veille runs on (127.0.0.1, ::1), at the company network (10/8, 172.16/12,
192.168/16, fc00::/7) or at a cloud metadata service (169.254.169.254, fe80::/10). Fetching
them would let a feed read internal pages into the store, the dashboard and the digest
(server-side request forgery). So every host is resolved and each of its addresses checked
before a request goes out, at every redirect hop; the networks in the
``crawl_allowed_networks`` setting (for instance an intranet, or 127.0.0.1 in tests) are the
only exceptions.

This module only decides; :mod:`crawler.news_guard` applies it to Scrapy's requests and
:mod:`crawler.arxiv_client` to its own.

Example::

    policy = NetworkPolicy.from_settings(settings)
    policy.check_url("http://169.254.169.254/latest/meta-data/")  # raises RefusedDestination
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedDestination(ValueError):
    """A URL leads to an address the crawlers must not reach; the message says which and why."""


class UnresolvableHost(OSError):
    """A host name has no address (DNS failure); the message names the host."""


def parse_networks(values: Iterable[str], *, where: str = "crawl_allowed_networks") -> tuple:
    """CIDR strings -> networks; a bad entry is a ValueError naming it and the setting."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError as exc:
            problem = f"{where}: {value!r} is not a network like 10.0.0.0/8 ({exc})"
            raise ValueError(problem) from None
    return tuple(networks)


def address_kind(address: IPAddress) -> str:
    """'' for a public address, else what it is, in words ('a loopback address', ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return "a loopback address (this machine)"
    if address.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if address.is_private and not address.is_unspecified:
        return "a private network address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a reserved, non-public address"
    return ""


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Public addresses, plus the allowed networks; everything else is refused."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: object) -> NetworkPolicy:
        return cls(parse_networks(getattr(settings, "crawl_allowed_networks", ()) or ()))

    def refusal(self, address: IPAddress | str) -> str:
        """Why this address is refused, or '' when it may be reached."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        kind = address_kind(ip)
        if not kind:
            return ""
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(c in net for c in candidates for net in self.allowed if c.version == net.version):
            return ""
        return f"{ip} is {kind}, not in crawl_allowed_networks"

    def check_host(self, host: str, port: int | None = None) -> list[str]:
        """Resolve ``host`` and return its addresses; raise when one of them is refused.

        Every address counts: a name that resolves to a public and a private address is
        refused, since the connection could go to either.
        """
        host = host.strip("[]")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, UnicodeError) as exc:
                raise UnresolvableHost(f"host {host!r} not found ({exc})") from exc
            addresses = list(dict.fromkeys(info[4][0].split("%", 1)[0] for info in infos))
        for address in addresses:
            reason = self.refusal(address)
            if reason:
                shown = host if literal is not None else f"{host} -> {address}"
                raise RefusedDestination(f"refused {shown}: {reason}")
        return addresses

    def check_url(self, url: str) -> list[str]:
        """Check an http(s) URL's host; other schemes are refused outright."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RefusedDestination(f"refused {url!r}: not an http(s) URL")
        try:
            port = parts.port
        except ValueError as exc:
            raise RefusedDestination(f"refused {url!r}: bad port ({exc})") from exc
        return self.check_host(parts.hostname, port)
