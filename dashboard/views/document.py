"""Document: one item with its metadata, summary, sector matches with reasons, its story
(versions, code, news that cite it, papers it cites), its shortlist entries, similar items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from core.markup import md_code, md_escape, md_link
from dashboard.common import (
    PAGES,
    add_to_shortlist,
    empty_corpus_notice,
    feedback_controls,
    item_card,
    label_title,
    page_header,
    resources,
    searcher,
    shortlist_entries_of,
    table,
    use_case_names,
)
from index.lookup import document_detail, similar_items
from index.shortlists import history
from index.story import recent_evidence, story
from index.taxonomy import load_taxonomy

EVIDENCE_DAYS = 30

page_header(
    "Document", "One paper or news item: what it is about, where it fits, and what is close to it."
)
if not empty_corpus_notice():
    settings, store = resources()
    identifier = st.text_input(
        "Document id",
        value=st.query_params.get("id", ""),
        help="An arXiv id (e.g. 1706.03762), a URL, or the id given at load time.",
    )
    if identifier != st.query_params.get("id", ""):
        st.query_params["id"] = identifier
    if not identifier.strip():
        st.info("Open a document from Search, Sectors or This week, or type its id above.")
        st.stop()
    detail = document_detail(store, settings, identifier)
    if detail is None:
        st.error(f"No document with id {md_escape(identifier)!s}.")
        st.stop()
    doc = detail.document
    st.set_page_config(page_title=f"{label_title(doc.title, 60)} · Document · Veille")
    st.header(md_escape(doc.title))
    facts = {
        "Published": detail.published or "undated",
        "Kind": doc.kind,
        "Source": doc.source,
        "Authors": ", ".join(doc.authors[:12]) + (" …" if len(doc.authors) > 12 else ""),
        "Categories": ", ".join(doc.categories),
        "Language": doc.language,
    }
    for label, value in facts.items():
        if value:
            st.markdown(f"**{label}:** {md_escape(value)}")
    st.markdown(f"**Id:** {md_code(doc.canonical_id)}")
    if doc.url:
        st.markdown("**Link:** " + md_link(doc.url, doc.url))
    st.subheader("Summary")
    st.markdown(md_escape(detail.summary))

    st.subheader("Where it fits")
    if not detail.matches:
        st.caption("It fits no sector use case closely enough (the matcher never forces a match).")
    for m in detail.matches:
        with st.container(border=True):
            st.markdown(
                f"**{md_escape(m['sector'])} / {md_escape(m['use_case'])}** · fit {m['score']:.2f}"
            )
            st.markdown(f"Why: {md_escape(m['why'])}")
            if m["passage"] and m["passage"] not in m["why"]:
                st.markdown(f"> {md_escape(m['passage'])}")
            # one set of controls per use case shown (a document can fit several of a
            # sector), the answer about that use case chosen at first
            feedback_controls(
                doc.canonical_id,
                m["sector_key"],
                context=f"match-{m['use_case_key']}",
                use_case=m["use_case_key"],
            )
    matched = {m["sector_key"] for m in detail.matches}
    others = [s for s in load_taxonomy(settings).sectors if s.key not in matched]
    if others:
        with st.expander("Does it fit a sector it was not matched to? Tell the matcher"):
            other = st.selectbox(
                "Sector",
                [s.key for s in others],
                format_func=lambda k: next(s.name for s in others if s.key == k),
                key="fb-other-sector",
            )
            feedback_controls(doc.canonical_id, other, context="other")
    st.subheader("Shortlist")
    names = use_case_names(settings)
    entries = shortlist_entries_of(doc.canonical_id)
    if not entries:
        st.caption("Not on any shortlist yet.")
    for entry in entries:
        log = history(store, entry.id)
        line = f"{names.get(entry.target, entry.target)}: {entry.status_text}"
        line += f", owner {entry.owner}" if entry.owner else ""
        st.markdown(md_escape(line))
        if log:
            st.caption(md_escape(f"Latest: {log[-1].text}"))
    if entries:
        st.page_link(
            PAGES["shortlists"],
            label=f"Open the board of {label_title(names[entries[0].target].split(' › ')[0])}",
            query_params={"sector": entries[0].sector},
        )
        since = datetime.now(UTC) - timedelta(days=EVIDENCE_DAYS)
        news = recent_evidence(store, since, canonical_id=doc.canonical_id)
        st.markdown(f"**What changed in the last {EVIDENCE_DAYS} days**")
        if not news:
            st.caption("No new version, code release or news mention since it was shortlisted.")
        for found in news:
            st.markdown(md_escape(f"- {found.seen:%Y-%m-%d}: {found.text}"))
    best = detail.matches[0] if detail.matches else None
    add_to_shortlist(
        doc.canonical_id,
        doc.title,
        default=f"{best['sector_key']}/{best['use_case_key']}" if best else "",
        context="doc",
    )

    st.subheader("Its story")
    told = story(store, doc)
    if told.versions:
        st.markdown("**arXiv versions:** " + ", ".join(md_link(v, url) for v, url in told.versions))
    if told.code:
        st.markdown("**Code and models it links to:**")
        for url in told.code:
            st.markdown("- " + md_link(url, url))
    if told.cited_by:
        st.markdown(f"**News items that cite it ({len(told.cited_by)}):**")
        for news_item in told.cited_by:
            when = news_item.published.date().isoformat() if news_item.published else "undated"
            st.markdown(f"- {md_link(news_item.title, news_item.url)} ({md_escape(when)})")
    if told.cites:
        st.markdown(f"**Papers it cites ({len(told.cites)}):**")
        for paper in told.cites:
            st.page_link(
                PAGES["document"],
                label=f"Paper: {label_title(paper.title, 80)}",
                query_params={"id": paper.canonical_id},
            )
    if not (told.versions or told.code or told.cited_by or told.cites):
        st.caption(
            "Nothing more known yet: no revised arXiv version, no code or model link in its "
            "text, no stored news item citing it"
            + (", no stored paper cited." if doc.kind == "news" else ".")
        )

    st.subheader("Technical maturity")
    st.markdown(
        f"{len(detail.maturity.signals)} of 4 signals: {md_escape(detail.maturity.label)}. "
        "Signals: code released, data released, benchmarked, industry use."
    )
    st.subheader("Techniques")
    table(detail.techniques, caption="Techniques detected, with confidence")

    st.subheader("Similar items")
    try:
        close = similar_items(searcher(), doc.canonical_id, k=5)
    except KeyError as exc:
        st.caption(str(exc).strip("'\""))
        close = []
    for item in close:
        item_card(item, shortlist="similar")
