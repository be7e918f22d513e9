"""Sending the weekly digest: at most once per person and ISO week, every outcome recorded.

A ``digest_sends`` row is claimed atomically *before* the message goes out and marked
``sent`` or ``failed`` after (through :mod:`core.subscribers`, which owns the table). A run
that dies in between leaves the row ``sending``; it is reported as uncertain and never
resent. A digest that cannot be built is recorded ``failed`` too. ``failed`` rows are
retried by later runs (up to ``MAX_ATTEMPTS``); one bad address, and a database locked for a
moment, do not stop the others: every subscriber of a run ends sent, failed (with the
reason), deferred (retried by the next run), given up or uncertain. Logs name people by
:func:`core.subscribers.email_ref`, never by address.

What a digest holds is :mod:`jobs.digest`; the message, :mod:`jobs.digest_render`; the SMTP
connection, :mod:`jobs.mailer`.

Example::

    report = send_digests(store, settings)
    report.sent, report.failed
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from core.db import DatabaseBusy, retry_busy
from core.models import as_utc, naive_utc
from core.settings import ConfigError, Settings, is_loopback_host
from core.store import Store
from core.subscribers import (
    Subscriber,
    claim_send,
    email_ref,
    list_subscribers,
    mark_send,
    record_send_failure,
    week_sends,
)
from jobs.control import checkpoint
from jobs.digest import build_digest
from jobs.digest_render import clean, make_message
from jobs.digest_week import WeekContext, iso_week, week_context
from jobs.mailer import Mailer, SMTPMailer, check_smtp_security

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@dataclass(slots=True)
class SendReport:
    """Where every subscriber of a run ended: each address is in exactly one list."""

    week: str
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # recorded; retried by a later run
    gave_up: list[str] = field(default_factory=list)  # failed MAX_ATTEMPTS times
    uncertain: list[str] = field(default_factory=list)  # a run died mid-send: not resent
    # The database stayed locked: nothing was sent or recorded; the next run tries again.
    deferred: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.deferred

    def summary(self) -> str:
        parts = [f"week {self.week}: {len(self.sent)} sent"]
        if self.already_sent:
            parts.append(f"{len(self.already_sent)} already sent")
        if self.failed:
            parts.append(f"{len(self.failed)} failed (retried later)")
        if self.deferred:
            parts.append(f"{len(self.deferred)} deferred (database busy; retried later)")
        if self.gave_up:
            parts.append(f"{len(self.gave_up)} given up after {MAX_ATTEMPTS} attempts")
        if self.uncertain:
            parts.append(f"{len(self.uncertain)} uncertain (a previous run stopped mid-send)")
        return ", ".join(parts)


def _redact(text: str, email: str) -> str:
    """``text`` with the address replaced by its reference (for logs)."""
    return re.sub(re.escape(email), email_ref(email), text, flags=re.IGNORECASE)


def check_delivery_settings(settings: Settings) -> None:
    """Refuse to send digests whose links cannot work: ConfigError naming the setting.

    ``public_url`` must be an http(s) address that subscribers can reach; one on this
    machine only (the default, http://127.0.0.1:8600) is accepted only with
    ``allow_loopback_public_url`` (``veille digest --send --allow-loopback-links``), for
    trying Veille out or testing.
    """
    url = settings.public_url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"VEILLE_PUBLIC_URL (public_url) = {url!r} is not an http(s) address; set it to "
            "the API's address as subscribers reach it, e.g. https://veille.example.com"
        )
    if is_loopback_host(parts.hostname) and not settings.allow_loopback_public_url:
        raise ConfigError(
            f"refusing to send digests: VEILLE_PUBLIC_URL (public_url) = {url!r} points at "
            "this machine, so the unsubscribe and feedback links in every email would open "
            "nothing for subscribers. Set VEILLE_PUBLIC_URL to the API's public address, "
            "or, to try Veille on this machine, pass --allow-loopback-links "
            "(VEILLE_ALLOW_LOOPBACK_PUBLIC_URL=true)"
        )
    check_smtp_security(settings)


def send_digests(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    mailer: Mailer | None = None,
    retry_only: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
    only: Iterable[str] | None = None,
) -> SendReport:
    """Send this week's digest to every active subscriber who has not had it yet.

    Every subscriber of the run ends in exactly one list of the report, and every failure
    (a digest that could not be built, a refused address, a dropped connection) is
    recorded in ``digest_sends`` so a later run retries it. A database that stays locked
    defers the person (``report.deferred``); the next run, the retry job included, picks
    them up.

    ``retry_only`` (the retry job) sends to those whose attempt this week failed or was
    deferred, never to someone who subscribed after the week's digest went out; ``only``
    restricts the run to some addresses. Never raises for one address; ConfigError (before
    anything is sent or recorded) when the settings would send broken links.
    """
    check_delivery_settings(settings)
    now = as_utc(now or datetime.now(UTC))
    week = iso_week(now, settings)
    report = SendReport(week=week)
    done, first_claim = week_sends(store, week)
    people = list_subscribers(store, active_only=True)
    if only is not None:
        wanted = {e.strip().lower() for e in only}
        people = [p for p in people if p.email in wanted]
    todo = []
    for person in people:
        status = done.get(person.email)
        if retry_only and status is None:
            # Deferred by an earlier run of this week (nothing recorded): retried. Someone
            # who subscribed after that run waits for next week's digest.
            earlier = first_claim is not None and (
                person.consent_at is None or naive_utc(person.consent_at) <= first_claim
            )
            if not earlier:
                continue
        elif retry_only and status != "failed":
            continue
        if status == "sent":
            report.already_sent.append(person.email)
        elif status == "sending":  # a run died mid-send: the outcome is unknown, never resend
            report.uncertain.append(person.email)
        else:
            todo.append(person)
    if not todo:
        log.info("digest %s", report.summary())
        return report
    ctx: WeekContext | None = None
    ctx_error = ""
    try:
        ctx = week_context(store, settings, now=now)
    except Exception as exc:  # every digest needs it: each person gets a recorded failure
        log.exception("the week's trends could not be computed for the digest")
        ctx_error = f"{type(exc).__name__}: {exc}"
    own_mailer = mailer is None
    mailer = mailer or SMTPMailer(settings)
    try:
        for person in todo:
            checkpoint()  # a stopped job (lost lease, deadline) stops between two people
            _deliver(
                store, settings, person, week, now, ctx, ctx_error, mailer, max_attempts, report
            )
    finally:
        if own_mailer:
            mailer.close()
    log.info("digest %s", report.summary())
    return report


def _deliver(
    store: Store,
    settings: Settings,
    person: Subscriber,
    week: str,
    now: datetime,
    ctx: WeekContext | None,
    ctx_error: str,
    mailer: Mailer,
    max_attempts: int,
    report: SendReport,
) -> None:
    """Build, claim, send and record one digest; the outcome goes into ``report``."""
    email, ref, moment = person.email, email_ref(person.email), naive_utc(now)
    try:
        if ctx is None:
            raise RuntimeError(f"the week's trends could not be computed: {ctx_error}")
        digest = build_digest(store, settings, person, now=now, context=ctx)
        message = make_message(settings, digest, now=now)
    except Exception as exc:  # a broken digest for one person must not stop the rest
        reason = clean(f"build failed: {type(exc).__name__}: {exc}", 500)
        log.warning("could not build the digest for %s: %s", ref, _redact(reason, email))
        try:
            status = retry_busy(
                lambda: record_send_failure(store, email, week, moment, reason, max_attempts),
                "recording a failed build",
            )
        except DatabaseBusy as busy:
            report.deferred[email] = f"{reason}; {busy}"
            return
        if status == "failed":
            report.failed[email] = reason
        elif status == "gave_up":
            report.gave_up.append(email)
        elif status == "sent":
            report.already_sent.append(email)
        else:
            report.uncertain.append(email)
        return
    try:
        claimed, seen = retry_busy(
            lambda: claim_send(store, email, week, moment, max_attempts), "claiming the send"
        )
    except DatabaseBusy as busy:
        log.warning("digest to %s deferred: %s", ref, busy)
        report.deferred[email] = str(busy)
        return
    if not claimed:
        if seen == "sent":
            report.already_sent.append(email)
        elif seen == "failed":
            report.gave_up.append(email)
        elif seen == "sending":  # another run holds it, or one died mid-send
            report.uncertain.append(email)
        # inactive: unsubscribed while the run went on; nothing to send or record
        return
    try:
        mailer.send(message)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
        error = clean(f"{type(exc).__name__}: {exc}", 500)
        log.warning("digest to %s failed: %s", ref, _redact(error, email))
        report.failed[email] = error
        try:
            retry_busy(
                lambda: mark_send(store, email, week, status="failed", error=error),
                "recording a failed send",
            )
        except DatabaseBusy as busy:
            # The row stays 'sending': reported as uncertain by later runs, never resent.
            report.failed[email] = f"{error}; {busy}"
        return
    report.sent.append(email)
    try:
        retry_busy(
            lambda: mark_send(store, email, week, status="sent", error="", sent_at=moment),
            "recording a sent digest",
        )
    except DatabaseBusy as busy:
        # Sent, but the row stays 'sending': later runs report it uncertain and never resend.
        log.warning("digest to %s sent but not recorded: %s", ref, busy)
