"""What every dashboard page shares: cached resources, item cards, empty states.

Heavy things (settings, store, model, indexes) are Streamlit cached resources, loaded once
per process; computed views are cached per store generation, so a rerun after a widget
change costs a dictionary lookup. No SQL, FAISS or crawling here: pages call index/ and core/.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from core.settings import ConfigError, Settings, load_settings
from core.store import Store
from index.reports import PALETTE, Item, md_escape, md_link
from index.search import Searcher

# Page files, relative to dashboard/app.py; links between pages use these.
PAGES = {
    "week": "views/this_week.py",
    "sectors": "views/sectors.py",
    "search": "views/search.py",
    "document": "views/document.py",
    "trends": "views/trends.py",
    "sources": "views/sources.py",
    "unsubscribe": "views/unsubscribe.py",
}


def _settings_key() -> tuple[str, str, str]:
    return (
        os.environ.get("VEILLE_DATA_DIR", ""),
        os.environ.get("VEILLE_CONFIG", ""),
        os.environ.get("VEILLE_DATABASE_URL", ""),
    )


@st.cache_resource(show_spinner=False)
def _open(key: tuple[str, str, str]) -> tuple[Settings, Store]:
    settings = load_settings()
    return settings, Store.from_settings(settings)


def resources() -> tuple[Settings, Store]:
    """Settings and store for this process (stops the page with a clear message on bad config)."""
    try:
        return _open(_settings_key())
    except ConfigError as exc:
        st.error(f"Veille cannot start: {exc}")
        st.stop()
        raise  # unreachable, st.stop raises


@st.cache_resource(show_spinner="Loading the language model and the index…")
def _searcher(key: tuple[str, str, str]) -> Searcher:
    settings, store = _open(key)
    return Searcher.open(settings, store=store)


def searcher() -> Searcher:
    """The shared searcher, reloaded when the store has moved on since it was built."""
    found = _searcher(_settings_key())
    found.refresh()
    return found


def generation() -> int:
    """Changes whenever documents change; cached views are keyed on it."""
    _, store = resources()
    return store.generation()


def page_header(title: str, intro: str) -> None:
    st.title(title)
    st.caption(intro)


def empty_corpus_notice() -> bool:
    """Show how to get data when the store is empty; True when it is."""
    _, store = resources()
    if store.count():
        return False
    st.info(
        "No documents yet. Load the starter corpus and index it with `veille up`, "
        "collect papers with `veille crawl arxiv`, news with `veille crawl news`, "
        "or import your own file with `veille load FILE.jsonl`."
    )
    return True


def item_card(item: Item, *, show_use_case: bool = True) -> None:
    """One result: escaped title and link, date, source, score, reason, techniques."""
    with st.container(border=True):
        st.markdown(f"**{md_link(item.title, item.url)}**")
        facts = [item.published or "undated", item.kind, item.source]
        if item.score:
            facts.append(f"score {item.score:.2f}")
        st.caption(md_escape(" · ".join(f for f in facts if f)))
        if show_use_case and item.use_case_name:
            st.markdown(f"Fits **{md_escape(item.sector)} / {md_escape(item.use_case_name)}**")
        if item.why:
            st.markdown(f"Why: {md_escape(item.why)}")
        if item.passage and item.passage not in item.why:
            st.markdown(f"> {md_escape(item.passage)}")
        elif item.snippet:
            st.markdown(md_escape(item.snippet))
        if item.techniques:
            st.caption("Techniques: " + md_escape(", ".join(item.techniques)))
        st.caption(md_escape(item.maturity_label))
        left, right = st.columns(2)
        with left:
            st.page_link(
                PAGES["document"],
                label="Details",
                query_params={"id": item.id},
                help="Open this document's page: summary, sector matches, similar items",
            )
        with right:
            st.page_link(
                PAGES["search"],
                label="More like this",
                query_params={"like": item.id},
                help="Search for the documents closest in meaning to this one",
            )


def table(rows: list[dict[str, Any]], *, caption: str) -> None:
    """A data table with a caption (also the text alternative of a chart)."""
    if not rows:
        st.caption(f"{caption}: nothing to show.")
        return
    st.caption(caption)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def color_scale(domain: list[str]) -> dict[str, Any]:
    return {"domain": domain, "range": PALETTE[: max(1, len(domain))]}


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_start(value: date | None) -> datetime | None:
    return datetime.combine(value, time.min) if value else None


def day_end(value: date | None) -> datetime | None:
    return datetime.combine(value, time.max) if value else None
