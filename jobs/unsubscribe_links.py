"""Signed unsubscribe links: in every digest's footer and its ``List-Unsubscribe`` header.

A link carries the address it was made for, signed under the "unsubscribe" purpose
(jobs/signing.py), so a feedback or shortlist token never unsubscribes anyone. The API's
public /unsubscribe page and the dashboard's Unsubscribe page read it through
:mod:`jobs.facade`; a forged or altered link is refused and nothing changes. The link does not
expire: an unsubscribe link has to work in an old email too.

    url = unsubscribe_url(settings, "ana@example.org", store=store)
    unsubscribe_with_token(store, settings, token)  # -> "ana@example.org"
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from core.settings import Settings
from core.store import Store
from core.subscribers import email_ref, unsubscribe
from jobs.signing import read_values, sign_values

log = logging.getLogger(__name__)


def make_unsubscribe_token(settings: Settings, email: str, *, store: Store | None = None) -> str:
    """A token that proves the link was made by us for ``email``."""
    return sign_values(settings, store, "unsubscribe", [email.strip().lower()])


def unsubscribe_url(settings: Settings, email: str, *, store: Store | None = None) -> str:
    token = make_unsubscribe_token(settings, email, store=store)
    return f"{settings.public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


def read_token(settings: Settings, store: Store | None, token: str) -> str:
    """The address the token was made for; ValueError when it is malformed or forged."""
    values = read_values(settings, store, "unsubscribe", token)
    if not (values and len(values) == 1 and isinstance(values[0], str) and values[0]):
        raise ValueError("this unsubscribe link is invalid or has been altered")
    return values[0]


def unsubscribe_with_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> str:
    """Unsubscribe the address the token was made for and return it.

    ValueError when the token is malformed or its signature does not match (a changed
    address or a forged link). Unsubscribing twice is fine.
    """
    address = read_token(settings, store, token)
    unsubscribe(store, address, now=now)
    log.info("unsubscribed %s through a signed link", email_ref(address))
    return address
