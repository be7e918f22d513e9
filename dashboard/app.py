"""The Veille dashboard: `veille dashboard` runs `streamlit run` on this file.

This file is the router: it declares the pages, draws the grouped navigation and runs the
page the visitor asked for.

Streamlit's own grouped sidebar navigation (``st.navigation`` with sections) puts section
headers and ``<li>`` items side by side inside one ``<ul>``: screen readers get a broken list
and axe reports it on every page (see ACCESSIBILITY.md). So the built-in menu is hidden and the
sidebar draws the same groups itself: one heading per group, then one link per page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from dashboard.common import FOCUS_STYLE, PAGES, refuse_foreign_host  # noqa: E402

st.set_page_config(page_title="Veille: AI tech watch", layout="wide")
refuse_foreign_host()  # DNS rebinding: a page reached under a foreign name shows nothing

pages = {
    "Watch": [
        # Streamlit serves the default page at "/" only; /this-week is the hidden twin below.
        st.Page(PAGES["week"], title="This week", url_path="home", default=True),
        st.Page(PAGES["sectors"], title="Sectors", url_path="sectors"),
        st.Page(PAGES["shortlists"], title="Shortlists", url_path="shortlists"),
        st.Page(PAGES["trends"], title="Trends", url_path="trends"),
    ],
    "Analyse": [
        st.Page(PAGES["search"], title="Search", url_path="search"),
        st.Page(PAGES["document"], title="Document", url_path="document"),
    ],
    "Operate": [
        st.Page(PAGES["sources"], title="Sources", url_path="sources"),
    ],
}
# Opened from links in the digest only, never from the menu; and /this-week, the address of
# the default page (served at "/") under its own name, so a bookmark or a link to it works.
hidden = [
    st.Page(PAGES["week"], title="This week", url_path="this-week"),
    st.Page(PAGES["unsubscribe"], title="Unsubscribe", url_path="unsubscribe"),
    st.Page(PAGES["feedback"], title="Feedback", url_path="feedback"),
]
page = st.navigation([*(p for group in pages.values() for p in group), *hidden], position="hidden")
# Every page gets its own <title>, so a tab, a bookmark and a screen reader say where one is.
st.set_page_config(page_title=f"{page.title} · Veille")
st.html(FOCUS_STYLE)
with st.sidebar:
    for group, entries in pages.items():
        st.subheader(group, anchor=False)
        for entry in entries:
            st.page_link(entry, label=entry.title)
    st.text_input(
        "Your name, for feedback and shortlist decisions",
        key="answer_as",
        help="Shown with your 'fits / does not fit' answers and in the shortlists' decision "
        "log; leave empty to answer anonymously.",
    )
page.run()
