"""Opportunity cards as handouts: Markdown for a workshop, CSV for a spreadsheet.

`veille shortlist export` and `veille shortlist list --json` use these, and the dashboard's
shortlist page offers the same files through jobs/facade.py, so a handout reads the same
wherever it was made. The cards themselves are built in index/cards.py; crawled text is
escaped here, for each format (core/markup.py): a handout is a file people also read as
plain text, so its Markdown escapes only what could form markup.

    text = cards_markdown(make_cards(store, settings, entries), title="Finance")
"""

from __future__ import annotations

from typing import Any

from core.markup import md_link, md_text, to_csv
from index.cards import Card
from index.shortlists import STATUS_LABELS, STATUS_MARKS


def card_row(card: Card) -> dict[str, Any]:
    """One card as a row: the CSV export, and `veille shortlist list --json`."""
    parts = card.opportunity.parts
    return {
        "entry": card.entry.id,
        "id": card.entry.canonical_id,
        "title": card.title,
        "status": STATUS_LABELS[card.entry.status],
        "sector": card.sector_name,
        "use case": card.use_case_name,
        "owner": card.entry.owner,
        "opportunity": card.opportunity.total,
        "relevance": parts["relevance"],
        "maturity": parts["maturity"],
        "momentum": parts["momentum"],
        "why": card.opportunity.notes["relevance"],
        "maturity signals": card.opportunity.notes["maturity"],
        "momentum detail": card.opportunity.notes["momentum"],
        "published": card.published or "",
        "url": card.url or "",
        "notes": card.entry.notes,
        "log": " | ".join(card.log),
    }


def cards_csv(cards: list[Card]) -> str:
    """The cards as a spreadsheet (no cell can start a formula)."""
    return to_csv([card_row(c) for c in cards])


def cards_markdown(cards: list[Card], *, title: str) -> str:
    """A workshop handout: one section per use case, one card per innovation."""
    lines = [f"# {md_text(title)}", ""]
    if not cards:
        lines.append("The shortlist is empty.")
        return "\n".join(lines) + "\n"
    by_use_case: dict[str, list[Card]] = {}
    for card in cards:
        by_use_case.setdefault(f"{card.sector_name} › {card.use_case_name}", []).append(card)
    for name, group in by_use_case.items():
        lines += [f"## {md_text(name)}", ""]
        for card in group:
            o = card.opportunity
            status = f"{STATUS_MARKS[card.entry.status]} {STATUS_LABELS[card.entry.status]}"
            lines += [
                f"### {md_link(card.title, card.url, escape=md_text)}",
                "",
                f"- Status: {md_text(status)}"
                + (f", owner {md_text(card.entry.owner)}" if card.entry.owner else ""),
                f"- Opportunity {o.total:.2f}: relevance {o.parts['relevance']:.2f}, "
                f"maturity {o.parts['maturity']:.2f}, momentum {o.parts['momentum']:.2f}",
                f"- Why it fits: {md_text(o.notes['relevance'])}",
                f"- Maturity: {md_text(o.notes['maturity'])}",
                f"- Momentum: {md_text(o.notes['momentum'])}",
                f"- Published: {md_text(card.published or 'undated')} ({md_text(card.kind)})",
                "",
                md_text(card.summary),
                "",
            ]
            if card.entry.notes:
                lines += ["Notes:", ""]
                lines += [f"> {md_text(n)}" for n in card.entry.notes.splitlines() if n.strip()]
                lines.append("")
            if card.log:
                lines += ["Decisions:", ""] + [f"- {md_text(t)}" for t in card.log] + [""]
    return "\n".join(lines)
