"""One canonical form per URL, for every writer: ``veille load``, the news crawler, lookups.

A news item or loaded page whose canonical id is its URL must get the same id whichever way
it arrives, so there is one rule, here, below both the loader and the crawler:

- ``http`` and ``https`` become ``https``; scheme and host are lower-cased; ``www.`` and
  user info are dropped; ports 80 and 443 are dropped, any other port is kept;
- the fragment is dropped;
- tracking parameters (:data:`TRACKING_PARAMS`: ``utm_*``, ``fbclid``, ``gclid``, ...) are
  dropped, the other parameters are sorted by name then value, blank values kept;
- repeated slashes in the path are collapsed and a trailing slash dropped (the root stays
  ``/``); the path's case and percent-escapes are kept as given (paths are case-sensitive).

w3lib's ``canonicalize_url`` is not used: it keeps the scheme and ``www.``, re-escapes paths
and queries, and would give every URL-keyed document already stored a new id.

>>> canonical_url("HTTP://www.Example.com:443/news//story/?utm_source=rss&b=2&a=1#top")
'https://example.com/news/story?a=1&b=2'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Parameters that say how a reader arrived, never which page it is (names, any case).
TRACKING_PARAMS = re.compile(
    r"^(utm|utm_[a-z]+|fbclid|gclid|dclid|msclkid|yclid|twclid|li_fat_id|igshid|"
    r"mc_cid|mc_eid|_hsenc|_hsmi|_ga|_gl|mkt_tok|ref|ref_src|ncid|cmpid|ocid|s_cid|"
    r"sr_share|vero_id|oly_enc_id|oly_anon_id|wt\.mc_id)$",
    re.IGNORECASE,
)

# The shorter list core used before the crawler's and the loader's rules were merged. Kept
# only to find documents that ``veille load`` stored under it: see ``legacy_canonical_url``.
_LEGACY_TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|ref|ref_src|igshid|_hsenc|_hsmi)$",
    re.IGNORECASE,
)


def _normalise(url: str, tracking: re.Pattern[str]) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        scheme = "https"
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = parts.port
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = sorted((k, v) for k, v in query if not tracking.match(k))
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def canonical_url(url: str) -> str:
    """The canonical form of ``url``: the id of a page reached by any link to it.

    >>> canonical_url("http://www.Example.com/story/?utm_source=rss&id=3&fbclid=x")
    'https://example.com/story?id=3'
    """
    return _normalise(url, TRACKING_PARAMS)


def legacy_canonical_url(url: str) -> str:
    """``url`` as core keyed it before its tracking list grew to the crawler's (``_ga``,
    ``ncid``, ``mkt_tok``, ... were kept then). Only for finding documents stored under
    that key; the news crawler always used the longer list, so its keys did not change."""
    return _normalise(url, _LEGACY_TRACKING_PARAMS)


def strip_tracking(url: str) -> str:
    """``url`` as published minus its tracking parameters, otherwise untouched (what a
    crawler requests: the site may care about case, ``www.`` or parameter order).

    >>> strip_tracking("http://www.Example.com/a/?b=2&utm_medium=rss&a=1")
    'http://www.Example.com/a/?b=2&a=1'
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not TRACKING_PARAMS.match(k)
    ]
    return urlunsplit(parts._replace(query=urlencode(kept)))
