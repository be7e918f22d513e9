"""Signed unsubscribe links: in every digest's footer and its ``List-Unsubscribe`` header.

A link carries a keyed reference to the address it was made for, never the address itself
(a token's values are signed, not encrypted: anyone holding the email could read them), signed
under the "unsubscribe" purpose (jobs/signing.py), so a feedback or shortlist token never
unsubscribes anyone. The reference is an HMAC of the address under the signing key, so it
cannot be computed from an address without the key; reading a link compares it with the
references of the addresses on the list. Links of earlier releases, which carried the address,
are still honoured. The API's
public /unsubscribe page and the dashboard's Unsubscribe page read it through
:mod:`jobs.facade`; a forged or altered link is refused and nothing changes. The link does not
expire: an unsubscribe link has to work in an old email too.

    url = unsubscribe_url(settings, "ana@example.org", store=store)
    unsubscribe_with_token(store, settings, token)  # -> "ana@example.org"
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime
from urllib.parse import quote

from core.settings import Settings
from core.store import Store
from core.subscribers import email_ref, list_subscribers, unsubscribe
from jobs.signing import read_values, sign_values, signing_key

log = logging.getLogger(__name__)


REFERENCE = "r"  # the first value of a token that carries a reference, not an address


def address_reference(settings: Settings, store: Store | None, email: str) -> str:
    """The keyed stand-in for ``email`` that unsubscribe links carry (32 hex characters)."""
    key = signing_key(settings, store)
    message = b"veille-subscriber\x00" + email.strip().lower().encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def make_unsubscribe_token(settings: Settings, email: str, *, store: Store | None = None) -> str:
    """A token that proves the link was made by us for ``email``, without carrying it."""
    return sign_values(
        settings, store, "unsubscribe", [REFERENCE, address_reference(settings, store, email)]
    )


def unsubscribe_url(settings: Settings, email: str, *, store: Store | None = None) -> str:
    token = make_unsubscribe_token(settings, email, store=store)
    return f"{settings.public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


def read_token(settings: Settings, store: Store | None, token: str) -> str | None:
    """The address the token was made for, or None when that address is no longer on the
    list (erased); ValueError when the token is malformed or forged."""
    values = read_values(settings, store, "unsubscribe", token)
    if values and len(values) == 1 and isinstance(values[0], str) and "@" in values[0]:
        return values[0]  # a link of an earlier release, which carried the address
    if not (
        values
        and len(values) == 2
        and values[0] == REFERENCE
        and isinstance(values[1], str)
        and values[1]
    ):
        raise ValueError("this unsubscribe link is invalid or has been altered")
    if store is None:
        own = Store.from_settings(settings)
        try:
            return _find_reference(settings, own, values[1])
        finally:
            own.close()
    return _find_reference(settings, store, values[1])


def _find_reference(settings: Settings, store: Store, reference: str) -> str | None:
    for subscriber in list_subscribers(store):
        if hmac.compare_digest(address_reference(settings, store, subscriber.email), reference):
            return subscriber.email
    return None


def unsubscribe_with_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> str | None:
    """Unsubscribe the address the token was made for and return it; None when that address
    is no longer on the list (erased earlier: nothing will be sent to it either).

    ValueError when the token is malformed or its signature does not match (a changed
    reference or a forged link). Unsubscribing twice is fine.
    """
    address = read_token(settings, store, token)
    if address is None:
        log.info("an unsubscribe link was used for an address no longer on the list")
        return None
    unsubscribe(store, address, now=now)
    log.info("unsubscribed %s through a signed link", email_ref(address))
    return address
