"""Unsubscribe: the page the digest's signed link opens."""

from __future__ import annotations

import streamlit as st

from core.markup import md_escape
from dashboard.common import resources
from jobs.facade import unsubscribe_with_token

st.title("Unsubscribe from the Veille digest")
token = st.query_params.get("token", "")
if not token:
    st.info("This page is opened from the unsubscribe link at the bottom of a digest email.")
    st.stop()
settings, store = resources()
# A confirmation click, so that mail scanners that open links do not unsubscribe anyone.
st.write("Press the button to stop receiving the weekly digest at this address.")
if st.button("Unsubscribe me", type="primary"):
    try:
        email = unsubscribe_with_token(store, settings, token)
    except ValueError as exc:
        st.error(f"This unsubscribe link is not valid: {md_escape(str(exc))}")
    else:
        if email is None:
            st.success("This address is no longer on the list: no digest will be sent to it.")
        else:
            st.success(
                f"{md_escape(email)} will receive no more digests. "
                "You can subscribe again at any time."
            )
