"""One story per innovation: a paper's arXiv versions, the news items that cite it and the code
or models its text links to; for a news item, the stored papers it cites. And, for the
shortlists, the evidence that appeared since an entry was last looked at.

The evidence of a shortlisted entry is recorded in ``shortlist_evidence`` (owned here): one row
per piece (a version, a code link, a news mention) the first time it is seen. A new row is
what "your shortlist: what changed this week" reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from core.models import Document, as_utc, naive_utc
from core.schema import shortlist_evidence as evidence
from core.store import Store, documents
from index.shortlists import entries

_ARXIV_ID = re.compile(r"(?<![\w.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\w])")
_ARXIV_PAPER = re.compile(r"^\d{4}\.\d{4,5}$")
_CODE = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|huggingface\.co|bitbucket\.org|"
    r"paperswithcode\.com)/[A-Za-z0-9_.\-/]+",
    re.I,
)
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(slots=True)
class Story:
    document: Document
    versions: list[tuple[str, str]] = field(default_factory=list)  # (v2, url)
    code: list[str] = field(default_factory=list)
    cited_by: list[Document] = field(default_factory=list)  # news items naming the paper
    cites: list[Document] = field(default_factory=list)  # stored papers a news item names


def code_links(text: str) -> list[str]:
    """Links to code or model repositories found in a text, in order, without repeats."""
    found: list[str] = []
    for match in _CODE.finditer(text or ""):
        url = match.group(0).rstrip(".,;:)/")
        if url not in found:
            found.append(url)
    return found


def _versions(doc: Document) -> list[tuple[str, str]]:
    match = _VERSION.match(str((doc.extra or {}).get("version") or ""))
    if doc.kind != "paper" or not _ARXIV_PAPER.match(doc.canonical_id) or not match:
        return []
    return [
        (f"v{n}", f"https://arxiv.org/abs/{doc.canonical_id}v{n}")
        for n in range(1, int(match.group(1)) + 1)
    ]


def citing_news(store: Store, doc: Document, *, limit: int = 50) -> list[Document]:
    """News items whose text or URL names this paper's arXiv id (newest first)."""
    if doc.kind != "paper" or not _ARXIV_PAPER.match(doc.canonical_id):
        return []
    pattern = f"%{doc.canonical_id}%"
    with store.engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(documents.c.id)
                .where(
                    documents.c.kind == "news",
                    sa.or_(documents.c.text.like(pattern), documents.c.url.like(pattern)),
                )
                .order_by(documents.c.published.desc())
                .limit(limit)
            )
        ]
    found = store.get_many(ids)
    # LIKE also matches "2601.000011"; keep the items where the id stands alone
    return [
        found[i]
        for i in ids
        if i in found and doc.canonical_id in _ARXIV_ID.findall(found[i].text + " " + found[i].url)
    ]


def cited_papers(store: Store, doc: Document) -> list[Document]:
    """The stored papers a news item names by arXiv id or abs/pdf URL."""
    if doc.kind != "news":
        return []
    out = []
    for arxiv_id in dict.fromkeys(_ARXIV_ID.findall(f"{doc.text} {doc.url}")):
        paper = store.by_canonical_id(arxiv_id)
        if paper is not None and paper.kind == "paper":
            out.append(paper)
    return out


def story(store: Store, doc: Document) -> Story:
    return Story(
        document=doc,
        versions=_versions(doc),
        code=code_links(f"{doc.text} {(doc.extra or {}).get('comment') or ''}"),
        cited_by=citing_news(store, doc),
        cites=cited_papers(store, doc),
    )


# -- evidence for the shortlists -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    entry_id: int
    canonical_id: str
    sector: str
    use_case: str
    kind: str
    detail: str
    seen: datetime

    @property
    def text(self) -> str:
        return {
            "version": f"new arXiv version {self.detail}",
            "code": f"code or model released: {self.detail}",
            "news": f"cited by a news item: {self.detail}",
        }.get(self.kind, self.detail)


def _pieces(store: Store, doc: Document) -> list[tuple[str, str]]:
    told = story(store, doc)
    pieces = [("version", told.versions[-1][0])] if told.versions else []
    pieces += [("code", url) for url in told.code]
    pieces += [("news", news.title[:500]) for news in told.cited_by]
    return pieces


def refresh_evidence(store: Store, *, now: datetime | None = None) -> int:
    """Record the evidence of every shortlisted entry not seen before; the number recorded.
    An entry's first look records what exists without calling it new (``seen`` is the
    entry's creation), so only later arrivals show up as "what changed"."""
    at = naive_utc(now or datetime.now(UTC))
    added = 0
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(entries).where(entries.c.removed.is_(None))).all()
        known = {
            (r.entry_id, r.kind, r.detail)
            for r in conn.execute(
                sa.select(evidence.c.entry_id, evidence.c.kind, evidence.c.detail)
            )
        }
        looked = {r[0] for r in conn.execute(sa.select(evidence.c.entry_id).distinct())}
    for row in rows:
        doc = store.by_canonical_id(row.canonical_id)
        if doc is None:
            continue
        first_look = row.id not in looked
        fresh = [
            (kind, detail)
            for kind, detail in _pieces(store, doc)
            if (row.id, kind, detail) not in known
        ]
        if first_look:
            fresh.append(("looked", ""))  # marks the entry as looked at, even with no evidence
        if not fresh:
            continue
        with store.write() as conn:
            for kind, detail in fresh:
                conn.execute(
                    evidence.insert().values(
                        entry_id=row.id,
                        kind=kind,
                        detail=detail,
                        seen=row.created if first_look else at,
                    )
                )
        added += sum(kind != "looked" for kind, _ in fresh)
    return added


def recent_evidence(
    store: Store,
    since: datetime,
    *,
    sectors: list[str] | None = None,
    canonical_id: str | None = None,
) -> list[Evidence]:
    """Evidence first seen at or after ``since`` about entries still on a board (of these
    ``sectors``, about this document when ``canonical_id`` is given)."""
    start = naive_utc(since)
    query = (
        sa.select(evidence, entries.c.canonical_id, entries.c.sector, entries.c.use_case)
        .select_from(evidence.join(entries, entries.c.id == evidence.c.entry_id))
        .where(evidence.c.seen >= start, evidence.c.kind != "looked", entries.c.removed.is_(None))
        .order_by(evidence.c.seen.desc(), evidence.c.id)
    )
    if sectors:
        query = query.where(entries.c.sector.in_(sectors))
    if canonical_id:
        query = query.where(entries.c.canonical_id == canonical_id)
    with store.engine.connect() as conn:
        return [
            Evidence(
                r.entry_id,
                r.canonical_id,
                r.sector,
                r.use_case,
                r.kind,
                r.detail,
                as_utc(r.seen),
            )
            for r in conn.execute(query)
        ]
