"""The schema of the last release before migrations: 22 tables, their indexes, and the
triggers that keep the shortlist decision log append-only.

On an empty database it creates all of it. On a database made by that release (no
alembic_version) it creates only what is missing, because that release created most tables
the first time a module used them, and it brings two older layouts up to date:

* ``crawl_runs`` without ``owner`` (the store's schema_version 1): the column is added, empty;
* ``doc_matches`` / ``doc_techniques`` without ``week``: the column and its index are added
  and the matching stamp is cleared, so the next index update re-matches every document and
  fills it. (index/matching.py used to drop and rebuild both tables for this.)

The tables are written out here, as they were, rather than imported from core.schema: a
migration must keep doing what it did when core.schema moves on.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

snapshot = sa.MetaData()

sa.Table(
    "documents",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("published", sa.DateTime, index=True),
    sa.Column("authors", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("rev", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Table(
    "duplicates",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("original_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
    sa.Column("seen_at", sa.DateTime, nullable=False),
)
sa.Table(
    "crawl_runs",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("fetched", sa.Integer, nullable=False),
    sa.Column("new", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
)
sa.Table(
    "meta",
    snapshot,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
sa.Table(
    "counters",
    snapshot,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
sa.Table(
    "api_keys",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("handle", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.DateTime, nullable=True),
)
sa.Table(
    "subscribers",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("sectors", sa.JSON, nullable=False),
    sa.Column("techniques", sa.JSON, nullable=False),
    sa.Column("consent_at", sa.DateTime, nullable=True),
    sa.Column("consent_source", sa.String(200), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("unsubscribed", sa.DateTime, nullable=True),
)
sa.Table(
    "digest_sends",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("week", sa.String(10), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("email", "week", name="uq_digest_sends_email_week"),
)
sa.Table(
    "subscriber_consents",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("sectors", sa.JSON, nullable=False),
    sa.Column("techniques", sa.JSON, nullable=False),
)
sa.Table(
    "news_sources",
    snapshot,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("feed_url", sa.Text),
    sa.Column("follow_pages", sa.Boolean),
    sa.Column("enabled", sa.Boolean),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Table(
    "news_feed_state",
    snapshot,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("feed_url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("last_modified", sa.Text, nullable=False),
    sa.Column("last_crawl", sa.DateTime),
    sa.Column("last_success", sa.DateTime),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("new", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
)
sa.Table(
    "news_fingerprints",
    snapshot,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("simhash", sa.BigInteger, nullable=False),
)
sa.Table(
    "job_runs",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False, index=True),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
)
sa.Table(
    "job_leases",
    snapshot,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
)
sa.Table(
    "embeddings",
    snapshot,
    sa.Column("model", sa.String(300), primary_key=True),
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)
sa.Table(
    "doc_matches",
    snapshot,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("use_case", sa.String(100), primary_key=True),
    sa.Column("sector", sa.String(100), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("similarity", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("passage", sa.Text, nullable=False),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_matches_week", "week", "use_case"),
)
sa.Table(
    "doc_techniques",
    snapshot,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("technique", sa.String(100), primary_key=True, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_techniques_week", "week", "technique"),
)
sa.Table(
    "feedback",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(2000), nullable=False, index=True),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("use_case", sa.String(100), nullable=True),
    sa.Column("fits", sa.Boolean, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
)
sa.Table(
    "shortlist_entries",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("canonical_id", sa.String(1000), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False, index=True),
    sa.Column("use_case", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("removed", sa.DateTime, nullable=True),
    sa.UniqueConstraint("canonical_id", "sector", "use_case", name="uq_shortlist_entry"),
)
sa.Table(
    "shortlist_log",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("by", sa.String(120), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("old", sa.Text, nullable=False),
    sa.Column("new", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
sa.Table(
    "shortlist_evidence",
    snapshot,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Integer, nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(2000), nullable=False),
    sa.Column("seen", sa.DateTime, nullable=False),
    sa.UniqueConstraint("entry_id", "kind", "detail", name="uq_shortlist_evidence"),
)
sa.Table(
    "theme_ids",
    snapshot,
    sa.Column("theme_id", sa.String(40), primary_key=True),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("centroid", sa.LargeBinary, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("first_week", sa.Integer, nullable=False),
    sa.Column("last_week", sa.Integer, nullable=False, index=True),
)

APPEND_ONLY = "the shortlist decision log is append-only"
SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS shortlist_log_no_update BEFORE UPDATE ON shortlist_log "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
    "CREATE TRIGGER IF NOT EXISTS shortlist_log_no_delete BEFORE DELETE ON shortlist_log "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
)
PG_GUARDS = (
    "CREATE OR REPLACE FUNCTION shortlist_log_append_only() RETURNS trigger AS $$ "
    f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS shortlist_log_guard ON shortlist_log",
    "CREATE TRIGGER shortlist_log_guard BEFORE UPDATE OR DELETE ON shortlist_log "
    "FOR EACH ROW EXECUTE FUNCTION shortlist_log_append_only()",
)


def _columns(bind: sa.Connection, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(bind).get_columns(table)}


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    # Older layouts first: create_all below leaves an existing table as it is.
    if "crawl_runs" in existing and "owner" not in _columns(bind, "crawl_runs"):
        op.add_column(
            "crawl_runs", sa.Column("owner", sa.String(200), nullable=False, server_default="")
        )
    stale_matches = False
    for table, second in (("doc_matches", "use_case"), ("doc_techniques", "technique")):
        if table in existing and "week" not in _columns(bind, table):
            op.add_column(table, sa.Column("week", sa.Integer, nullable=True))
            op.create_index(f"ix_{table}_week", table, ["week", second])
            stale_matches = True
    snapshot.create_all(bind, checkfirst=True)
    meta, counters = snapshot.tables["meta"], snapshot.tables["counters"]
    if stale_matches:
        bind.execute(meta.update().where(meta.c.key == "matching:taxonomy").values(value=""))
    # The key the store read before migrations: releases of that time refuse a database
    # whose number is higher than theirs (0002 raises it).
    if not bind.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first():
        bind.execute(meta.insert().values(key="schema_version", value="2"))
    if not bind.execute(sa.select(counters.c.name).where(counters.c.name == "generation")).first():
        bind.execute(counters.insert().values(name="generation", value=0))
    for statement in PG_GUARDS if bind.dialect.name == "postgresql" else SQLITE_GUARDS:
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    snapshot.drop_all(bind)
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS shortlist_log_append_only()")
