"""What users said about matches: "fits" or "does not fit", with who and when.

This module owns the ``feedback`` table. Answers are never overwritten: each one is a row,
and the verdict on an item is the **latest answer** for that (document, sector, use case) —
the rule the dashboard, the CLI and the digest show beside the item, with the count of
answers either way. The learned matcher (index/learner.py) trains on the verdicts at its next
training. Rows are keyed by the document's canonical id (arXiv id or canonical URL), so they
can be exchanged between teams as TSV and survive a document being re-crawled.

    record_feedback(store, settings, "2504.01234", sector="health", fits=True, by="ana")
    verdicts(store)[("2504.01234", "health", None)].fits   # True
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from core.markup import counted
from core.models import as_utc, naive_utc
from core.schema import feedback
from core.settings import Settings
from core.store import Store
from index.taxonomy import Taxonomy, load_taxonomy

ORIGINS = ("cli", "dashboard", "digest", "import", "api")
TSV_COLUMNS = ("document", "sector", "use_case", "verdict", "by", "origin", "when")


@dataclass(frozen=True, slots=True)
class Feedback:
    """One answer. ``use_case`` is None when the answer is about the sector as a whole."""

    id: int
    canonical_id: str
    sector: str
    use_case: str | None
    fits: bool
    by: str
    origin: str
    created: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """The resolved answer on one item: the latest wins; the counts are shown with it."""

    fits: bool
    by: str
    when: datetime
    fits_count: int
    not_fits_count: int

    @property
    def text(self) -> str:
        word = "fits" if self.fits else "does not fit"
        total = self.fits_count + self.not_fits_count
        who = f" by {self.by}" if self.by else ""
        if total == 1:
            return f"your team said it {word} ({who.strip() or 'one answer'}, {self.when:%Y-%m-%d})"
        return (
            f"your team says it {word}: {self.fits_count} fits, {self.not_fits_count} does not "
            f"fit; the latest answer{who} on {self.when:%Y-%m-%d} counts"
        )


def _naive(when: datetime | None) -> datetime:
    when = when or datetime.now(UTC)
    return naive_utc(when)


def _check_names(taxonomy: Taxonomy, sector: str, use_case: str | None) -> tuple[str, str | None]:
    """Taxonomy keys for a sector and use case; KeyError naming the unknown one."""
    sector_key = taxonomy.sector(sector).key
    if use_case is None or use_case == "":
        return sector_key, None
    uc = use_case.split("/", 1)[1] if "/" in use_case else use_case
    return sector_key, taxonomy.use_case(uc, sector_key).key


def record_feedback(
    store: Store,
    settings: Settings,
    identifier: str,
    *,
    sector: str,
    fits: bool,
    use_case: str | None = None,
    by: str = "",
    origin: str = "cli",
    now: datetime | None = None,
) -> Feedback:
    """Store one answer about a stored document; KeyError names an unknown document, sector
    or use case (and nothing is recorded)."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown feedback origin {origin!r}; known: {', '.join(ORIGINS)}")
    doc = store.resolve(identifier)
    if doc is None:
        raise KeyError(f"unknown document {identifier!r}: no stored document has this id or URL")
    sector_key, uc_key = _check_names(load_taxonomy(settings), sector, use_case)
    created = _naive(now)
    values = {
        "canonical_id": doc.canonical_id,
        "sector": sector_key,
        "use_case": uc_key,
        "fits": bool(fits),
        "by": by.strip()[:200],
        "origin": origin,
        "created": created,
    }
    with store.write() as conn:
        new_id = conn.execute(feedback.insert().values(**values)).inserted_primary_key[0]
    return Feedback(id=int(new_id), **{**values, "created": as_utc(created)})


def feedback_rows(store: Store, canonical_ids: Iterable[str] | None = None) -> list[Feedback]:
    """Every answer (oldest first), or those about the given documents."""
    query = sa.select(feedback).order_by(feedback.c.created, feedback.c.id)
    wanted = None if canonical_ids is None else list(dict.fromkeys(canonical_ids))
    out = []
    with store.engine.connect() as conn:
        parts = (
            [None] if wanted is None else [wanted[i : i + 500] for i in range(0, len(wanted), 500)]
        )
        for part in parts:
            q = query if part is None else query.where(feedback.c.canonical_id.in_(part))
            for r in conn.execute(q):
                out.append(
                    Feedback(
                        r.id,
                        r.canonical_id,
                        r.sector,
                        r.use_case,
                        bool(r.fits),
                        r.by,
                        r.origin,
                        as_utc(r.created),
                    )
                )
    out.sort(key=lambda f: (f.created, f.id))
    return out


