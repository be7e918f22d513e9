"""Shortlists: a board per sector, its entries in one column per status; move, own, note;
export opportunity cards; "more like my shortlist" per use case.

Every change goes through index/shortlists.py and is signed with the sidebar's name. Views
are cached on the store's generation and the shortlists' revision (the newest log line),
so a change shows at the next rerun and nothing is recomputed otherwise.
"""

from __future__ import annotations

import streamlit as st

from core.markup import md_escape, md_link
from dashboard.common import (
    decider,
    empty_corpus_notice,
    generation,
    label_title,
    page_header,
    resources,
)
from index.cards import Card, filter_cards, make_cards
from index.recommend import more_like_shortlist
from index.shortlists import (
    STATUS_LABELS,
    STATUS_MARKS,
    STATUSES,
    add_entry,
    add_note,
    list_entries,
    move_entry,
    revision,
    set_owner,
)
from index.taxonomy import load_taxonomy
from jobs.facade import cards_csv, cards_markdown

EMPTY = (
    "No shortlist yet: add papers from Sectors, Search or a document page (“Add to "
    "shortlist” on each card), or `veille shortlist add ID --use-case SECTOR/USE_CASE`."
)
ANY = ""
NOBODY = "\x00nobody"  # the owner filter's choice for entries nobody owns


@st.cache_data(show_spinner=False, max_entries=8)
def _counts(key: tuple, rev: int) -> dict[str, int]:
    settings, store = resources()
    counts: dict[str, int] = {}
    for entry in list_entries(store, settings):
        counts[entry.sector] = counts.get(entry.sector, 0) + 1
    return counts


@st.cache_data(show_spinner="Scoring the shortlist…", max_entries=16)
def _cards(key: tuple, gen: int, rev: int, sector: str) -> list[Card]:
    settings, store = resources()
    return make_cards(store, settings, list_entries(store, settings, sector=sector))


@st.cache_data(show_spinner="Looking for more like the shortlist…", max_entries=32)
def _more(key: tuple, gen: int, rev: int, target: str):
    settings, store = resources()
    return more_like_shortlist(store, settings, target, k=5)


def _status(status: str) -> str:
    return f"{STATUS_MARKS[status]} {STATUS_LABELS[status]}"


def _done(message: str) -> None:
    """Say what was done, on every rerun until the shortlists change again (a one-shot
    message could be lost to a rerun that interrupts the one showing it)."""
    _, store = resources()
    st.session_state["sl-done"] = (revision(store), message)
    st.rerun()


def _opportunity(card: Card) -> str:
    o = card.opportunity
    return (
        f"Opportunity {o.total:.2f}: relevance {o.parts['relevance']:.2f}, "
        f"maturity {o.parts['maturity']:.2f}, momentum {o.parts['momentum']:.2f}"
    )


def _change_controls(card: Card) -> None:
    """Move, owner and note for one entry; every label names the entry. Each is a form, so
    choosing and typing send nothing until its button (or Enter in its text field) does."""
    settings, store = resources()
    entry = card.entry
    short = label_title(card.title, 40)
    base = f"sl-{entry.id}"
    with st.expander(f"Change: {short}"):
        with st.form(base + "-moveform", border=False):
            status = st.selectbox(
                f"New status for {short}",
                STATUSES,
                index=STATUSES.index(entry.status),
                format_func=_status,
                key=base + "-status",
            )
            reason = st.text_input(f"Reason for the move of {short} (optional)", key=base + "-why")
            if st.form_submit_button(f"Move {short}", key=base + "-move"):
                if status == entry.status:
                    st.warning(f"It is already {_status(status)}: choose another status.")
                else:
                    try:
                        move_entry(store, settings, entry.id, status, by=decider(), reason=reason)
                    except (KeyError, ValueError) as exc:
                        message = str(exc.args[0] if exc.args else exc)
                        st.error(f"Not moved: {md_escape(message)}")
                    else:
                        _done(f"Moved “{md_escape(card.title)}” to {_status(status)}.")
        with st.form(base + "-ownerform", border=False):
            owner = st.text_input(f"Owner of {short}", value=entry.owner, key=base + "-owner")
            if st.form_submit_button(f"Set the owner of {short}", key=base + "-setowner"):
                try:
                    set_owner(store, entry.id, owner, by=decider())
                except ValueError as exc:
                    st.error(f"Owner not set: {md_escape(str(exc))}")
                else:
                    whom = md_escape(owner) or "nobody"
                    _done(f"“{md_escape(card.title)}” is now owned by {whom}.")
        with st.form(base + "-noteform", border=False):
            note = st.text_area(f"Note on {short}", key=base + "-note", max_chars=5000)
            if st.form_submit_button(f"Add the note to {short}", key=base + "-addnote"):
                try:
                    add_note(store, entry.id, note, by=decider())
                except ValueError as exc:
                    st.error(f"Note not added: {md_escape(str(exc))}")
                else:
                    _done(f"Note added to “{md_escape(card.title)}”.")
        st.markdown("**Decision log**")
        for line in card.log:
            st.markdown(f"- {md_escape(line)}")


def _entry_card(card: Card) -> None:
    entry = card.entry
    with st.container(border=True):
        st.markdown(f"**{md_link(card.title, card.url)}**")
        st.caption(md_escape(f"{_status(entry.status)} · {card.use_case_name}"))
        st.markdown(md_escape(f"Owner: {entry.owner or 'nobody yet'}"))
        st.markdown(md_escape(_opportunity(card)))
        if card.latest:
            st.caption(md_escape(f"Latest: {card.latest}"))
        _change_controls(card)


