"""Signed one-click "Add to shortlist" links for the digest.

Made like the "does it fit?" links (jobs/feedback_links.py): the payload (document, sector,
use case, reader) is signed under its own purpose (jobs/signing.py), so neither a feedback
nor an unsubscribe token can pass for one of these. The reader is named by
:func:`core.subscribers.email_ref` (a hash, never the address), and the decision log records
the add under that name. The page the link opens asks for one confirming click, so that mail
scanners that open every link add nothing; a forged or altered link is refused and nothing
is recorded.

    url = shortlist_url(settings, store, "2504.01234", "health", "diagnosis_support",
                        reader=email_ref("ana@example.org"))
    entry = add_from_token(store, settings, token)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from core.settings import Settings
from core.store import Store
from index.shortlists import Entry, add_entry
from jobs.signing import read_values, sign_values


@dataclass(frozen=True, slots=True)
class ShortlistLink:
    """What a valid token asks to do: shortlist ``document`` for ``sector/use_case``."""

    document: str
    sector: str
    use_case: str
    reader: str  # email_ref of the subscriber the digest was made for

    @property
    def target(self) -> str:
        return f"{self.sector}/{self.use_case}"


def make_token(
    settings: Settings,
    store: Store | None,
    document: str,
    sector: str,
    use_case: str,
    *,
    reader: str,
) -> str:
    return sign_values(settings, store, "shortlist", [document, sector, use_case, reader])


def shortlist_url(
    settings: Settings,
    store: Store | None,
    document: str,
    sector: str,
    use_case: str,
    *,
    reader: str,
) -> str:
    token = make_token(settings, store, document, sector, use_case, reader=reader)
    return f"{settings.public_url.rstrip('/')}/shortlist?token={quote(token, safe='')}"


def read_token(settings: Settings, store: Store | None, token: str) -> ShortlistLink:
    """What the token asks to do; ValueError when it is malformed, forged or altered."""
    invalid = ValueError("this shortlist link is invalid or has been altered")
    values = read_values(settings, store, "shortlist", token)
    if values is None:
        raise invalid
    well_formed = isinstance(values, list) and len(values) == 4
    if not (well_formed and all(isinstance(v, str) and v for v in values)):
        raise invalid
    return ShortlistLink(*values)


def add_from_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> Entry:
    """Check the token, then shortlist its document, logged as added by the reader's
    reference. ValueError for a bad token, KeyError when the document or use case no longer
    exists; nothing is recorded in either case. Adding twice changes nothing."""
    link = read_token(settings, store, token)
    return add_entry(store, settings, link.document, link.target, by=link.reader, now=now)
