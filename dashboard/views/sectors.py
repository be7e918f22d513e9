"""Sectors: a sector's use cases with their ranked innovations, heatmap, and exports."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.markup import md_escape, to_csv
from dashboard.common import (
    day_start,
    empty_corpus_notice,
    generation,
    item_card,
    page_header,
    parse_day,
    resources,
    show_chart,
    table,
)
from dashboard.present import item_row, items_markdown, learning_summary
from index.feedback import feedback_mark
from index.learner import matcher_path, matcher_status
from index.opportunity import Opportunity, Scorer
from index.reports import ask_items, heatmap, sector_view
from index.taxonomy import load_taxonomy
from jobs.facade import LaunchRefused, launch_job


@st.cache_data(show_spinner="Ranking matches…", max_entries=32)
def _view(key: tuple, gen: int, sector: str, since, per_use_case: int):
    settings, store = resources()
    return sector_view(store, settings, sector, since=since, per_use_case=per_use_case)


@st.cache_data(show_spinner="Scoring opportunities…", max_entries=16)
def _opportunities(key: tuple, gen: int, sector: str, pairs: tuple) -> dict[str, Opportunity]:
    """The opportunity of each (document, use case) pair shown, keyed "id use_case"."""
    settings, store = resources()
    scorer = Scorer(store, settings)
    return {f"{cid} {uc}": scorer.score(cid, sector, uc) for cid, uc in pairs}


def _parts(o: Opportunity) -> str:
    return (
        f"Opportunity {o.total:.2f} = relevance {o.parts['relevance']:.2f}, maturity "
        f"{o.parts['maturity']:.2f}, momentum {o.parts['momentum']:.2f} (weighted as set in "
        "opportunity_weights)"
    )


@st.cache_data(show_spinner="Finding what to ask…", ttl=60, max_entries=16)
def _ask(key: tuple, gen: int, sector: str):
    settings, store = resources()
    return ask_items(store, settings, sector, n=3)


@st.cache_data(show_spinner=False, max_entries=8)
def _learning(key: tuple, answers: str, model_at: float) -> dict:
    """matcher_status, read again when an answer comes in or the matcher is retrained."""
    settings, store = resources()
    return matcher_status(store, settings, load_taxonomy(settings))


def _model_at(settings) -> float:
    path = matcher_path(settings, settings.model)
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=8)
def _heatmap(key: tuple, gen: int, since):
    settings, store = resources()
    return heatmap(store, settings, since=since)


page_header(
    "Sectors",
    "Pick a sector to see, for each of its use cases, the innovations that fit it best and why.",
)
if not empty_corpus_notice():
    settings, store = resources()
    key = (str(settings.data_dir), settings.sqlalchemy_url)
    taxonomy = load_taxonomy(settings)
    names = {s.key: s.name for s in taxonomy.sectors}
    wanted = st.query_params.get("sector", taxonomy.sectors[0].key)
    keys = list(names)
    sector = st.selectbox(
        "Sector",
        keys,
        index=keys.index(wanted) if wanted in keys else 0,
        format_func=lambda k: names[k],
        help="The five sectors of the product; use cases come from the taxonomy file.",
    )
    col1, col2 = st.columns(2)
    since_day = col1.date_input(
        "Published since",
        value=parse_day(st.query_params.get("since")),
        help="Leave empty for all dates.",
    )
    per = col2.slider("Innovations per use case", 3, 30, 10)
    order = st.radio(
        "Order by",
        ["fit", "opportunity score", "maturity"],
        horizontal=True,
        help="Fit: the matcher's probability, 0 to 1, that it belongs to the sector (1.00 "
        "when your team confirmed it). Opportunity score: relevance (from the fit), maturity "
        "and momentum together, each part shown beside the total. Maturity: code or data "
        "released, benchmarks, industry use (ties keep the fit order).",
    )
    st.query_params["sector"] = sector
    if since_day:
        st.query_params["since"] = since_day.isoformat()
    elif "since" in st.query_params:
        del st.query_params["since"]
    since = day_start(since_day)

    view = _view(key, generation(), sector, since, per)
    if order == "maturity":
        for uc in view:
            uc.items = sorted(uc.items, key=lambda i: -i.maturity)
    scores: dict[str, Opportunity] = {}
    if order == "opportunity score":
        pairs = tuple((i.canonical_id, uc.key) for uc in view for i in uc.items)
        scores = _opportunities(key, generation(), sector, pairs)
        for uc in view:
            uc.items = sorted(
                uc.items, key=lambda i, u=uc.key: -scores[f"{i.canonical_id} {u}"].total
            )
    sector_obj = taxonomy.sector(sector)
    st.markdown(md_escape(sector_obj.description))
    items = [item for uc in view for item in uc.items]
    d1, d2 = st.columns(2)
    d1.download_button(
        "Export this list (CSV)",
        to_csv([item_row(i) for i in items]),
        file_name=f"veille-{sector}.csv",
        mime="text/csv",
        disabled=not items,
    )
    d2.download_button(
        "Export this list (Markdown, for a workshop)",
        items_markdown(items, title=f"{sector_obj.name}: innovations per use case"),
        file_name=f"veille-{sector}.md",
        mime="text/markdown",
        disabled=not items,
    )
    for uc in view:
        st.header(uc.name)
        st.caption(md_escape(uc.description))
        if not uc.items:
            st.info("No matching innovation yet for this use case.")
        for item in uc.items:
            scored = scores.get(f"{item.canonical_id} {uc.key}")
            item_card(
                item,
                show_use_case=False,
                feedback=f"uc-{uc.key}",
                shortlist=f"uc-{uc.key}",
                extra=_parts(scored) if scored else "",
            )

    st.header("Does this fit?")
    st.caption(
        "The matcher is least sure about these documents: one answer each teaches it the most. "
        "A use case still learning from its description asks about the documents most likely "
        "to belong to it, with that use case chosen. Answers count at its next training."
    )
    asked = _ask(key, generation(), sector)
    if not asked:
        st.info(
            "Nothing to ask right now: the matcher has no document near its threshold for this "
            "sector that nobody has answered about."
        )
    for item in asked:
        item_card(item, show_use_case=False, feedback="ask", ask_use_case=True)

    st.header(f"How well Veille knows {sector_obj.name}")
    learning = _learning(key, feedback_mark(store), _model_at(settings))
    lines, use_case_rows = learning_summary(learning, sector, sector_obj.name)
    for line in lines:
        st.markdown(line)
    if (
        learning["answers"]
        and learning["waiting"]
        and st.button(
            "Train the matcher now with the new answers",
            key="train-now",
            help="Runs in the background: training takes seconds, then every document is matched "
            "again. It cannot be started twice at once.",
        )
    ):
        try:
            process = launch_job(settings, "matcher", store=store)
        except LaunchRefused as exc:
            st.error(f"Not started: {md_escape(str(exc))}.")
        else:
            st.success(
                f"Training started (process {process.pid}). When it ends, this page shows the "
                "new figures: reload it in a minute."
            )
    table(
        use_case_rows,
        caption="Table: how each use case of the sector is matched. Validation F1 runs from 0 "
        "to 1: how well the use case was told apart, within the sector, on documents it did "
        "not learn from.",
    )

    st.header("Sectors × techniques")
    cells = _heatmap(key, generation(), since)
    frame = pd.DataFrame(cells)
    chart = (
        alt.Chart(frame, title="Documents matching each sector and tagged with each technique")
        .mark_rect()
        .encode(
            # Techniques down the side, where their long names read across whole; sectors
            # along the top, level, one word a line ("Financial / services") so that no
            # label collides with the next and is hidden; both in the taxonomy's order.
            x=alt.X(
                "sector:N",
                title="Sector",
                sort=[s.name for s in taxonomy.sectors],
                axis=alt.Axis(labelAngle=0, labelLimit=0, labelExpr="split(datum.label, ' ')"),
            ),
            y=alt.Y(
                "technique:N",
                title=None,  # the names say it; a title here would sit on the longest one
                sort=[t.name for t in taxonomy.techniques],
                axis=alt.Axis(labelLimit=0),
            ),
            color=alt.Color("documents:Q", scale=alt.Scale(scheme="viridis"), title="Documents"),
            tooltip=["sector", "technique", "documents"],
        )
    )
    # viridis runs from dark purple to light yellow: white numbers on the darker half of the
    # scale, black on the lighter half (both at least 4.5:1 over the cell they sit on)
    light = 0.45 * max(int(frame["documents"].max()) if not frame.empty else 0, 1)
    text = chart.mark_text(baseline="middle").encode(
        text="documents:Q",
        color=alt.condition(f"datum.documents >= {light}", alt.value("black"), alt.value("white")),
    )
    show_chart(chart + text)
    pivot = frame.pivot(index="sector", columns="technique", values="documents").reset_index()
    table(pivot.to_dict("records"), caption="Table: documents per sector and technique")