def _more_like(target: str, name: str, key: tuple) -> None:
    settings, store = resources()
    found = _more(key, generation(), revision(store), target)
    st.subheader(md_escape(name))
    if not found.items:
        st.info(md_escape(found.message))
        return
    st.caption(md_escape(found.message))
    for rec in found.items:
        doc = rec.document
        short = label_title(doc.title)
        with st.container(border=True):
            st.markdown(f"**{md_link(doc.title, doc.url)}**")
            st.caption(md_escape(rec.why))
            if st.button(
                f"Add to shortlist: {short}",
                key=f"sl-more-{target}-{doc.canonical_id}",
                help=f"Put it on the shortlist of {md_escape(name)}",
            ):
                try:
                    add_entry(store, settings, doc.canonical_id, target, by=decider())
                except (KeyError, ValueError) as exc:
                    st.error(f"Not added: {md_escape(str(exc.args[0] if exc.args else exc))}")
                else:
                    _done(f"Added “{md_escape(doc.title)}” to the shortlist of {md_escape(name)}.")


page_header(
    "Shortlists",
    "What your team follows per use case, from “new” to “adopted” or “rejected”, with who "
    "decided what and why. Pick a sector; open “Change” on an entry to move it, give it an "
    "owner or add a note. Decisions are signed with the name in the sidebar.",
)
if not empty_corpus_notice():
    settings, store = resources()
    key = (str(settings.data_dir), settings.sqlalchemy_url)
    rev = revision(store)
    taxonomy = load_taxonomy(settings)
    counts = _counts(key, rev)
    if not counts:
        st.info(EMPTY)
        st.stop()
    names = {s.key: s.name for s in taxonomy.sectors}
    keys = list(names)
    wanted = st.query_params.get("sector", "")
    if wanted not in keys:
        wanted = max(keys, key=lambda k: counts.get(k, 0))  # the busiest board
    sector = st.selectbox(
        "Sector",
        keys,
        index=keys.index(wanted),
        format_func=lambda k: f"{names[k]} ({counts.get(k, 0)} shortlisted)",
        help="One board per sector; its use cases share it.",
    )
    st.query_params["sector"] = sector
    done_at, done = st.session_state.get("sl-done", (-1, ""))
    if done and done_at == rev:
        st.success(done)
    who = decider()
    st.caption(
        f"Signing decisions as {md_escape(who)}."
        if who
        else "Decisions are signed anonymously: type your name in the sidebar to sign them."
    )
    cards = _cards(key, generation(), rev, sector)
    if not cards:
        st.info(f"No shortlist yet for {md_escape(names[sector])}. " + EMPTY)
        st.stop()

    sector_obj = taxonomy.sector(sector)
    uc_names = {uc.key: uc.name for uc in sector_obj.use_cases}
    owners = sorted({c.entry.owner for c in cards if c.entry.owner})
    f1, f2, f3, f4 = st.columns(4)
    use_case = f1.selectbox(
        "Use case",
        [ANY, *uc_names],
        format_func=lambda k: uc_names.get(k, "Any"),
        key="sl-filter-uc",
    )
    owner = f2.selectbox(
        "Owner",
        [ANY, NOBODY, *owners],
        format_func=lambda v: {ANY: "Anyone", NOBODY: "Nobody yet"}.get(v, v),
        key="sl-filter-owner",
    )
    statuses = f3.multiselect(
        "Statuses",
        list(STATUSES),
        format_func=_status,
        key="sl-filter-status",
        placeholder="All statuses",
        help="Leave empty to show every status.",
    )
    text = f4.text_input(
        "Text", key="sl-filter-text", help="Every word must appear in the title, summary or notes."
    )
    shown = filter_cards(
        cards,
        use_case=use_case or None,
        owner=None if owner == ANY else ("" if owner == NOBODY else owner),
        statuses=statuses or None,
        text=text,
    )
    st.caption(f"{len(shown)} of {len(cards)} entries shown, best opportunity first.")
    d1, d2 = st.columns(2)
    title = f"Opportunity cards: {sector_obj.name}"
    d1.download_button(
        "Download opportunity cards (Markdown, for a workshop)",
        cards_markdown(shown, title=title),
        file_name=f"veille-shortlist-{sector}.md",
        mime="text/markdown",
        disabled=not shown,
    )
    d2.download_button(
        "Download opportunity cards (CSV)",
        cards_csv(shown),
        file_name=f"veille-shortlist-{sector}.csv",
        mime="text/csv",
        disabled=not shown,
    )
    if not shown:
        st.info("No entry matches these filters. Clear the text or choose “Any”.")

    st.header("Board")
    for status, column in zip(STATUSES, st.columns(len(STATUSES)), strict=True):
        in_column = [c for c in shown if c.entry.status == status]
        with column:
            st.subheader(f"{_status(status)} ({len(in_column)})", anchor=False)
            if not in_column:
                st.caption("Nothing here.")
            for card in in_column:
                _entry_card(card)

    st.header("More like my shortlist")
    st.caption(
        "Per use case, unseen documents that resemble the entries kept on the board and "
        "differ from the rejected ones (a model retrained whenever the board changes)."
    )
    on_board = [uc for uc in uc_names if any(c.entry.use_case == uc for c in cards)]
    for uc in on_board if not use_case else [use_case]:
        _more_like(f"{sector}/{uc}", f"{sector_obj.name} › {uc_names[uc]}", key)
