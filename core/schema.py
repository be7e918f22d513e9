"""Every table of Veille's database, declared once, on one ``metadata`` that Alembic compares
with the migrations (core/migrations).

Declarations live here, in the lowest layer, because Alembic must see all of them and ``core``
imports nothing above it. Using a table is another matter: each one has a single *owner*
module (``info["owner"]``), the only one that runs SQL on it; everyone else calls the owner's
functions (``Store.upsert``, ``record_feedback``, ``claim_send``...). tests/test_migrations.py
holds both rules: the owner map, and no drift between these declarations and the migrations.

To change a table: edit it here, then add a migration (README, "Schema migrations").

    from core.schema import documents    # in core/store.py, the owner of ``documents``
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Created and managed by a library, not by Veille's migrations: APScheduler's job store.
JOBSTORE_TABLE = "apscheduler_jobs"
LIBRARY_TABLES = frozenset({JOBSTORE_TABLE})


def _owned(owner: str) -> dict[str, str]:
    return {"owner": owner}


# -- core.store: documents, their duplicates, crawl runs, key/value, counters ---------------

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False, default=""),
    sa.Column("published", sa.DateTime, index=True),
    sa.Column("authors", sa.JSON, nullable=False, default=list),
    sa.Column("categories", sa.JSON, nullable=False, default=list),
    sa.Column("language", sa.String(16), nullable=False, default="en"),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("extra", sa.JSON, nullable=False, default=dict),
    sa.Column("rev", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info=_owned("core.store"),
)

duplicates = sa.Table(
    "duplicates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("original_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
    sa.Column("seen_at", sa.DateTime, nullable=False),
    info=_owned("core.store"),
)

crawl_runs = sa.Table(
    "crawl_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("status", sa.String(16), nullable=False, default="running"),
    sa.Column("pages", sa.Integer, nullable=False, default=0),
    sa.Column("fetched", sa.Integer, nullable=False, default=0),
    sa.Column("new", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    # host:pid of the process that started the run: a run left "running" by a process of
    # this host that is gone is closed at the next crawl (Store.close_dead_runs).
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    info=_owned("core.crawl_runs"),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    info=_owned("core.store"),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    info=_owned("core.store"),
)

# -- core.api_keys -------------------------------------------------------------------------

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("handle", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("read_only", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.DateTime, nullable=True),
    info=_owned("core.api_keys"),
)

# -- core.subscribers: the personal data, with its consent history and send history ---------

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("sectors", sa.JSON, nullable=False),
    sa.Column("techniques", sa.JSON, nullable=False),
    sa.Column("consent_at", sa.DateTime, nullable=True),
    sa.Column("consent_source", sa.String(200), nullable=False, default=""),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("unsubscribed", sa.DateTime, nullable=True),
    info=_owned("core.subscribers"),
)

digest_sends = sa.Table(
    "digest_sends",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("week", sa.String(10), nullable=False),
    # sending: claimed, outcome unknown yet; sent; failed (retried later); uncertain (a run
    # died between claim and outcome: never retried, so nobody gets a week twice)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("claimed_at", sa.DateTime, nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("email", "week", name="uq_digest_sends_email_week"),
    info=_owned("core.subscribers"),
)

# Every consent event, appended and never rewritten: subscribing again adds a row, so the
# history of what a person agreed to, when and where, survives later changes.
subscriber_consents = sa.Table(
    "subscriber_consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),  # subscribed, changed, unsubscribed
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=False, default=""),
    sa.Column("sectors", sa.JSON, nullable=False),
    sa.Column("techniques", sa.JSON, nullable=False),
    info=_owned("core.subscribers"),
)

# -- crawler.news_sources, crawler.news_dedup ----------------------------------------------

news_sources = sa.Table(
    "news_sources",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("feed_url", sa.Text),  # set for sources added from the CLI
    sa.Column("follow_pages", sa.Boolean),
    sa.Column("enabled", sa.Boolean),  # NULL: as configured
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info=_owned("crawler.news_sources"),
)

news_feed_state = sa.Table(
    "news_feed_state",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("feed_url", sa.Text, nullable=False, default=""),
    sa.Column("etag", sa.Text, nullable=False, default=""),
    sa.Column("last_modified", sa.Text, nullable=False, default=""),
    sa.Column("last_crawl", sa.DateTime),
    sa.Column("last_success", sa.DateTime),
    sa.Column("status", sa.String(32), nullable=False, default=""),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("new", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    info=_owned("crawler.news_sources"),
)

news_fingerprints = sa.Table(
    "news_fingerprints",
    metadata,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("simhash", sa.BigInteger, nullable=False),
    info=_owned("crawler.news_dedup"),
)

# -- jobs.runs ------------------------------------------------------------------------

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False, index=True),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # running, ok, error, skipped...
    # What the run did ("2 new, re-index ok") or why it failed: called ``error`` before
    # migration 0002.
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(200), nullable=False, default=""),
    info=_owned("jobs.runs"),
)

job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
    info=_owned("jobs.runs"),
)

# -- index: embeddings cache, matches, feedback, shortlists, themes ------------------------

embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column("model", sa.String(300), primary_key=True),
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    info=_owned("index.vectors"),
)

doc_matches = sa.Table(
    "doc_matches",
    metadata,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("use_case", sa.String(100), primary_key=True),
    sa.Column("sector", sa.String(100), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("similarity", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("passage", sa.Text, nullable=False),
    sa.Column("terms", sa.JSON, nullable=False),
    # Monday of the publication week, as days since 1970-01-01: trends group on it directly.
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_matches_week", "week", "use_case"),
    info=_owned("index.matching"),
)

doc_techniques = sa.Table(
    "doc_techniques",
    metadata,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("technique", sa.String(100), primary_key=True, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_techniques_week", "week", "technique"),
    info=_owned("index.matching"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(2000), nullable=False, index=True),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("use_case", sa.String(100), nullable=True),
    sa.Column("fits", sa.Boolean, nullable=False),
    sa.Column("by", sa.String(200), nullable=False, default=""),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    info=_owned("index.feedback"),
)

SHORTLIST_NAME = 120  # longest owner or author name (index.shortlists.MAX_NAME)

shortlist_entries = sa.Table(
    "shortlist_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1000), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False, index=True),
    sa.Column("use_case", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(SHORTLIST_NAME), nullable=False, default=""),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("removed", sa.DateTime, nullable=True),
    sa.UniqueConstraint("canonical_id", "sector", "use_case", name="uq_shortlist_entry"),
    info=_owned("index.shortlists"),
)

# Append-only: triggers (made by migration 0001) refuse any UPDATE or DELETE of a line.
shortlist_log = sa.Table(
    "shortlist_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("by", sa.String(SHORTLIST_NAME), nullable=False, default=""),
    # added, moved, owner, note, removed, restored
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("old", sa.Text, nullable=False, default=""),
    sa.Column("new", sa.Text, nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    info=_owned("index.shortlists"),
)

shortlist_evidence = sa.Table(
    "shortlist_evidence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Integer, nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # version, code, news, looked
    sa.Column("detail", sa.String(2000), nullable=False),
    sa.Column("seen", sa.DateTime, nullable=False),
    sa.UniqueConstraint("entry_id", "kind", "detail", name="uq_shortlist_evidence"),
    info=_owned("index.story"),
)

theme_ids = sa.Table(
    "theme_ids",
    metadata,
    sa.Column("theme_id", sa.String(40), primary_key=True),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("centroid", sa.LargeBinary, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("first_week", sa.Integer, nullable=False),  # week numbers, as in index.matching
    sa.Column("last_week", sa.Integer, nullable=False, index=True),
    info=_owned("index.themes"),
)


def owners() -> dict[str, str]:
    """Table name -> the module that owns it."""
    return {name: table.info["owner"] for name, table in metadata.tables.items()}
