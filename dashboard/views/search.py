"""Search: semantic/hybrid search with filters; the URL keeps the query and the filters."""

from __future__ import annotations

import json

import streamlit as st

from core.markup import counted, md_escape, sentence, to_csv
from dashboard.common import (
    day_end,
    day_start,
    empty_corpus_notice,
    generation,
    item_card,
    page_header,
    parse_day,
    resources,
    searcher,
    technique_names,
)
from dashboard.present import item_row
from index.lookup import search_items, search_options, similar_items
from index.reports import SCORE_HELP
from index.search import weak_match_note
from index.taxonomy import load_taxonomy

ANY = ""


@st.cache_data(show_spinner=False, max_entries=4)
def _options(key: tuple, gen: int) -> dict[str, list[str]]:
    settings, store = resources()
    return search_options(store, settings)


@st.cache_data(show_spinner="Searching…", max_entries=64)
def _search(key: tuple, gen: int, query: str, **filters):
    return search_items(searcher(), query, **filters)


MODES = ["hybrid", "dense", "keyword"]

page_header(
    "Search",
    "Search papers and news by meaning and keywords. Filters apply before ranking. "
    "The address bar keeps your query and filters: copy it to share this search.",
)
if not empty_corpus_notice():
    settings, store = resources()
    taxonomy = load_taxonomy(settings)
    options = _options((str(settings.data_dir), settings.sqlalchemy_url), generation())
    qp = st.query_params

    def pick(label: str, choices: list[str], param: str, fmt=None, help=None) -> str:
        values = [ANY, *choices]
        current = qp.get(param, ANY)
        return st.selectbox(
            label,
            values,
            index=values.index(current) if current in values else 0,
            format_func=fmt or (lambda v: v or "Any"),
            help=help,
        )

    with st.form("search"):
        query = st.text_input(
            "Query",
            value=qp.get("q", ""),
            placeholder="e.g. transformer models for credit card fraud",
            help="Plain words or a sentence; hybrid mode combines meaning and keywords.",
        )
        c1, c2, c3 = st.columns(3)
        since = c1.date_input("Published since", value=parse_day(qp.get("since")))
        until = c2.date_input("Published until", value=parse_day(qp.get("until")))
        mode = c3.selectbox(
            "Mode",
            MODES,
            index=MODES.index(qp.get("mode", "hybrid")) if qp.get("mode") in MODES else 0,
        )
        c4, c5, c6 = st.columns(3)
        with c4:
            kind = pick("Kind", options["kinds"], "kind")
        with c5:
            source = pick("Source", options["sources"], "source")
        with c6:
            k = st.slider(
                "Results", 5, 100, int(qp.get("k", 20)) if qp.get("k", "").isdigit() else 20
            )
        c7, c8, c9 = st.columns(3)
        sector_names = {s.key: s.name for s in taxonomy.sectors}
        uc_names = {uc.key: f"{sector_names[uc.sector]}: {uc.name}" for uc in taxonomy.use_cases}
        tech_names = technique_names(settings)
        with c7:
            sector = pick(
                "Sector", options["sectors"], "sector", lambda v: sector_names.get(v, "Any")
            )
        with c8:
            use_case = pick(
                "Use case", options["use_cases"], "use_case", lambda v: uc_names.get(v, "Any")
            )
        with c9:
            technique = pick(
                "Technique", options["techniques"], "technique", lambda v: tech_names.get(v, "Any")
            )
        submitted = st.form_submit_button("Search", type="primary")

    if since and until and since > until:
        st.error("“Published since” is after “Published until”: no document can match.")
        st.stop()
    wanted = {
        "q": query.strip(),
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
        "mode": mode if mode != "hybrid" else "",
        "kind": kind,
        "source": source,
        "sector": sector,
        "use_case": use_case,
        "technique": technique,
        "k": str(k) if k != 20 else "",
    }
    if submitted:
        qp.clear()
        qp.update({name: value for name, value in wanted.items() if value})

    like = qp.get("like", "")
    if like and not submitted and not wanted["q"]:
        try:
            close = similar_items(searcher(), like, k=k)
        except KeyError as exc:  # the message quotes ?like=, which anyone can write: escape it
            st.error(md_escape(str(exc.args[0] if exc.args else exc)))
            st.stop()
        found = store.resolve(like)
        about = f"“{found.title}”" if found is not None and found.title else like
        st.subheader(f"More like {md_escape(about)}: {counted(len(close), 'document')}")
        st.caption(md_escape(sentence(SCORE_HELP["similarity"]) + "."))
        for item in close:
            item_card(item, feedback="similar", shortlist="similar")
        st.stop()
    if not wanted["q"]:
        st.info(
            "Type a query and press Search. "
            "Example: “graph neural networks for anti-money laundering”."
        )
        st.stop()
    try:
        items = _search(
            (str(settings.data_dir), settings.sqlalchemy_url),
            generation(),
            wanted["q"],
            k=k,
            since=day_start(since),
            until=day_end(until),
            kind=kind or None,
            source=source or None,
            sector=sector or None,
            use_case=use_case or None,
            technique=technique or None,
            mode=mode,
        )
    except (KeyError, ValueError) as exc:
        st.error(f"Search failed: {exc}")
        st.stop()
    st.subheader(counted(len(items), "result"))
    if items:
        st.caption(
            md_escape(sentence(SCORE_HELP["keyword" if mode == "keyword" else "query"]) + ".")
        )
        weak = weak_match_note([i.similarity for i in items])
        if weak:
            st.warning(md_escape(weak))
    if not items:
        st.info("Nothing matches. Remove a filter or widen the dates.")
    else:
        rows = [item_row(i) | {"snippet": i.snippet} for i in items]
        e1, e2 = st.columns(2)
        e1.download_button("Export results (CSV)", to_csv(rows), "veille-search.csv", "text/csv")
        e2.download_button(
            "Export results (JSON)",
            json.dumps(rows, ensure_ascii=False, indent=1),
            "veille-search.json",
            "application/json",
        )
    for item in items:
        item_card(item, feedback="search", shortlist="search")
