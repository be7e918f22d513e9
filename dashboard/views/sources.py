"""Sources: crawl health per source, news feeds, schedules and job runs, operator actions."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core.markup import counted, md_escape
from dashboard.common import page_header, resources, table
from dashboard.present import latest_run_rows, progress_rows, run_rows
from index.reports import open_crawls, source_runs
from jobs.facade import LaunchRefused, job_tables, launch_job, source_alerts, source_table

page_header(
    "Sources", "Crawl health: when each source was last read, what came in, and what failed."
)
settings, store = resources()
health = source_runs(store)
c1, c2 = st.columns(2)
c1.metric("Documents", health.documents)
c2.metric("Sources with documents", len(health.by_source))


def in_progress() -> None:
    """Crawls running now (the first crawl after install, a scheduled or operator one), with
    their counts so far."""
    now = datetime.now(UTC)
    running = open_crawls(store, now=now, stale_after=settings.job_timeout)
    if not running:
        return
    st.header("Crawling now")
    st.caption(
        "Counts so far, refreshed every 10 seconds; the documents are searchable once the "
        "re-index that follows each crawl has run."
    )
    table(
        progress_rows(running, now=now),
        caption="Crawls in progress (source, start, pages read, items new/updated)",
    )


# Redrawn every 10 seconds only while a crawl runs, so the page follows it without a reload.
_running_now = open_crawls(store, now=datetime.now(UTC), stale_after=settings.job_timeout)
st.fragment(in_progress, run_every=10 if _running_now else None)()

st.header("Last run per source")
if not health.latest:
    st.info(
        "No crawl has run yet. Run `veille crawl arxiv` or `veille crawl news`, or start "
        "`veille scheduler` to crawl on a schedule."
    )
else:
    failing = [r for r in health.latest if r.status not in ("ok", "running", "partial")]
    if failing:
        st.warning(
            f"{counted(len(failing), 'source')} failed on their last run: "
            + ", ".join(r.source for r in failing)
        )
    partial = [r.source for r in health.latest if r.status == "partial"]
    if partial:
        st.info(
            f"{counted(len(partial), 'source')} stopped midway on their last run (what they "
            "read is stored; the next crawl reads the rest): " + ", ".join(partial)
        )
    table(
        latest_run_rows(health.latest),
        caption="Last run of each source (status, items new/updated, last error)",
    )
    errors = [r for r in health.latest if r.last_error]
    if errors:
        with st.expander(f"Last errors in full ({len(errors)})"):
            for run in errors:
                st.markdown(f"- **{md_escape(run.source)}**: {md_escape(run.last_error)}")

st.header("News sources")
alerts = source_alerts(store, settings, now=datetime.now(UTC))
if alerts:
    st.warning(
        f"{counted(len(alerts), 'news source')} {'needs' if len(alerts) == 1 else 'need'} "
        "a look (silent for "
        f"{settings.source_silence_days} days or more, or failing crawl after crawl):\n\n"
        + "\n".join(f"- {md_escape(a.message)}" for a in alerts)
    )
news = source_table(store, settings)
table(
    news,
    caption="Configured news feeds: enabled, last crawl, items new/updated, last error "
    "(add one with `veille sources add NAME FEED_URL`)",
)

st.header("Documents per source")
table(
    [{"source": k, "documents": v} for k, v in health.by_source.items()],
    caption="Documents stored per source",
)
st.header("Recent crawl runs")
table(run_rows(health.runs), caption="The 50 most recent crawl runs")

st.header("Scheduled jobs")
jobs = job_tables(store, settings)
table(jobs["schedules"], caption="Schedules (cron, in the configured time zone) and next runs")
table(jobs["runs"], caption="Recent job runs (job, start, duration, outcome, message)")

st.header("Operator actions")
st.caption(
    "Start a job now in the background, after a confirmation. A job already running (from "
    "the scheduler or an earlier click) is not started twice, and a job started from here "
    f"can be started again only after {settings.operator_cooldown:g} seconds."
)
ACTIONS = {
    "arxiv": "Crawl arXiv now",
    "news": "Crawl news now",
    "reindex": "Re-index now",
    "matcher": "Retrain the matcher now",
}
# What the last confirmation did, said once after the page is redrawn without the prompt.
said = st.session_state.pop("launch-result", None)
if said:
    getattr(st, said[0])(said[1])
for column, (name, label) in zip(st.columns(len(ACTIONS)), ACTIONS.items(), strict=True):
    if column.button(label, key=f"launch-{name}"):
        st.session_state["launch-pending"] = name
pending = st.session_state.get("launch-pending")
if pending in ACTIONS:
    st.warning(
        f"Start “{ACTIONS[pending]}”? It runs in the background and may take minutes; "
        "crawls read the configured sources."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, start it", key="launch-confirm", type="primary"):
        st.session_state.pop("launch-pending", None)
        try:
            process = launch_job(settings, pending, store=store)
        except LaunchRefused as exc:
            st.session_state["launch-result"] = ("error", f"Not started: {md_escape(str(exc))}.")
        else:
            st.session_state["launch-result"] = (
                "success",
                f"Started the {pending} job (process {process.pid}). Its run appears under "
                "“Recent job runs” when it ends; reload the page to see it.",
            )
        st.rerun()  # redraw without the question that was just answered
    elif no.button("Cancel", key="launch-cancel"):
        st.session_state.pop("launch-pending", None)
        st.session_state["launch-result"] = ("info", "Nothing was started.")
        st.rerun()
