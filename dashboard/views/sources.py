"""Sources: crawl health (last runs, errors, item counts per source) and scheduled jobs."""

from __future__ import annotations

import streamlit as st

from dashboard.common import page_header, resources, table
from index.reports import source_health

page_header(
    "Sources", "Crawl health: when each source was last read, what came in, and what failed."
)
settings, store = resources()
health = source_health(store)
c1, c2 = st.columns(2)
c1.metric("Documents", health["documents"])
c2.metric("Sources with documents", len(health["by_source"]))
st.header("Last run per source")
if not health["latest"]:
    st.info(
        "No crawl has run yet. Run `veille crawl arxiv` or `veille crawl news`, or start "
        "`veille scheduler` to crawl on a schedule."
    )
else:
    failing = [r for r in health["latest"] if r["status"] not in ("ok", "running")]
    if failing:
        st.warning(
            f"{len(failing)} source(s) failed on their last run: "
            + ", ".join(r["source"] for r in failing)
        )
    table(
        health["latest"], caption="Last run of each source (status, items new/updated, last error)"
    )
st.header("Documents per source")
table(
    [{"source": k, "documents": v} for k, v in health["by_source"].items()],
    caption="Documents stored per source",
)
st.header("Recent runs")
table(health["runs"], caption="The 50 most recent crawl runs")

try:
    from jobs.scheduler import recent_job_runs  # the scheduler module may not be installed yet
except ImportError:  # pragma: no cover - depends on the installed modules
    recent_job_runs = None
if recent_job_runs is not None:
    st.header("Scheduled jobs")
    runs = recent_job_runs(store, 30)
    table(
        [r if isinstance(r, dict) else getattr(r, "__dict__", {"run": str(r)}) for r in runs],
        caption="Recent scheduled job runs (job, start, end, outcome, error)",
    )
