"""Opportunity cards: a shortlist entry with everything an ideation workshop needs.

A card holds the summary, the fit and why (relevance), the maturity and momentum with what
they rest on, the opportunity total, the status with its decision log, and links. Cards are
exported to Markdown (a handout) and CSV (a spreadsheet); crawled text is escaped in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.settings import Settings
from core.store import Store
from index.opportunity import Opportunity, Scorer
from index.reports import md_escape, md_link, safe_url, to_csv
from index.search import make_snippet, published_str
from index.shortlists import STATUS_LABELS, STATUS_MARKS, Entry, history
from index.taxonomy import load_taxonomy

SUMMARY_CHARS = 600


@dataclass(slots=True)
class Card:
    entry: Entry
    title: str
    url: str | None
    published: str | None
    kind: str
    summary: str
    use_case_name: str
    sector_name: str
    opportunity: Opportunity
    log: list[str]

    @property
    def latest(self) -> str:
        """The newest line of the decision log ("" when there is none)."""
        return self.log[-1] if self.log else ""

    def row(self) -> dict[str, Any]:
        parts = self.opportunity.parts
        return {
            "entry": self.entry.id,
            "id": self.entry.canonical_id,
            "title": self.title,
            "status": STATUS_LABELS[self.entry.status],
            "sector": self.sector_name,
            "use case": self.use_case_name,
            "owner": self.entry.owner,
            "opportunity": self.opportunity.total,
            "relevance": parts["relevance"],
            "maturity": parts["maturity"],
            "momentum": parts["momentum"],
            "why": self.opportunity.notes["relevance"],
            "maturity signals": self.opportunity.notes["maturity"],
            "momentum detail": self.opportunity.notes["momentum"],
            "published": self.published or "",
            "url": self.url or "",
            "notes": self.entry.notes,
            "log": " | ".join(self.log),
        }


def make_cards(
    store: Store, settings: Settings, items: list[Entry], *, now: datetime | None = None
) -> list[Card]:
    """Cards for entries, best opportunity first within each status of the board's order."""
    if not items:
        return []
    taxonomy = load_taxonomy(settings)
    sector_names = {s.key: s.name for s in taxonomy.sectors}
    uc_names = {uc.key: uc.name for uc in taxonomy.use_cases}
    scorer = Scorer(store, settings, now=now)
    cards = []
    for entry in items:
        doc = store.resolve(entry.canonical_id)
        if doc is None:
            continue
        summary = doc.text
        if len(summary) > SUMMARY_CHARS:
            summary = make_snippet(doc.text, doc.title, SUMMARY_CHARS)
        cards.append(
            Card(
                entry=entry,
                title=doc.title,
                url=safe_url(doc.url),
                published=published_str(doc),
                kind=doc.kind,
                summary=summary,
                use_case_name=uc_names.get(entry.use_case, entry.use_case),
                sector_name=sector_names.get(entry.sector, entry.sector),
                opportunity=scorer.score(entry.canonical_id, entry.sector, entry.use_case),
                log=[line.text for line in history(store, entry.id)],
            )
        )
    cards.sort(key=lambda c: -c.opportunity.total)
    return cards


def filter_cards(
    cards: list[Card],
    *,
    use_case: str | None = None,
    owner: str | None = None,
    statuses: list[str] | None = None,
    text: str | None = None,
) -> list[Card]:
    """The cards of one use case (key), one owner ("" for nobody: pass None for any), some
    statuses, and holding every word of ``text`` (in the title, summary, notes, owner or
    use case, any case)."""
    words = (text or "").lower().split()
    out = []
    for card in cards:
        if use_case and card.entry.use_case != use_case:
            continue
        if owner is not None and card.entry.owner != owner:
            continue
        if statuses is not None and card.entry.status not in statuses:
            continue
        if words:
            haystack = " ".join(
                (card.title, card.summary, card.entry.notes, card.entry.owner, card.use_case_name)
            ).lower()
            if not all(w in haystack for w in words):
                continue
        out.append(card)
    return out


def cards_csv(cards: list[Card]) -> str:
    return to_csv([c.row() for c in cards])


def cards_markdown(cards: list[Card], *, title: str) -> str:
    """A workshop handout: one section per use case, one card per innovation."""
    lines = [f"# {md_escape(title)}", ""]
    if not cards:
        lines.append("The shortlist is empty.")
        return "\n".join(lines) + "\n"
    by_use_case: dict[str, list[Card]] = {}
    for card in cards:
        by_use_case.setdefault(f"{card.sector_name} › {card.use_case_name}", []).append(card)
    for name, group in by_use_case.items():
        lines += [f"## {md_escape(name)}", ""]
        for card in group:
            o = card.opportunity
            status = f"{STATUS_MARKS[card.entry.status]} {STATUS_LABELS[card.entry.status]}"
            lines += [
                f"### {md_link(card.title, card.url)}",
                "",
                f"- Status: {md_escape(status)}"
                + (f", owner {md_escape(card.entry.owner)}" if card.entry.owner else ""),
                f"- Opportunity {o.total:.2f}: relevance {o.parts['relevance']:.2f}, "
                f"maturity {o.parts['maturity']:.2f}, momentum {o.parts['momentum']:.2f}",
                f"- Why it fits: {md_escape(o.notes['relevance'])}",
                f"- Maturity: {md_escape(o.notes['maturity'])}",
                f"- Momentum: {md_escape(o.notes['momentum'])}",
                f"- Published: {md_escape(card.published or 'undated')} ({md_escape(card.kind)})",
                "",
                md_escape(card.summary),
                "",
            ]
            if card.entry.notes:
                lines += ["Notes:", ""]
                lines += [f"> {md_escape(n)}" for n in card.entry.notes.splitlines() if n.strip()]
                lines.append("")
            if card.log:
                lines += ["Decisions:", ""] + [f"- {md_escape(t)}" for t in card.log] + [""]
    return "\n".join(lines)
