"""Trends: weekly series per technique and per use case, growth table, bursts marked."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.markup import sentence
from dashboard.common import (
    WHOLE_COUNTS,
    color_scale,
    emerging,
    empty_corpus_notice,
    generation,
    page_header,
    resources,
    show_chart,
    table,
    theme_cards,
)
from dashboard.present import series_rows, trending_rows
from index.trends import COLUMNS_HELP, trend_report


@st.cache_data(show_spinner="Counting weeks…", max_entries=16)
def _report(key: tuple, gen: int, by: str, weeks: int):
    settings, store = resources()
    return trend_report(store, settings, by=by, weeks=weeks)


page_header(
    "Trends",
    "Weekly documents per technique or per sector use case. Bursts are marked with a "
    "symbol and a word, not only a colour.",
)
if not empty_corpus_notice():
    settings, _ = resources()
    c1, c2 = st.columns(2)
    by_options = {"technique": "Techniques", "use_case": "Sector use cases"}
    by = c1.radio("Group by", list(by_options), format_func=by_options.get, horizontal=True)
    weeks = c2.slider("Weeks", 4, 104, 12)
    report = _report((str(settings.data_dir), settings.sqlalchemy_url), generation(), by, weeks)
    active = [i for i in report.items if i.total > 0]
    if not active:
        st.info(f"No tagged document in these {weeks} weeks. Widen the window or crawl more.")
        st.stop()
    default = [i.label for i in sorted(active, key=lambda i: -i.total)[:6]]
    all_names = sorted({r["name"] for r in series_rows(report)})
    chosen = st.multiselect("Series shown", all_names, default=default, max_selections=8)
    rows = [r for r in series_rows(report) if r["name"] in chosen]
    if rows:
        frame = pd.DataFrame(rows)
        frame["marker"] = frame["burst"].map({True: "burst", False: "steady"})
        base = alt.Chart(frame, title=f"Documents per week, last {weeks} weeks").encode(
            x=alt.X("week:T", title="Week starting"),
            y=alt.Y(
                "documents:Q",
                title="Documents",
                axis=alt.Axis(**WHOLE_COUNTS),
            ),
            color=alt.Color("name:N", scale=alt.Scale(**color_scale(chosen)), title="Series"),
            strokeDash=alt.StrokeDash("name:N", title="Series"),
        )
        points = base.mark_point(filled=True, size=60).encode(
            shape=alt.Shape(
                "marker:N",
                title="Signal",
                scale=alt.Scale(domain=["steady", "burst"], range=["circle", "triangle-up"]),
            ),
            tooltip=["name", "week", "documents", "marker"],
        )
        show_chart(base.mark_line() + points)
        if report.partial_week_note:
            st.caption(report.partial_week_note)
        wide = frame.pivot(index="week", columns="name", values="documents").reset_index()
        with st.expander("Table of the weekly counts shown in the chart"):
            table(wide.to_dict("records"), caption="Documents per week and series")
    else:
        st.info("No series is chosen: pick one or more under “Series shown” to draw the chart.")
    st.subheader("Growth and bursts")
    table(
        trending_rows(report, limit=len(report.items)),
        caption="Every series, strongest signal first",
    )
    st.caption(sentence(COLUMNS_HELP))
    st.subheader("Emerging themes")
    st.caption(
        "Groups of machine-learning documents whose share of the last 4 weeks grew within the "
        "same arXiv categories and news sources (at least 8 documents, 1.5x, p < 0.01), "
        "whatever the weeks chosen above."
    )
    theme_cards(emerging())
