"""This week: what is new, per sector and technique, what is trending, emerging themes."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import (
    WHOLE_COUNTS,
    emerging,
    empty_corpus_notice,
    generation,
    item_card,
    page_header,
    resources,
    show_chart,
    table,
    theme_cards,
)
from dashboard.present import PALETTE, trending_rows
from index.reports import week_overview


@st.cache_data(show_spinner="Summarising the week…", max_entries=8)
def _overview(key: tuple, gen: int):
    settings, store = resources()
    return week_overview(store, settings)


page_header(
    "This week",
    "New innovations of the last seven days, matched to the use cases of the five sectors, "
    "and what is gaining momentum.",
)
if not empty_corpus_notice():
    settings, store = resources()
    view = _overview((str(settings.data_dir), settings.sqlalchemy_url), generation())
    st.markdown(
        f"Week of **{view.start:%d %b %Y}** to **{view.end:%d %b %Y}** "
        f"(the newest documents in the store)"
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("New documents", view.new_documents, view.new_documents - view.previous_documents)
    c2.metric("Documents in store", view.total_documents)
    c3.metric(
        "Sector matches this week",
        sum(r["new"] for r in view.by_sector),
        help="A document can fit several use cases.",
    )

    st.header("New by sector")
    frame = pd.DataFrame(view.by_sector)
    chart = (
        alt.Chart(frame, title="New documents per sector, this week")
        .mark_bar(color=PALETTE[0])
        .encode(
            x=alt.X(
                "new:Q",
                title="Documents this week",
                axis=alt.Axis(**WHOLE_COUNTS),
            ),
            y=alt.Y("name:N", title=None, sort="-x"),
            tooltip=["name", "new", "previous"],
        )
    )
    show_chart(chart)
    table(
        [
            {"sector": r["name"], "this week": r["new"], "week before": r["previous"]}
            for r in view.by_sector
        ],
        caption="Table: new documents per sector this week and the week before",
    )

    st.header("Top new innovations per sector")
    if not any(view.top_per_sector.values()):
        st.info("No document of this week fits a sector use case yet.")
    for sector_name, items in view.top_per_sector.items():
        st.subheader(sector_name)
        if not items:
            st.caption("Nothing new this week for this sector.")
        for item in items:
            item_card(item, feedback="week")

    st.header("New by technique")
    table(
        [
            {"technique": r["name"], "this week": r["new"], "week before": r["previous"]}
            for r in view.by_technique
        ],
        caption="Documents tagged with each technique, this week and the week before",
    )

    st.header("Trending")
    st.caption(
        "A burst means the last two weeks hold clearly more documents than usual "
        "(Poisson test, p < 0.01, at least 3 documents); growth compares the second half "
        "of the 12-week window with the first."
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Techniques")
        table(trending_rows(view.techniques), caption="Techniques, strongest signal first")
    with right:
        st.subheader("Use cases")
        table(trending_rows(view.use_cases), caption="Sector use cases, strongest signal first")

    st.header("Emerging themes")
    st.caption(
        "Machine-learning topics whose share of the last 4 weeks grew within the same arXiv "
        "categories and news sources (at least 8 documents, 1.5x, p < 0.01)."
    )
    theme_cards(emerging())
