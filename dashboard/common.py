"""What every dashboard page shares: cached resources, item cards, empty states.

Heavy things (settings, store, model, indexes) are Streamlit cached resources, loaded once
per process; computed views are cached per store generation, so a rerun after a widget
change costs a dictionary lookup. No SQL, FAISS or crawling here: pages call index/ and core/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from core.markup import md_escape, md_link, sentence
from core.settings import ConfigError, Settings, dashboard_hosts, host_allowed, load_settings
from core.store import Store
from dashboard.present import PALETTE, maturity_label
from index.feedback import record_feedback, verdicts
from index.matching import follow_answers
from index.reports import Item
from index.search import Searcher
from index.shortlists import Entry, add_entry, list_entries, revision
from index.taxonomy import load_taxonomy
from index.themes import Theme, ThemeList, running_text, touches_text
from index.trends import emerging_themes

# Page files, relative to dashboard/app.py; links between pages use these.
PAGES = {
    "week": "views/this_week.py",
    "sectors": "views/sectors.py",
    "search": "views/search.py",
    "document": "views/document.py",
    "trends": "views/trends.py",
    "sources": "views/sources.py",
    "unsubscribe": "views/unsubscribe.py",
    "feedback": "views/feedback.py",
    "shortlists": "views/shortlists.py",
}

# A focus ring on whatever the keyboard reaches (WCAG 2.4.7). Streamlit marks focus on links
# and some buttons with a faint background only; this draws the same visible outline on all.
# A constant stylesheet, never crawled text.
FOCUS_STYLE = """<style>
:focus-visible {
  outline: 3px solid #0b5cad !important;
  outline-offset: 2px !important;
}
input:focus-visible, textarea:focus-visible {
  outline-offset: -3px !important;
}
</style>"""


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


def refuse_foreign_host() -> None:
    """Stop the page when the request's Host header is not one the dashboard answers to.

    Why here: Streamlit checks no Host header, so a hostile page whose DNS name was rebound
    to 127.0.0.1 (DNS rebinding) could drive the dashboard from a visitor's browser, with
    the same origin in every request. Every page, and every widget action, is a rerun of
    this script over the session's websocket, whose Host header Streamlit keeps in
    ``st.context.headers``: checking it here refuses all data and every operator action to
    such a session. What it does not cover: Streamlit's static files (the app's JavaScript,
    no data) are still served to anyone who can reach the port. A run without an HTTP
    request (AppTest) has no headers and is not checked.
    """
    headers = st.context.headers
    if not headers:
        return
    settings, _ = resources()
    allowed = dashboard_hosts(settings)
    host = headers.get("Host")
    if host_allowed(host, allowed):
        return
    st.error(
        f"This dashboard does not answer to the address “{md_escape(host or '(none)')}”. "
        f"Open it at one of: {md_escape(', '.join(sorted(allowed)))}. An operator can add a "
        "name (a reverse proxy's, for instance) with VEILLE_DASHBOARD_ALLOWED_HOSTS."
    )
    st.stop()


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


_LABEL_MARKUP = re.compile(r"[\\`*_{}\[\]#|<>~$]+")


def label_title(title: str, limit: int = 48) -> str:
    """``title`` shortened for a control's label: one line, cut at a word boundary after at
    most ``limit`` characters, without the characters Streamlit's label Markdown acts on.

    Repeated controls ("Details", "Fits …") carry it, so that each one still says which item
    it acts on when a screen reader lists the links or buttons of a page. Not escaped but
    stripped: a widget's label is also its aria-label, where escapes would be read out.
    """
    flat = " ".join(_LABEL_MARKUP.sub(" ", title).split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-") + "…"


def feedback_controls(
    doc_id: str, sector_key: str, *, context: str, title: str = "", use_case: str = ""
) -> None:
    """ "Fits" / "Does not fit" for one document and sector, with an optional use case.

    The answer is stored with the name given in the sidebar; the verdict in force (the latest
    answer) is shown above the buttons. ``context`` keeps widget keys unique on a page;
    ``title`` (the document's, where several documents share a page) goes into the labels;
    ``use_case`` is the use case chosen at first (the one a question is about).
    """
    settings, store = resources()
    taxonomy = load_taxonomy(settings)
    try:
        sector = taxonomy.sector(sector_key)
    except KeyError:
        return
    base = f"fb-{context}-{doc_id}-{sector.key}"
    done = st.session_state.get(base + "-done")
    if done:
        st.success(done)
    current = verdicts(store, [doc_id])
    shown = [v for (_d, sec, uc), v in current.items() if sec == sector.key and uc is None]
    if shown and not done:
        st.caption(md_escape(sentence(shown[-1].text)) + ".")
    about = f": {label_title(title)}" if title else ""
    names = {uc.key: uc.name for uc in sector.use_cases}
    options = ["", *names]
    use_case = st.selectbox(
        f"Use case it belongs to (optional){about}",
        options,
        index=options.index(use_case) if use_case in names else 0,
        format_func=lambda k: names.get(k, "— no particular use case —"),
        key=base + "-uc",
        help="Say which use case it serves, if you know; leave empty to answer for the sector.",
    )
    whole = f"“{md_escape(title)}”" if title else "This document"
    yes, no = st.columns(2)
    answer = None
    if yes.button(
        f"Fits {sector.name}{about}", key=base + "-yes", help=f"{whole} fits {sector.name}"
    ):
        answer = True
    if no.button(
        f"Does not fit {sector.name}{about}",
        key=base + "-no",
        help=f"{whole} does not fit {sector.name}",
    ):
        answer = False
    if answer is not None:
        try:
            record_feedback(
                store,
                settings,
                doc_id,
                sector=sector.key,
                use_case=use_case or None,
                fits=answer,
                by=decider(),
                origin="dashboard",
            )
        except KeyError as exc:
            st.error(md_escape(str(exc.args[0] if exc.args else exc)))
            return
        followed = follow_answers(store, settings, [doc_id])
        word = "fits" if answer else "does not fit"
        target = sector.name + (f" / {names[use_case]}" if use_case else "")
        who = decider()
        signed = (
            f", signed {who}"
            if who
            else " without a name (type yours in the sidebar to sign your answers)"
        )
        st.session_state[base + "-done"] = (
            f"Thank you: recorded that it {word} {target}{signed}. "
            + (
                "Its matches follow your answer already. "
                if followed
                else "Its matches follow your answer at the next training. "
            )
            + "The matcher learns from it at its next training: the scheduler "
            "runs one within 15 minutes while `veille up` runs, and the Sectors page can "
            "train it at once."
        )
        st.rerun()


def decider() -> str:
    """The name that signs feedback and shortlist decisions (the sidebar's field)."""
    return str(st.session_state.get("answer_as", "")).strip()


def use_case_names(settings: Settings) -> dict[str, str]:
    """Every use case as ``sector/use_case`` -> "Sector › Use case", in taxonomy order."""
    taxonomy = load_taxonomy(settings)
    return {
        f"{sector.key}/{uc.key}": f"{sector.name} › {uc.name}"
        for sector in taxonomy.sectors
        for uc in sector.use_cases
    }


def technique_names(settings: Settings) -> dict[str, str]:
    """Every technique's key -> its name ("gnn" -> "Graph neural networks")."""
    return {t.key: t.name for t in load_taxonomy(settings).techniques}


@st.cache_data(show_spinner=False, max_entries=4)
def _on_shortlists(key: tuple[str, str, str], rev: int) -> dict[str, list[Entry]]:
    settings, store = _open(key)
    found: dict[str, list[Entry]] = {}
    for entry in list_entries(store, settings):
        found.setdefault(entry.canonical_id, []).append(entry)
    return found


def shortlist_entries_of(canonical_id: str) -> list[Entry]:
    """The entries a document has on the boards (cached until a shortlist changes)."""
    _, store = resources()
    return _on_shortlists(_settings_key(), revision(store)).get(canonical_id, [])


def add_to_shortlist(doc_id: str, title: str, *, default: str = "", context: str) -> None:
    """An "Add to shortlist" control for one document: a use case (``default``, the match's,
    preselected) and a button, folded under an expander named after the document."""
    settings, store = resources()
    names = use_case_names(settings)
    keys = list(names)
    short = label_title(title)
    base = f"sl-{context}-{doc_id}"
    # shown until the shortlists change again (a rerun may interrupt the one showing it)
    done_at, done = st.session_state.get(base + "-done", (-1, ""))
    if done_at != revision(store):
        done = ""
    already = shortlist_entries_of(doc_id)
    with st.expander(f"Shortlist: {short}", expanded=bool(done)):
        if done:
            st.success(done)
        if already and not done:  # just added: the line above says it, once
            on = "; ".join(f"{names.get(e.target, e.target)} ({e.status_text})" for e in already)
            st.caption(f"Already shortlisted for {md_escape(on)}.")
        target = st.selectbox(
            f"Use case to shortlist it for: {short}",
            keys,
            index=keys.index(default) if default in keys else 0,
            format_func=lambda k: names[k],
            key=base + "-uc",
            help="The use case whose shortlist gets it; the match's use case is preselected.",
        )
        if st.button(
            f"Add to shortlist: {short}",
            key=base + "-add",
            help=f"Put “{md_escape(title)}” on the shortlist of the chosen use case",
        ):
            try:
                entry = add_entry(store, settings, doc_id, target, by=decider())
            except (KeyError, ValueError) as exc:
                st.error(f"Not added: {md_escape(str(exc.args[0] if exc.args else exc))}")
                return
            st.session_state[base + "-done"] = (
                revision(store),
                f"On the shortlist of {md_escape(names[target])}: {entry.status_text}. "
                "Follow it on the Shortlists page.",
            )
            st.rerun()
        if done:
            st.page_link(
                PAGES["shortlists"],
                label=f"Open the shortlists of {label_title(names[target].split(' › ')[0])}",
                query_params={"sector": target.split("/")[0]},
            )


def item_card(
    item: Item,
    *,
    show_use_case: bool = True,
    feedback: str = "",
    shortlist: str = "",
    extra: str = "",
    ask_use_case: bool = False,
) -> None:
    """One result: escaped title and link, date, source, score, reason, techniques; with
    ``feedback`` (a context name), "fits / does not fit" buttons for its sector (with
    ``ask_use_case``, the item's use case chosen at first: a question about it); with
    ``shortlist`` (a context name), an "Add to shortlist" control; ``extra``, a line of
    plain text (the opportunity score) under the facts."""
    with st.container(border=True):
        st.markdown(f"**{md_link(item.title, item.url)}**")
        facts = [item.published or "undated", item.kind, item.source]
        if item.score:
            facts.append(item.score_text)
        st.caption(md_escape(" · ".join(f for f in facts if f)))
        if extra:
            st.markdown(md_escape(extra))
        if show_use_case and item.use_case_name:
            st.markdown(f"Fits **{md_escape(item.sector)} / {md_escape(item.use_case_name)}**")
        if item.why:
            st.markdown(f"Why: {md_escape(item.why)}")
        if item.passage and item.passage not in item.why:
            st.markdown(f"> {md_escape(item.passage)}")
        elif item.snippet:
            st.markdown(md_escape(item.snippet))
        if item.techniques:
            names = technique_names(resources()[0])
            shown = " · ".join(names.get(key, key) for key in item.techniques)
            st.caption("Techniques: " + md_escape(shown))
        st.caption(md_escape(maturity_label(item)))
        # The item's title is in each label: "Details" alone says nothing out of context, and
        # Streamlit cannot give a link or button a separate aria-label (its help tooltip is
        # not tied to the focused element either).
        short = label_title(item.title)
        whole = md_escape(item.title)
        left, right = st.columns(2)
        with left:
            st.page_link(
                PAGES["document"],
                label=f"Details: {short}",
                query_params={"id": item.canonical_id},
                help=f"Open the page of “{whole}”: summary, sector matches, similar items",
            )
        with right:
            st.page_link(
                PAGES["search"],
                label=f"More like: {short}",
                query_params={"like": item.canonical_id},
                help=f"Search for the documents closest in meaning to “{whole}”",
            )
        if feedback and item.sector_key:
            feedback_controls(
                item.canonical_id,
                item.sector_key,
                context=feedback,
                title=item.title,
                use_case=item.use_case if ask_use_case else "",
            )
        if shortlist:
            default = f"{item.sector_key}/{item.use_case}" if item.use_case else ""
            add_to_shortlist(item.canonical_id, item.title, default=default, context=shortlist)


@st.cache_data(show_spinner="Looking for emerging themes…", max_entries=4)
def _emerging(key: tuple, gen: int) -> ThemeList:
    settings, store = resources()
    return emerging_themes(store, settings)


def emerging() -> ThemeList:
    """The emerging themes as of the newest documents, computed once per new data for every
    page that shows them (This week and Trends)."""
    settings, _ = resources()
    return _emerging((str(settings.data_dir), settings.sqlalchemy_url), generation())


def theme_cards(themes: Sequence[Theme]) -> None:
    """Emerging themes, one expander each: its name and counts, then its growth in a
    sentence ("new this period" when nothing came before), how many weeks it has grown, the
    sectors and use cases it touches, its distinctive terms and its papers (linked). With
    none, why (too few documents, or none grew enough); then any change in what is crawled,
    which is never reported as a theme."""
    if not themes:
        note = getattr(themes, "note", "") or "No machine-learning topic grew enough."
        st.caption(md_escape(f"No emerging theme. {note}"))
    for theme in themes:
        running = running_text(theme)
        counts = (
            f"{theme.size} recent, new this period"
            if theme.new
            else f"{theme.size} recent, {theme.earlier} before"
        )
        heading = f"{theme.heading} — {counts}{', ' + running if running else ''}"
        with st.expander(md_escape(heading)):
            if theme.summary:
                st.markdown(md_escape(sentence(theme.summary) + "."))
            touches = touches_text(theme)
            if touches:
                st.markdown("Touches: " + md_escape(touches))
            if theme.terms:
                st.caption("Distinctive terms: " + md_escape(", ".join(theme.terms)))
            for doc in theme.documents:
                st.markdown("- " + md_link(doc.title, doc.url))
    for change in getattr(themes, "crawl_changes", []):
        st.caption(md_escape(f"Crawl change, not a theme: {change}"))


def table(rows: list[dict[str, Any]], *, caption: str) -> None:
    """A data table with a caption (also the text alternative of a chart)."""
    if not rows:
        st.caption(f"{caption}: nothing to show.")
        return
    st.caption(caption)
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, width="stretch", column_config=_wide_columns(frame))


TEXT_PIXELS = 7.5  # about one character of the table's font, in pixels
WIDE_TEXT = 40  # text columns with values longer than this get room for them (up to a cap)


def _wide_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """Room for long text (an error message, a title): the grid would otherwise cut such a
    column at its default width, with no way to read the rest but opening each cell."""
    config: dict[str, Any] = {}
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        longest = max((len(v) for v in frame[name] if isinstance(v, str)), default=0)
        if longest > WIDE_TEXT:
            width = int(min(longest, 90) * TEXT_PIXELS) + 24
            config[name] = st.column_config.TextColumn(str(name), width=width)
    return config


# Chart text (axis labels and titles, legends): Streamlit's chart theme draws it in #808495,
# 3.7:1 on white; chart text is text too (WCAG 1.4.3), and axe cannot see inside a canvas.
CHART_TEXT = "#1f2328"


def show_chart(figure: Any) -> None:
    """Show an Altair chart full width, its text dark enough to read."""
    ink = {"labelColor": CHART_TEXT, "titleColor": CHART_TEXT}
    styled = figure.configure_axis(**ink).configure_legend(**ink).configure_title(color=CHART_TEXT)
    st.altair_chart(styled, width="stretch")


# An axis of document counts: ticks on whole documents only (no 0.5): alt.Axis(**WHOLE_COUNTS)
WHOLE_COUNTS = {"tickMinStep": 1, "format": "d"}


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
