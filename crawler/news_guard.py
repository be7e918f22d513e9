"""Where the news spider may go, checked on every request: a Scrapy downloader middleware.

Two per-crawl decisions live in one :class:`HostGate`, which the spider owns and the
middleware consults before each request (feeds, article pages, robots.txt, and every
redirect hop, since a redirect is a new request that passes the middlewares again):

* destinations: a host whose address is loopback, private, link-local or otherwise not
  public is refused (:mod:`crawler.netguard`), unless ``crawl_allowed_networks`` allows it;
* dead hosts: once a host fails DNS or refuses connections (after Scrapy's retries), its
  other pages are not requested for the rest of the crawl; their items keep the feed text.

Host names are resolved in a thread (the reactor never waits on DNS) and once per crawl.
:class:`GuardedResolver` checks the address again when Scrapy connects (DNS rebinding).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.netguard import NetworkPolicy, RefusedDestination, UnresolvableHost, parse_networks

log = logging.getLogger(__name__)

# Failures that say "nobody answers at this host", as opposed to one bad page.
_DEAD_HOST_ERRORS = (
    "CannotResolveHostError",  # Scrapy >= 2.14 names
    "DownloadConnectionRefusedError",
    "DNSLookupError",  # Twisted's, raised by older Scrapy
    "ConnectionRefusedError",
    "TCPTimedOutError",
    "NoRouteError",
    "ConnectError",
    "UnresolvableHost",
)


class RefusedRequest(IgnoreRequest):
    """The request's destination is not allowed (private, loopback, link-local, ...)."""


class HostDown(IgnoreRequest):
    """The host failed earlier in this crawl; its pages are not requested again."""


def is_dead_host_error(exc: BaseException) -> bool:
    return type(exc).__name__ in _DEAD_HOST_ERRORS


class HostGate:
    """Per crawl: which hosts may be reached, and which were found dead."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self.policy = policy
        self._verdicts: dict[str, BaseException | None] = {}
        self.dead: dict[str, str] = {}  # host -> why, in a few words
        self.skipped: dict[str, int] = {}  # host -> requests not made because it was dead

    async def check(self, url: str) -> None:
        """Raise RefusedDestination or UnresolvableHost for a URL that must not be fetched."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host not in self._verdicts:
            try:
                await maybe_deferred_to_future(deferToThread(self.policy.check_url, url))
                self._verdicts[host] = None
            except (RefusedDestination, UnresolvableHost) as exc:
                self._verdicts[host] = exc
        problem = self._verdicts[host]
        if problem is not None:
            raise problem

    def mark_dead(self, host: str, reason: str) -> bool:
        """Record a dead host; True the first time (the caller reports it once)."""
        host = host.lower()
        if not host or host in self.dead:
            return False
        self.dead[host] = reason
        return True


class DestinationGuard:
    """Downloader middleware: refuses forbidden destinations and the pages of dead hosts."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> DestinationGuard:
        return cls(crawler)

    def _gate(self) -> HostGate | None:
        return getattr(self.crawler.spider, "gate", None)

    async def process_request(self, request: Any) -> None:
        gate = self._gate()
        if gate is None:
            return None
        host = (urlsplit(request.url).hostname or "").lower()
        if host in gate.dead:
            gate.skipped[host] = gate.skipped.get(host, 0) + 1
            raise HostDown(f"host {host} did not answer earlier in this crawl ({gate.dead[host]})")
        try:
            await gate.check(request.url)
        except RefusedDestination as exc:
            log.warning("not fetched: %s (%s)", exc, request.url)
            raise RefusedRequest(str(exc)) from exc
        except UnresolvableHost as exc:
            self._dead(gate, host, "host not found (DNS)", request.url)
            raise HostDown(str(exc)) from exc
        return None

    def _dead(self, gate: HostGate, host: str, reason: str, url: str) -> None:
        report_dead_host(self.crawler, gate, host, reason, url)


class DeadHostWatch:
    """Downloader middleware placed next to the downloader (before RetryMiddleware sees a
    failure): the first DNS or connection failure marks the host dead, so neither the retry
    nor the host's other pages are requested; :class:`DestinationGuard` turns them away."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> DeadHostWatch:
        return cls(crawler)

    def process_exception(self, request: Any, exception: BaseException) -> None:
        gate = getattr(self.crawler.spider, "gate", None)
        if gate is not None and is_dead_host_error(exception):
            host = (urlsplit(request.url).hostname or "").lower()
            reason = _DEAD_HOST_WORDS.get(type(exception).__name__, type(exception).__name__)
            report_dead_host(self.crawler, gate, host, reason, request.url)
        return None


_DEAD_HOST_WORDS = {
    "CannotResolveHostError": "host not found (DNS)",
    "DownloadConnectionRefusedError": "connection refused",
    "DNSLookupError": "host not found (DNS)",
    "ConnectionRefusedError": "connection refused",
    "TCPTimedOutError": "connection timed out",
    "NoRouteError": "no route to host",
    "ConnectError": "connection failed",
}


def report_dead_host(crawler: Any, gate: HostGate, host: str, reason: str, url: str) -> None:
    """Mark a host dead; the first time, one log line and one event for the parent process."""
    if gate.mark_dead(host, reason):
        log.warning(
            "host %s is not answering (%s, at %s): its pages are skipped", host, reason, url
        )
        events = getattr(crawler.spider, "_emit", None)
        if events is not None:
            events("host_down", host, reason)


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's DNS resolver, refusing non-public answers.

    :class:`DestinationGuard` resolves a host before the request; the connection then resolves
    it again. A name whose DNS answer changes in between (DNS rebinding) would slip through,
    so the address actually connected to is checked here as well.
    """

    policy: NetworkPolicy = NetworkPolicy()

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        networks = parse_networks(crawler.settings.getlist("VEILLE_ALLOWED_NETWORKS"))
        resolver.policy = NetworkPolicy(networks)
        return resolver

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 - Twisted's
        deferred = super().getHostByName(name, timeout)
        deferred.addCallback(self._check, name)
        return deferred

    def _check(self, address: str, name: str) -> str:
        reason = self.policy.refusal(address)
        if reason:  # Twisted reports it as a failed lookup; the log says why
            log.warning("not connecting: %s resolved to %s, %s", name, address, reason)
            raise RefusedDestination(f"refused {name} -> {address}: {reason}")
        return address


def resolver_setting() -> str:
    """The Scrapy setting that names the DNS resolver (renamed in Scrapy 2.14)."""
    from scrapy.settings import default_settings

    return (
        "TWISTED_DNS_RESOLVER"
        if hasattr(default_settings, "TWISTED_DNS_RESOLVER")
        else ("DNS_RESOLVER")
    )
