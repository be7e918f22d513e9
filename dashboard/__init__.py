"""The Streamlit dashboard: pages that only render what index/ and core/ return."""
