"""Opportunity cards: a shortlist entry with everything an ideation workshop needs.

A card holds the summary, the fit and why (relevance), the maturity and momentum with what
they rest on, the opportunity total, the status with its decision log, and links. The
Markdown handout and the CSV export of cards are jobs/handouts.py (the CLI's `veille
shortlist export`, and the dashboard's downloads through jobs/facade.py).

    cards = make_cards(store, settings, list_entries(store, settings, sector="finance"))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.markup import http_url
from core.settings import Settings
from core.store import Store
from index.opportunity import Opportunity, Scorer
from index.search import make_snippet, published_str
from index.shortlists import Entry, history
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
                url=http_url(doc.url),
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
