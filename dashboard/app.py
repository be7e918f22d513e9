"""The Veille dashboard: `veille dashboard` runs `streamlit run` on this file.

This file is the router: it declares the pages and runs the one the visitor asked for.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from dashboard.common import PAGES, refuse_foreign_host  # noqa: E402

st.set_page_config(page_title="Veille: AI tech watch", layout="wide")
refuse_foreign_host()  # DNS rebinding: a page reached under a foreign name shows nothing

pages = {
    "Watch": [
        st.Page(PAGES["week"], title="This week", url_path="this-week", default=True),
        st.Page(PAGES["sectors"], title="Sectors", url_path="sectors"),
        st.Page(PAGES["trends"], title="Trends", url_path="trends"),
    ],
    "Analyse": [
        st.Page(PAGES["search"], title="Search", url_path="search"),
        st.Page(PAGES["document"], title="Document", url_path="document"),
    ],
    "Operate": [
        st.Page(PAGES["sources"], title="Sources", url_path="sources"),
        st.Page(
            PAGES["unsubscribe"], title="Unsubscribe", url_path="unsubscribe", visibility="hidden"
        ),
        st.Page(PAGES["feedback"], title="Feedback", url_path="feedback", visibility="hidden"),
    ],
}
st.sidebar.text_input(
    "Your name, for feedback",
    key="answer_as",
    help="Shown with your 'fits / does not fit' answers; leave empty to answer anonymously.",
)
st.navigation(pages).run()
