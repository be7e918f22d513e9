"""Signed one-click "fits / does not fit" links for the digest.

A link carries the document, the sector, the use case and the answer, signed with the same
key as the unsubscribe links under its own purpose (jobs/signing.py), so one kind of token
can never pass for the other. The page it opens (dashboard, Feedback) shows what will
be recorded and asks for one confirming click, so that mail scanners that open every link
record nothing. A forged or altered link is refused and nothing is recorded. The subscriber's
address is not put in the link nor stored with the answer: the answer is recorded as coming
from "a digest reader".

    url = feedback_url(settings, store, "2504.01234", "health", "diagnosis_support", fits=True)
    answer = record_from_token(store, settings, token)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from core.settings import Settings
from core.store import Store
from index.feedback import Feedback, record_feedback
from jobs.signing import read_values, sign_values

DIGEST_READER = "a digest reader"


@dataclass(frozen=True, slots=True)
class FeedbackLink:
    """What a valid token asks to record."""

    document: str
    sector: str
    use_case: str | None
    fits: bool


def make_token(
    settings: Settings,
    store: Store | None,
    document: str,
    sector: str,
    use_case: str | None,
    *,
    fits: bool,
) -> str:
    values = [document, sector, use_case or "", 1 if fits else 0]
    return sign_values(settings, store, "feedback", values)


def feedback_url(
    settings: Settings,
    store: Store | None,
    document: str,
    sector: str,
    use_case: str | None,
    *,
    fits: bool,
) -> str:
    token = make_token(settings, store, document, sector, use_case, fits=fits)
    return f"{settings.public_url.rstrip('/')}/feedback?token={quote(token, safe='')}"


def read_token(settings: Settings, store: Store | None, token: str) -> FeedbackLink:
    """What the token asks to record; ValueError when it is malformed, forged or altered."""
    invalid = ValueError("this feedback link is invalid or has been altered")
    values = read_values(settings, store, "feedback", token)
    try:
        document, sector, use_case, fits = values or ()
    except ValueError:
        raise invalid from None
    if not (isinstance(document, str) and isinstance(sector, str) and fits in (0, 1)):
        raise invalid
    return FeedbackLink(document, sector, use_case or None, bool(fits))


def record_from_token(
    store: Store, settings: Settings, token: str, *, now: datetime | None = None
) -> Feedback:
    """Check the token, then record its answer (origin "digest"). ValueError for a bad token,
    KeyError when the document, sector or use case no longer exists; nothing is recorded
    in either case. The document's matches follow the answer at once."""
    from index.matching import follow_answers  # noqa: PLC0415 - loads the matcher

    link = read_token(settings, store, token)
    answer = record_feedback(
        store,
        settings,
        link.document,
        sector=link.sector,
        use_case=link.use_case,
        fits=link.fits,
        by=DIGEST_READER,
        origin="digest",
        now=now,
    )
    follow_answers(store, settings, [answer.canonical_id])
    return answer
