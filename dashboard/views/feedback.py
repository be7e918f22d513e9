"""Feedback: the page a digest's signed "fits / does not fit" link opens."""

from __future__ import annotations

import streamlit as st

from core.markup import md_escape
from dashboard.common import resources
from index.lookup import document_title

st.title("Tell Veille whether a match fits")
token = st.query_params.get("token", "")
if not token:
    st.info(
        "This page is opened from the 'Does it fit?' links of the weekly digest. On the "
        "dashboard, answer with the 'Fits' and 'Does not fit' buttons under each match."
    )
    st.stop()
settings, store = resources()
from jobs.facade import read_feedback_token, record_feedback_from_token  # noqa: E402

try:
    link = read_feedback_token(settings, store, token)
except ValueError as exc:
    st.error(f"{md_escape(str(exc))}. Nothing was recorded.")
    st.stop()
title = document_title(store, link.document)
target = link.sector + (f" / {link.use_case}" if link.use_case else "")
word = "fits" if link.fits else "does not fit"
# A confirmation click, so that mail scanners that open links record nothing.
st.write(f"Record that “{md_escape(title or link.document)}” {word} {md_escape(target)}?")
if st.button("Record my answer", type="primary"):
    try:
        record_feedback_from_token(store, settings, token)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        st.error(f"Not recorded: {md_escape(str(message))}")
    else:
        st.success(
            "Thank you: your answer is recorded. The matcher learns from it at its next training."
        )
