"""Shortlists: innovations a project lead follows for a use case, from "new" to "adopted" or
"rejected", with an owner, notes and a decision log.

This module owns two tables. ``shortlist_entries`` holds one row per (document, use case): its
status, owner, notes, and when it was removed (a removed entry keeps its history).
``shortlist_log`` is the decision log: one line per change (who, when, what, why). It is
append-only: the database itself refuses to update or delete a line (triggers on SQLite and
PostgreSQL, made by migration 0001), so the history cannot be rewritten through Veille or
behind its back.

Example::

    entry = add_entry(store, settings, "2504.01234", "health/diagnosis_support", by="ana")
    move_entry(store, settings, entry.id, "pilot", by="ana", reason="radiology wants it")
    [e.status for e in list_entries(store, settings, sector="health")]   # ['pilot']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from core.models import as_utc, from_row, naive_utc
from core.schema import shortlist_entries as entries
from core.schema import shortlist_log as log_lines
from core.settings import Settings
from core.store import Store
from index.taxonomy import load_taxonomy

STATUSES: tuple[str, ...] = ("new", "to_evaluate", "pilot", "adopted", "rejected")
STATUS_LABELS = {
    "new": "New",
    "to_evaluate": "To evaluate",
    "pilot": "Pilot",
    "adopted": "Adopted",
    "rejected": "Rejected",
}
# A shape per status, so that a status never rests on colour alone (board, exports, emails).
STATUS_MARKS = {"new": "○", "to_evaluate": "◐", "pilot": "▶", "adopted": "✔", "rejected": "✖"}
MAX_NOTE = 5_000
MAX_NAME = 120


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    by: str
    action: str
    old: str
    new: str
    reason: str

    @property
    def text(self) -> str:
        who = self.by or "someone"
        when = self.at.strftime("%Y-%m-%d %H:%M")
        if self.action == "moved":
            what = f"moved it from {STATUS_LABELS.get(self.old, self.old)} to "
            what += STATUS_LABELS.get(self.new, self.new)
        elif self.action == "owner":
            what = f"gave it to {self.new or 'nobody'}"
        elif self.action == "note":
            what = "added a note"
        else:
            what = {
                "added": "shortlisted it",
                "removed": "removed it",
                "restored": "put it back on the shortlist",
            }.get(self.action, self.action)
        return f"{when} {who} {what}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    canonical_id: str
    sector: str
    use_case: str
    status: str
    owner: str
    notes: str
    created: datetime
    updated: datetime
    removed: datetime | None

    @property
    def target(self) -> str:
        return f"{self.sector}/{self.use_case}"

    @property
    def status_text(self) -> str:
        return f"{STATUS_MARKS[self.status]} {STATUS_LABELS[self.status]}"


def _now(now: datetime | None) -> datetime:
    return naive_utc(now or datetime.now(UTC))


def _entry(row: sa.Row) -> Entry:
    return from_row(Entry, row, times=("created", "updated", "removed"))


def _check_text(value: str | None, what: str, limit: int) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def check_status(status: str) -> str:
    wanted = (status or "").strip().lower().replace(" ", "_").replace("-", "_")
    if wanted not in STATUSES:
        raise ValueError(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
    return wanted


def resolve_use_case(settings: Settings, target: str) -> tuple[str, str]:
    """``sector/use_case`` (keys or names) to keys; KeyError names the unknown part."""
    if "/" not in (target or ""):
        raise KeyError(
            f"use case {target!r} must read SECTOR/USE_CASE, e.g. finance/fraud_detection"
        )
    sector_part, uc_part = target.split("/", 1)
    taxonomy = load_taxonomy(settings)
    sector = taxonomy.sector(sector_part.strip())
    return sector.key, taxonomy.use_case(uc_part.strip(), sector.key).key


def _write_log(conn, entry_id: int, at: datetime, by: str, action: str, **values: str) -> None:
    conn.execute(
        log_lines.insert().values(
            entry_id=entry_id,
            at=at,
            by=by,
            action=action,
            old=values.get("old", ""),
            new=values.get("new", ""),
            reason=values.get("reason", ""),
        )
    )


def add_entry(
    store: Store,
    settings: Settings,
    identifier: str,
    use_case: str,
    *,
    by: str = "",
    owner: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Entry:
    """Shortlist a stored document for ``sector/use_case`` (status "new"). Adding it again
    brings back a removed entry and otherwise changes nothing. KeyError names an unknown
    document or use case; ValueError a note or name over its limit."""
    sector, uc = resolve_use_case(settings, use_case)
    doc = store.resolve((identifier or "").strip())
    if doc is None:
        raise KeyError(f"unknown document {identifier!r}: no stored document has this id or URL")
    by = _check_text(by, "the name", MAX_NAME)
    owner = _check_text(owner, "the owner", MAX_NAME)
    note = _check_text(note, "the note", MAX_NOTE)
    at = _now(now)
    with store.write() as conn:
        row = conn.execute(
            sa.select(entries).where(
                entries.c.canonical_id == doc.canonical_id,
                entries.c.sector == sector,
                entries.c.use_case == uc,
            )
        ).first()
        if row is None:
            entry_id = conn.execute(
                entries.insert().values(
                    canonical_id=doc.canonical_id,
                    sector=sector,
                    use_case=uc,
                    status="new",
                    owner=owner,
                    notes=note,
                    created=at,
                    updated=at,
                    removed=None,
                )
            ).inserted_primary_key[0]
            _write_log(conn, entry_id, at, by, "added", new="new", reason=note)
        else:
            entry_id = row.id
            if row.removed is not None:
                conn.execute(
                    entries.update()
                    .where(entries.c.id == entry_id)
                    .values(removed=None, updated=at)
                )
                _write_log(conn, entry_id, at, by, "restored", new=row.status, reason=note)
        row = conn.execute(sa.select(entries).where(entries.c.id == entry_id)).one()
    return _entry(row)


def get_entry(store: Store, entry_id: int) -> Entry:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(entries).where(entries.c.id == int(entry_id))).first()
    if row is None:
        raise KeyError(f"no shortlist entry number {entry_id}")
    return _entry(row)


def find_entry(store: Store, settings: Settings, identifier: str, use_case: str) -> Entry:
    """The entry of a document for a use case; KeyError when there is none."""
    sector, uc = resolve_use_case(settings, use_case)
    doc = store.resolve((identifier or "").strip())
    if doc is not None:
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(entries).where(
                    entries.c.canonical_id == doc.canonical_id,
                    entries.c.sector == sector,
                    entries.c.use_case == uc,
                )
            ).first()
        if row is not None:
            return _entry(row)
    raise KeyError(f"{identifier!r} is not on the shortlist of {sector}/{uc}")


def _change(
    store: Store,
    entry_id: int,
    *,
    by: str,
    reason: str,
    now: datetime | None,
    action: str,
    column: str | None,
    value: str,
) -> Entry:
    by = _check_text(by, "the name", MAX_NAME)
    reason = _check_text(reason, "the reason", MAX_NOTE)
    at = _now(now)
    with store.write() as conn:
        row = conn.execute(sa.select(entries).where(entries.c.id == int(entry_id))).first()
        if row is None:
            raise KeyError(f"no shortlist entry number {entry_id}")
        old = getattr(row, column) if column else ""
        if action == "moved" and old == value:
            raise ValueError(
                f"shortlist entry #{row.id} is already {STATUS_LABELS.get(value, value)}: "
                "choose another status"
            )
        values: dict = {"updated": at}
        if column == "notes":
            stamp = f"[{at:%Y-%m-%d} {by or 'someone'}] {value}"
            values["notes"] = _check_text(
                f"{row.notes}\n{stamp}".strip(), "the notes together", MAX_NOTE * 4
            )
        elif column:
            values[column] = value
        if action == "removed":
            values["removed"] = at
        conn.execute(entries.update().where(entries.c.id == row.id).values(**values))
        logged = value if column != "notes" else ""
        _write_log(
            conn,
            row.id,
            at,
            by,
            action,
            old=old if column != "notes" else "",
            new=logged,
            reason=reason or (value if column == "notes" else ""),
        )
        row = conn.execute(sa.select(entries).where(entries.c.id == row.id)).one()
    return _entry(row)


def move_entry(
    store: Store,
    settings: Settings,
    entry_id: int,
    status: str,
    *,
    by: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> Entry:
    """Give an entry a new status, logging who, when and why."""
    return _change(
        store,
        entry_id,
        by=by,
        reason=reason,
        now=now,
        action="moved",
        column="status",
        value=check_status(status),
    )


def set_owner(
    store: Store, entry_id: int, owner: str, *, by: str = "", now: datetime | None = None
) -> Entry:
    owner = _check_text(owner, "the owner", MAX_NAME)
    return _change(
        store, entry_id, by=by, reason="", now=now, action="owner", column="owner", value=owner
    )


def add_note(
    store: Store, entry_id: int, note: str, *, by: str = "", now: datetime | None = None
) -> Entry:
    note = _check_text(note, "the note", MAX_NOTE)
    if not note:
        raise ValueError("the note is empty")
    return _change(
        store, entry_id, by=by, reason="", now=now, action="note", column="notes", value=note
    )


def remove_entry(
    store: Store, entry_id: int, *, by: str = "", reason: str = "", now: datetime | None = None
) -> Entry:
    """Take an entry off the board; its log stays (adding it again restores it)."""
    return _change(
        store, entry_id, by=by, reason=reason, now=now, action="removed", column=None, value=""
    )


def list_entries(
    store: Store,
    settings: Settings,
    *,
    sector: str | None = None,
    use_case: str | None = None,
    status: str | None = None,
    include_removed: bool = False,
) -> list[Entry]:
    """Entries, newest change first; filters take keys or names."""
    query = sa.select(entries).order_by(entries.c.updated.desc(), entries.c.id.desc())
    if use_case:
        sector_key, uc_key = resolve_use_case(settings, use_case)
        query = query.where(entries.c.sector == sector_key, entries.c.use_case == uc_key)
    elif sector:
        query = query.where(entries.c.sector == load_taxonomy(settings).sector(sector).key)
    if status:
        query = query.where(entries.c.status == check_status(status))
    if not include_removed:
        query = query.where(entries.c.removed.is_(None))
    with store.engine.connect() as conn:
        return [_entry(r) for r in conn.execute(query)]


def revision(store: Store) -> int:
    """A number that grows with every change to any shortlist (the newest log line's id):
    views computed from the shortlists are cached on it. The log is append-only, so a change
    can never leave it where it was."""
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(log_lines.c.id))).scalar() or 0)


def history(store: Store, entry_id: int) -> list[LogLine]:
    """The decision log of an entry, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(log_lines)
            .where(log_lines.c.entry_id == int(entry_id))
            .order_by(log_lines.c.id)
        )
        return [LogLine(as_utc(r.at), r.by, r.action, r.old, r.new, r.reason) for r in rows]