def resolve(rows: Iterable[Feedback]) -> dict[tuple[str, str, str | None], Verdict]:
    """Latest answer wins per (document, sector, use case), with the counts either way."""
    out: dict[tuple[str, str, str | None], Verdict] = {}
    for row in sorted(rows, key=lambda f: (f.created, f.id)):
        key = (row.canonical_id, row.sector, row.use_case)
        before = out.get(key)
        yes = (before.fits_count if before else 0) + (1 if row.fits else 0)
        no = (before.not_fits_count if before else 0) + (0 if row.fits else 1)
        out[key] = Verdict(row.fits, row.by, row.created, yes, no)
    return out


def verdicts(
    store: Store, canonical_ids: Iterable[str] | None = None
) -> dict[tuple[str, str, str | None], Verdict]:
    return resolve(feedback_rows(store, canonical_ids))


def feedback_mark(store: Store) -> str:
    """Changes whenever an answer is added: the learned matcher retrains when it does."""
    with store.engine.connect() as conn:
        count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(feedback.c.id))).one()
    return f"{int(count)}:{int(last or 0)}"


def orphaned(store: Store, taxonomy: Taxonomy) -> list[Feedback]:
    """Answers whose sector or use case is no longer in the taxonomy: kept, not trained on."""
    sectors = {s.key for s in taxonomy.sectors}
    cases = {(uc.sector, uc.key) for uc in taxonomy.use_cases}
    return [
        f
        for f in feedback_rows(store)
        if f.sector not in sectors
        or (f.use_case is not None and (f.sector, f.use_case) not in cases)
    ]


# -- exchange as TSV -----------------------------------------------------------------------


def export_tsv(store: Store) -> str:
    """All answers as TSV (header ``document sector use_case verdict by origin when``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for f in feedback_rows(store):
        writer.writerow(
            [
                f.canonical_id,
                f.sector,
                f.use_case or "",
                "fits" if f.fits else "does_not_fit",
                f.by,
                f.origin,
                f.created.isoformat(),
            ]
        )
    return buffer.getvalue()


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    already: int = 0
    not_in_store: int = 0
    documents: list[str] = field(default_factory=list)  # canonical ids of the added answers


def import_tsv(store: Store, settings: Settings, text: str, *, source: str = "TSV") -> ImportReport:
    """Add the answers of an exported TSV. Every line is checked first: one bad line raises
    ValueError naming the source and line, and nothing is recorded. Answers already present
    (same document, sector, use case, verdict, author and time) are skipped, so importing
    the same file twice adds nothing. Answers about documents this store does not hold are
    kept; they count once those documents are collected."""
    taxonomy = load_taxonomy(settings)
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    rows: list[dict] = []
    errors: list[str] = []
    for number, fields in enumerate(reader, start=1):
        if not fields or (number == 1 and fields[0] == "document"):
            continue
        if len(fields) != len(TSV_COLUMNS):
            errors.append(f"line {number}: {len(fields)} fields, expected {len(TSV_COLUMNS)}")
            continue
        doc, sector, use_case, verdict, by, origin, when = fields
        try:
            sector_key, uc_key = _check_names(taxonomy, sector, use_case or None)
        except KeyError as exc:
            errors.append(f"line {number}: {exc.args[0]}")
            continue
        if verdict not in ("fits", "does_not_fit"):
            errors.append(f"line {number}: verdict must be fits or does_not_fit, not {verdict!r}")
            continue
        try:
            created = as_utc(when)
        except ValueError:
            errors.append(f"line {number}: {when!r} is not an ISO date")
            continue
        if not doc.strip():
            errors.append(f"line {number}: empty document id")
            continue
        rows.append(
            {
                "canonical_id": doc.strip(),
                "sector": sector_key,
                "use_case": uc_key,
                "fits": verdict == "fits",
                "by": by.strip()[:200],
                "origin": origin if origin in ORIGINS else "import",
                "created": _naive(created),
            }
        )
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise ValueError(f"{source}: nothing imported, {counted(len(errors), 'bad line')}: {shown}")
    existing = {
        (f.canonical_id, f.sector, f.use_case, f.fits, f.by, naive_utc(f.created))
        for f in feedback_rows(store, [r["canonical_id"] for r in rows])
    }
    report = ImportReport()
    fresh = []
    for r in rows:
        key = (r["canonical_id"], r["sector"], r["use_case"], r["fits"], r["by"], r["created"])
        if key in existing:
            report.already += 1
            continue
        existing.add(key)
        fresh.append(r)
        if store.resolve(r["canonical_id"]) is None:
            report.not_in_store += 1
    if fresh:
        with store.write() as conn:
            conn.execute(feedback.insert(), fresh)
    report.added = len(fresh)
    report.documents = list(dict.fromkeys(r["canonical_id"] for r in fresh))
    return report
