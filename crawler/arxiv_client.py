"""Fetching pages of the arXiv API: bytes in, bytes out, politely.

Politeness lives here and only here: one connection (one ``requests`` session with a single
pooled connection), at most one request every ``delay`` seconds (measured between request
starts), a descriptive User-Agent, and retries with exponential backoff on timeouts,
connection errors, HTTP 429 and 5xx. Parsing is in :mod:`crawler.arxiv_parse`.

Where it connects is checked too: the API host and every redirect target are resolved and
refused when they are loopback, private or link-local (:mod:`crawler.netguard`; the
``crawl_allowed_networks`` setting makes exceptions), redirects are followed by hand so that
each hop is checked, and a body larger than ``max_bytes`` is dropped while it is read.

The ``arxiv`` package's own ``Client`` fetches and parses in one step, with a fixed
User-Agent, no request timeout and immediate retries; Veille uses the package for the query
vocabulary (:class:`arxiv.SortCriterion`, :class:`arxiv.SortOrder`) and for parsing entries,
and keeps the network side here so that it can be configured and tested on loopback.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

import arxiv
import requests
from requests.adapters import HTTPAdapter

from crawler.netguard import NetworkPolicy, RefusedDestination, UnresolvableHost

log = logging.getLogger(__name__)


class ArxivFetchError(RuntimeError):
    """A page could not be fetched after every retry; the message says why and where."""


MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class PageRequest:
    search_query: str
    start: int
    max_results: int

    def url(self, base_url: str) -> str:
        params = {
            "search_query": self.search_query,
            "start": str(self.start),
            "max_results": str(self.max_results),
            "sortBy": arxiv.SortCriterion.LastUpdatedDate.value,
            "sortOrder": arxiv.SortOrder.Descending.value,
        }
        return f"{base_url}?{urlencode(params)}"


class RateLimiter:
    """At most one call every ``delay`` seconds (between starts), across threads."""

    def __init__(self, delay: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.delay = delay
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if self._last is not None:
                remaining = self._last + self.delay - now
                if remaining > 0:
                    time.sleep(remaining)
                    now = self._clock()
            self._last = now


class ArxivFetcher:
    """GETs API pages with rate limiting, timeouts and retries; returns the body bytes."""

    def __init__(
        self,
        base_url: str,
        *,
        user_agent: str,
        delay: float = 3.0,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 2.0,
        policy: NetworkPolicy | None = None,
        max_bytes: int = 100_000_000,
    ) -> None:
        self.base_url = base_url
        self.policy = policy or NetworkPolicy()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.limiter = RateLimiter(delay)
        self.requests_made = 0
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
        self.session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
        self.session.headers["User-Agent"] = user_agent

    def close(self) -> None:
        self.session.close()

    def fetch(
        self, request: PageRequest, *, validate: Callable[[bytes], None] | None = None
    ) -> bytes:
        """The body of one page. ``validate`` may raise ValueError to ask for a retry
        (an empty or malformed page); after the last try an ArxivFetchError is raised."""
        url = request.url(self.base_url)
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                pause = self.backoff * (2 ** (attempt - 1))
                log.info("retrying %s in %.1fs (%s)", url, pause, problem)
                time.sleep(pause)
            self.limiter.wait()
            self.requests_made += 1
            try:
                status, body = self._get(url)
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g}s"
                continue
            except UnresolvableHost as exc:
                if getattr(exc.__cause__, "errno", None) == socket.EAI_AGAIN:
                    problem = f"name server did not answer ({exc})"  # may pass: retried
                    continue
                # No name server knows the host: offline, or a wrong arxiv_api_url. Waiting
                # and asking again would only keep the user waiting (75 s by default).
                raise ArxivFetchError(
                    f"{exc}: offline, or a wrong API address; not retried"
                ) from exc
            except requests.ConnectionError as exc:
                problem = f"connection failed ({exc.__class__.__name__})"
                continue
            if status == 429 or status >= 500:
                problem = f"HTTP {status}"
                continue
            if status != 200:
                raise ArxivFetchError(f"arXiv API answered HTTP {status} for {url}; not retried")
            if validate is not None:
                try:
                    validate(body)
                except ValueError as exc:
                    problem = str(exc)
                    continue
            return body
        raise ArxivFetchError(
            f"arXiv API page failed after {self.max_retries + 1} tries: {problem} ({url})"
        )

    def _get(self, url: str) -> tuple[int, bytes]:
        """One GET, redirects followed by hand (each hop's host checked), body size capped."""
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                self.policy.check_url(url)
            except RefusedDestination as exc:
                raise ArxivFetchError(f"arXiv API request not sent: {exc}") from exc
            with self.session.get(
                url, timeout=self.timeout, allow_redirects=False, stream=True
            ) as response:
                if response.status_code in _REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                try:
                    return response.status_code, self._read(response)
                except _TooLarge:
                    raise ArxivFetchError(
                        f"arXiv API answer from {url} is larger than the "
                        f"{self.max_bytes:,}-byte cap (arxiv_max_bytes); not read"
                    ) from None
        raise ArxivFetchError(f"arXiv API redirected more than {MAX_REDIRECTS} times ({url})")

    def _read(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)
