"""Digest subscribers: the only personal data Veille holds, with consent and erasure.

A subscriber is an email address, the sectors (and optionally techniques) they chose, and
when and where they consented. An address without recorded consent, or unsubscribed, gets
nothing. ``digest_sends`` remembers which weekly digest went to whom; it lives here because
it is personal data too: :func:`export_subscriber` returns it and :func:`remove_subscriber`
erases it. The digest claims and records each send through :func:`claim_send`,
:func:`mark_send` and :func:`record_send_failure`: this module owns all three tables.

Example::

    add_subscriber(store, "ana@example.com", sectors=["finance"], consent=True,
                   taxonomy=load_taxonomy(settings))
    export_subscriber(store, "ana@example.com")["digests"]  # []
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from core.models import as_utc, naive_utc
from core.schema import digest_sends, subscribers
from core.schema import subscriber_consents as consent_log
from core.store import Store

# Deliberately strict: one @, a dotted domain, no spaces, quotes or control characters.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(slots=True)
class Subscriber:
    email: str
    sectors: list[str]
    techniques: list[str] = field(default_factory=list)
    consent_at: datetime | None = None
    consent_source: str = ""
    created: datetime | None = None
    unsubscribed: datetime | None = None

    @property
    def active(self) -> bool:
        """Receives the digest: consent recorded and not unsubscribed."""
        return self.consent_at is not None and self.unsubscribed is None


def _naive(moment: datetime | None) -> datetime:
    """``moment`` (default: the current time) as the naive UTC value the database stores."""
    return naive_utc(moment or datetime.now(UTC))


def normalize_email(email: str) -> str:
    """The address in canonical form, or ValueError naming it and what is wrong."""
    if not isinstance(email, str):
        raise ValueError(f"email address must be text, not {type(email).__name__}")
    value = unicodedata.normalize("NFC", email).strip()
    shown = repr(value[:80])
    if not value:
        raise ValueError("email address is empty")
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in value) or " " in value:
        raise ValueError(f"email address {shown} contains spaces or control characters")
    if len(value) > 254:
        raise ValueError(f"email address {shown} is longer than 254 characters")
    if value.count("@") != 1:
        raise ValueError(f"email address {shown} must contain exactly one '@'")
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        raise ValueError(f"email address {shown} has an invalid part before '@'")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError(f"email address {shown} has misplaced dots before '@'")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"email address {shown} has an invalid domain {domain!r}")
    return f"{local}@{domain.lower()}".lower()


def email_ref(email: str) -> str:
    """A short, stable stand-in for an address in logs and run records (``sub:1a2b3c4d5e``).

    Logs are kept and copied where erasure cannot reach; the reference lets an operator
    follow one person through them without the address being written anywhere.
    """
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return f"sub:{digest[:10]}"


def _split(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",")
    return [v.strip() for v in values if v and v.strip()]


class _Keyed(Protocol):
    key: str


class Choices(Protocol):
    """What validation needs from a taxonomy (``index.taxonomy.Taxonomy`` fits)."""

    sectors: tuple[_Keyed, ...]

    def sector(self, key: str) -> _Keyed: ...

    def technique(self, key: str) -> _Keyed: ...


def validate_choices(
    taxonomy: Choices, sectors: Iterable[str] | str, techniques: Iterable[str] | str | None
) -> tuple[list[str], list[str]]:
    """Sector and technique keys checked against the taxonomy (ValueError naming the bad one)."""
    sector_keys, technique_keys = [], []
    for name in _split(sectors):
        try:
            sector_keys.append(taxonomy.sector(name).key)
        except KeyError as exc:
            raise ValueError(f"sector {name!r}: {exc.args[0]}") from None
    for name in _split(techniques):
        try:
            technique_keys.append(taxonomy.technique(name).key)
        except KeyError as exc:
            raise ValueError(f"technique {name!r}: {exc.args[0]}") from None
    if not sector_keys:
        known = ", ".join(s.key for s in taxonomy.sectors)
        raise ValueError(f"choose at least one sector (known sectors: {known})")
    return list(dict.fromkeys(sector_keys)), list(dict.fromkeys(technique_keys))


def _row_to_subscriber(row: sa.Row) -> Subscriber:
    return Subscriber(
        email=row.email,
        sectors=list(row.sectors or []),
        techniques=list(row.techniques or []),
        consent_at=as_utc(row.consent_at),
        consent_source=row.consent_source,
        created=as_utc(row.created),
        unsubscribed=as_utc(row.unsubscribed),
    )


def add_subscriber(
    store: Store,
    email: str,
    *,
    sectors: Iterable[str] | str,
    techniques: Iterable[str] | str | None = None,
    consent: bool,
    taxonomy: Choices,
    source: str = "cli",
    now: datetime | None = None,
) -> Subscriber:
    """Subscribe (or re-subscribe, or update the choices of) an address.

    ``consent`` must be True: the person agreed to receive the digest; the time and
    ``source`` (cli, dashboard form, ...) are recorded. Without it nothing is stored.
    Sectors and techniques are checked against ``taxonomy`` (``load_taxonomy(settings)``).
    """
    address = normalize_email(email)
    if consent is not True:
        raise ValueError(
            f"refusing to subscribe {address}: no consent recorded "
            "(the person must agree to receive the digest; pass consent)"
        )
    source = (source or "").strip()[:200] or "unknown"
    sector_keys, technique_keys = validate_choices(taxonomy, sectors, techniques)
    moment = _naive(now)
    values = {
        "sectors": sector_keys,
        "techniques": technique_keys,
        "consent_at": moment,
        "consent_source": source,
        "unsubscribed": None,
    }
    with store.write() as conn:
        before = conn.execute(
            sa.select(subscribers.c.consent_at, subscribers.c.unsubscribed).where(
                subscribers.c.email == address
            )
        ).first()
        if before is None:
            conn.execute(subscribers.insert().values(email=address, created=moment, **values))
        else:
            conn.execute(
                subscribers.update().where(subscribers.c.email == address).values(**values)
            )
        active_before = before is not None and before[0] is not None and before[1] is None
        conn.execute(
            consent_log.insert().values(
                email=address,
                event="changed" if active_before else "subscribed",
                at=moment,
                source=source,
                sectors=sector_keys,
                techniques=technique_keys,
            )
        )
    found = get_subscriber(store, address)
    assert found is not None
    return found


def get_subscriber(store: Store, email: str) -> Subscriber | None:
    address = normalize_email(email)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(subscribers).where(subscribers.c.email == address)).first()
    return _row_to_subscriber(row) if row is not None else None


def list_subscribers(store: Store, *, active_only: bool = False) -> list[Subscriber]:
    """All subscribers by address; ``active_only`` keeps those who receive the digest."""
    query = sa.select(subscribers).order_by(subscribers.c.email)
    if active_only:
        query = query.where(
            subscribers.c.consent_at.is_not(None), subscribers.c.unsubscribed.is_(None)
        )
    with store.engine.connect() as conn:
        return [_row_to_subscriber(r) for r in conn.execute(query)]


def unsubscribe(
    store: Store, email: str, *, now: datetime | None = None, source: str = "link"
) -> bool:
    """Stop sending to ``email`` (the record of consent stays until removal). True if it
    was subscribed."""
    address = normalize_email(email)
    with store.write() as conn:
        row = conn.execute(
            sa.select(subscribers.c.sectors, subscribers.c.techniques).where(
                subscribers.c.email == address, subscribers.c.unsubscribed.is_(None)
            )
        ).first()
        if row is None:
            return False
        conn.execute(
            subscribers.update()
            .where(subscribers.c.email == address)
            .values(unsubscribed=_naive(now))
        )
        conn.execute(
            consent_log.insert().values(
                email=address,
                event="unsubscribed",
                at=_naive(now),
                source=source,
                sectors=list(row.sectors or []),
                techniques=list(row.techniques or []),
            )
        )
    return True


def remove_subscriber(store: Store, email: str) -> bool:
    """Erase everything this module holds about ``email`` (GDPR erasure): subscription,
    consent history and send history. True if anything was held.

    The store deletes securely (SQLite ``secure_delete``, then a WAL checkpoint), so the
    address does not linger in freed pages or the write-ahead log. Records owned by other
    modules (job runs, logs) are scrubbed by ``jobs.erasure.erase_subscriber``.
    """
    address = normalize_email(email)
    with store.write() as conn:
        gone = conn.execute(subscribers.delete().where(subscribers.c.email == address)).rowcount
        sends = conn.execute(digest_sends.delete().where(digest_sends.c.email == address))
        events = conn.execute(consent_log.delete().where(consent_log.c.email == address))
    store.checkpoint()
    return bool(gone or sends.rowcount or events.rowcount)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def export_subscriber(store: Store, email: str) -> dict[str, Any]:
    """Everything held about ``email`` as JSON-ready data (GDPR access request).

    KeyError when nothing is held about the address.
    """
    address = normalize_email(email)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(subscribers).where(subscribers.c.email == address)).first()
        sends = conn.execute(
            sa.select(digest_sends)
            .where(digest_sends.c.email == address)
            .order_by(digest_sends.c.week)
        ).all()
        history = conn.execute(
            sa.select(consent_log).where(consent_log.c.email == address).order_by(consent_log.c.id)
        ).all()
    if row is None and not sends and not history:
        raise KeyError(f"no data held about {address}")
    out: dict[str, Any] = {"email": address, "subscription": None}
    if row is not None:
        out["subscription"] = {
            "sectors": list(row.sectors or []),
            "techniques": list(row.techniques or []),
            "consent_at": _iso(row.consent_at),
            "consent_source": row.consent_source,
            "created": _iso(row.created),
            "unsubscribed": _iso(row.unsubscribed),
        }
    out["consent_history"] = [
        {
            "event": h.event,
            "at": _iso(h.at),
            "source": h.source,
            "sectors": list(h.sectors or []),
            "techniques": list(h.techniques or []),
        }
        for h in history
    ]
    out["digests"] = [
        {
            "week": s.week,
            "status": s.status,
            "attempts": s.attempts,
            "error": s.error,
            "sent_at": _iso(s.sent_at),
        }
        for s in sends
    ]
    return out


# -- the weekly sends: who got which week's digest ---------------------------------------


def _send_row(conn: sa.Connection, email: str, week: str) -> sa.Row | None:
    return conn.execute(
        sa.select(digest_sends).where(digest_sends.c.email == email, digest_sends.c.week == week)
    ).first()


def _first_send(
    conn: sa.Connection, email: str, week: str, status: str, error: str, moment: datetime
) -> None:
    conn.execute(
        digest_sends.insert().values(
            email=email, week=week, status=status, attempts=1, error=error, claimed_at=moment
        )
    )


def claim_send(
    store: Store, email: str, week: str, moment: datetime, max_attempts: int
) -> tuple[bool, str]:
    """Atomically take the right to send ``week``'s digest to ``email``: (claimed, status
    seen). Nothing is claimed for an address that is not subscribed (any more)."""
    try:
        with store.write() as conn:
            active = conn.execute(
                sa.select(subscribers.c.id).where(
                    subscribers.c.email == email,
                    subscribers.c.consent_at.is_not(None),
                    subscribers.c.unsubscribed.is_(None),
                )
            ).first()
            if active is None:
                return False, "inactive"
            row = _send_row(conn, email, week)
            if row is None:
                _first_send(conn, email, week, "sending", "", moment)
                return True, "new"
            if row.status == "failed" and row.attempts < max_attempts:
                taken = conn.execute(
                    digest_sends.update()
                    .where(
                        digest_sends.c.id == row.id,
                        digest_sends.c.status == "failed",
                        digest_sends.c.attempts == row.attempts,
                    )
                    .values(status="sending", attempts=row.attempts + 1, claimed_at=moment)
                )
                return taken.rowcount == 1, "failed"
            return False, row.status
    except sa.exc.IntegrityError:  # another sender inserted the same (email, week) first
        return False, "sending"


def record_send_failure(
    store: Store, email: str, week: str, moment: datetime, error: str, max_attempts: int
) -> str:
    """Record a digest that could not even be built as a failed attempt, so the next run
    tries again. Returns the status that now holds: failed, gave_up, sent or sending."""
    try:
        with store.write() as conn:
            row = _send_row(conn, email, week)
            if row is None:
                _first_send(conn, email, week, "failed", error, moment)
                return "failed"
            if row.status != "failed":
                return row.status
            if row.attempts >= max_attempts:
                return "gave_up"
            conn.execute(
                digest_sends.update()
                .where(digest_sends.c.id == row.id)
                .values(attempts=row.attempts + 1, error=error, claimed_at=moment)
            )
            return "failed"
    except sa.exc.IntegrityError:  # another sender recorded the same (email, week) first
        return "sending"


def mark_send(
    store: Store, email: str, week: str, *, status: str, error: str, sent_at: datetime | None = None
) -> None:
    """Record how a claimed send ended: "sent" (with ``sent_at``) or "failed" (with why)."""
    values: dict[str, object] = {"status": status, "error": error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    with store.write() as conn:
        conn.execute(
            digest_sends.update()
            .where(digest_sends.c.email == email, digest_sends.c.week == week)
            .values(**values)
        )


def week_sends(store: Store, week: str) -> tuple[dict[str, str], datetime | None]:
    """Status per address for ``week``, and when the week's first claim was made."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(digest_sends.c.email, digest_sends.c.status, digest_sends.c.claimed_at).where(
                digest_sends.c.week == week
            )
        ).all()
    first = min((r.claimed_at for r in rows if r.claimed_at is not None), default=None)
    return {r.email: r.status for r in rows}, first
