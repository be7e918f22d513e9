"""Schema migrations, on SQLite and on a throwaway PostgreSQL cluster.

A database made by the last release before migrations (tests/fixtures/previous_release: its
own dump, rows in every table) is opened by today's store: it is adopted, upgraded to the
newest revision, and keeps every row; opening it again changes nothing. A new database gets
the newest revision. Alembic's comparison finds no difference between a migrated database and
core/schema.py, so declarations and migrations cannot drift apart. And every table has one
owner: the only module that declares it as its own and runs SQL on it.
"""

from __future__ import annotations

import ast
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import migrations
from core.store import Store
from tests.pg import find_pg_bin, postgres_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "previous_release"
BACKENDS = ("sqlite", "postgresql")
_PG_NAMES = itertools.count(1)


# -- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


class Databases:
    """Empty databases, or copies of the previous release's, on one backend."""

    def __init__(self, backend: str, folder: Path, server: str | None) -> None:
        self.backend, self.folder, self.server = backend, folder, server
        self.made = 0

    def empty(self) -> str:
        self.made += 1
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / f'db{self.made}.db'}"
        assert self.server is not None
        name = f"veille_{next(_PG_NAMES)}"  # one cluster for the module: never the same name
        engine = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        return sa.engine.make_url(self.server).set(database=name).render_as_string(False)

    def previous_release(self) -> str:
        url = self.empty()
        script = (FIXTURES / f"{self.backend}.sql").read_text(encoding="utf-8")
        if self.backend == "sqlite":
            with sqlite3.connect(sa.engine.make_url(url).database) as conn:
                conn.executescript(script)
        else:
            engine = sa.create_engine(url)
            raw = engine.raw_connection()
            try:
                raw.cursor().execute(script)
                raw.commit()
            finally:
                raw.close()
                engine.dispose()
        return url


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Databases:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    return Databases(request.param, tmp_path, server)


def open_store(url: str) -> Store:
    return Store(url, busy_timeout=10)


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def assert_at_head(store: Store) -> None:
    with store.engine.connect() as conn:
        found = migrations.state(conn)
        assert found.current and found.revision == migrations.head()
        assert migrations.differences(conn) == []


# -- adopting the previous release -------------------------------------------------------


def test_a_previous_release_database_is_adopted_with_its_data(databases, settings) -> None:
    from core.api_keys import list_keys
    from core.subscribers import export_subscriber, list_subscribers
    from crawler.news_sources import feed_states
    from index.feedback import feedback_rows, verdicts
    from index.shortlists import history, list_entries
    from jobs.runs import lease_holder, recent_job_runs

    url = databases.previous_release()
    store = open_store(url)
    try:
        assert store.migrated == (None, migrations.head())
        assert "alembic_version" in tables(store)
        assert_at_head(store)

        # documents, duplicates, crawl runs, key/value and the generation counter
        assert store.count() == 3 and store.duplicate_count() == 1
        paper = store.resolve("https://arxiv.org/abs/2504.01234v2")
        assert paper is not None and paper.authors == ["Ana Lima", "Bo Chen"]
        assert paper.extra == {"version": "v2"} and paper.categories == ["cs.CV", "cs.LG"]
        copy = store.by_canonical_id("https://mirror.example.net/triage")
        assert copy is not None and copy.source == "Example News"  # the duplicate's original
        runs = {r.source: r for r in store.recent_runs()}
        assert runs["news:Example News"].last_error == "HTTP 503 on https://news.example.org/feed"
        assert runs["arxiv"].status == "ok" and runs["arxiv"].new == 2
        assert store.get_meta("arxiv:watermark:cs.LG") == "2025-04-09T00:00:00+00:00"
        assert store.get_meta("matching:taxonomy") == "test-model|abc|1"
        assert store.get_meta("schema_version") == "3"  # releases before migrations refuse it
        assert store.generation() == 2

        # job runs keep what they said, now as their message; the running one and its lease
        by_job = {r.job: r for r in recent_job_runs(store)}
        assert by_job["arxiv"].message == "2 fetched, 2 new, 0 updated; re-index ok"
        assert by_job["digest"].outcome == "error"
        assert by_job["digest"].message.startswith("RuntimeError: week 2025-W19")
        assert by_job["news"].outcome == "running" and by_job["news"].finished is None
        assert lease_holder(store, "news") is not None

        # subscribers, their consent history and sends; API keys; news sources
        people = {p.email: p for p in list_subscribers(store)}
        assert people["ana@example.com"].active and not people["bo@example.org"].active
        ana = export_subscriber(store, "ana@example.com")
        assert [d["status"] for d in ana["digests"]] == ["sent"]
        bo = export_subscriber(store, "bo@example.org")
        assert [h["event"] for h in bo["consent_history"]] == ["subscribed", "unsubscribed"]
        [key] = list_keys(store)
        assert key.name == "notebook" and key.read_only and key.active
        assert feed_states(store)["Example News"].etag == '"abc"'

        # feedback, shortlists (with their append-only log), evidence, matches, vectors, themes
        assert len(feedback_rows(store)) == 2
        assert verdicts(store)[("2504.01234", "health", None)].fits
        [entry] = list_entries(store, settings)
        assert entry.status == "pilot" and entry.notes == "radiology asked"
        assert [line.action for line in history(store, entry.id)] == ["added", "moved"]
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.write() as conn:
                conn.exec_driver_sql("DELETE FROM shortlist_log")
        with store.engine.connect() as conn:
            count = {
                name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
                for name in ("shortlist_evidence", "doc_matches", "doc_techniques")
            }
            count |= {
                name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
                for name in ("embeddings", "theme_ids", "news_fingerprints", "news_sources")
            }
        assert count == {
            "shortlist_evidence": 4,
            "doc_matches": 1,
            "doc_techniques": 1,
            "embeddings": 3,
            "theme_ids": 1,
            "news_fingerprints": 1,
            "news_sources": 2,
        }
    finally:
        store.close()


def test_an_adopted_database_takes_new_rows_and_is_not_migrated_twice(
    databases, settings, monkeypatch
) -> None:
    from jobs.runner import JOBS, JobSpec, run_job

    url = databases.previous_release()
    open_store(url).close()
    store = open_store(url)
    try:
        assert store.migrated is None  # already at the newest revision: one read, no change
        # new rows continue the ids of the old ones (PostgreSQL sequences came along)
        doc_id = store.upsert([_document("2505.00001")]).ids[0]
        assert doc_id == 4 and store.start_run("arxiv") == 3
        monkeypatch.setitem(JOBS, "probe", JobSpec(lambda *_: "probed 3 things", "", "probe"))
        run = run_job("probe", settings, store=store)
        assert (run.id, run.outcome, run.message) == (4, "ok", "probed 3 things")
    finally:
        store.close()


def test_a_new_database_is_made_by_the_migrations(databases) -> None:
    url = databases.empty()
    store = open_store(url)
    try:
        assert store.migrated == (None, migrations.head())
        assert_at_head(store)
        assert {"documents", "job_runs", "shortlist_log", "alembic_version"} <= tables(store)
        assert store.generation() == 0 and store.get_meta("schema_version") == "3"
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("job_runs")}
        assert "message" in columns and "error" not in columns
    finally:
        store.close()
    again = open_store(url)
    assert again.migrated is None
    again.close()


def test_processes_opening_a_new_database_together_migrate_it_once(databases) -> None:
    url = databases.empty()
    start = threading.Barrier(4)
    opened: list[Store] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            opened.append(open_store(url))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    done = [s.migrated for s in opened if s.migrated is not None]
    assert len(opened) == 4 and done == [(None, migrations.head())]
    assert_at_head(opened[0])
    for store in opened:
        store.close()


def test_revision_0002_keeps_the_job_messages_both_ways(databases) -> None:
    from alembic import command

    url = databases.previous_release()
    store = open_store(url)
    try:
        with store.write() as conn:
            command.downgrade(migrations.config(conn), "0001")
        with store.engine.connect() as conn:
            rows = dict(conn.exec_driver_sql("SELECT job, error FROM job_runs").all())
            version = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.scalar() == "2" and migrations.current(conn) == "0001"
        assert rows["arxiv"] == "2 fetched, 2 new, 0 updated; re-index ok"
        with store.write() as conn:
            assert migrations.upgrade(conn) == ("0001", migrations.head())
        assert_at_head(store)
    finally:
        store.close()


def test_older_layouts_are_brought_up_to_the_previous_release(tmp_path: Path) -> None:
    """Crawl runs without an owner (schema_version 1) and match tables without their week
    column: 0001 adds the columns and keeps the rows, and the matches are redone later."""
    url = Databases("sqlite", tmp_path, None).previous_release()
    with sqlite3.connect(sa.engine.make_url(url).database) as conn:
        conn.executescript(
            """
            ALTER TABLE crawl_runs DROP COLUMN owner;
            UPDATE meta SET value = '1' WHERE key = 'schema_version';
            DROP INDEX ix_doc_matches_week;
            ALTER TABLE doc_matches DROP COLUMN week;
            DROP INDEX ix_doc_techniques_week;
            ALTER TABLE doc_techniques DROP COLUMN week;
            """
        )
    store = open_store(url)
    try:
        assert_at_head(store)
        assert len(store.recent_runs()) == 2 and store.close_dead_runs() == []  # no owner: left
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT doc_id, week FROM doc_matches").all()
        assert rows == [(1, None)]  # kept; the week comes with the next matching run
        assert store.get_meta("matching:taxonomy") == ""  # ... which redoes every match
    finally:
        store.close()


def test_a_database_of_a_newer_veille_is_refused_with_its_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'a1b2c3'")
    with pytest.raises(migrations.SchemaTooNew, match="revision a1b2c3, newer than this Veille"):
        open_store(url)


def test_veille_db_current_and_upgrade(isolated_settings: Path) -> None:
    from click.testing import CliRunner

    from jobs.cli import cli

    runner = CliRunner()
    nothing = runner.invoke(cli, ["db", "current"])  # a wrong path gets no empty database
    assert nothing.exit_code == 0 and "no database there yet" in nothing.output
    assert not (isolated_settings / "veille.db").exists()
    isolated_settings.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(isolated_settings / "veille.db") as conn:
        conn.executescript((FIXTURES / "sqlite.sql").read_text(encoding="utf-8"))
    shown = runner.invoke(cli, ["db", "current"])
    assert shown.exit_code == 0 and "made by a release before migrations" in shown.output
    done = runner.invoke(cli, ["db", "upgrade"])
    assert done.exit_code == 0, done.output
    assert f"upgraded from no revision to {migrations.head()}" in done.output
    again = runner.invoke(cli, ["db", "upgrade"])
    assert f"already at revision {migrations.head()}" in again.output
    shown = runner.invoke(cli, ["db", "current", "--json"])
    assert f'"revision": "{migrations.head()}", "head": "{migrations.head()}"' in shown.output


def _document(canonical_id: str):
    from core.models import Document

    return Document(
        canonical_id, "A new paper", "Its abstract.", published=datetime(2025, 5, 1, tzinfo=UTC)
    )


# -- one owner per table -----------------------------------------------------------------

PACKAGES = ("core", "crawler", "index", "jobs", "api", "dashboard")

# Modules that read (never write) a table they do not own, in a join the owner's functions
# do not offer yet. Each is named with why; an entry no longer needed fails the test.
READERS: dict[tuple[str, str], str] = {
    ("index.vectors", "documents"): "vectors by row id: a join of documents and embeddings",
    ("index.indexer", "documents"): "the texts still to embed: documents without a vector",
    ("index.learner", "documents"): "row ids of the newest documents, and their canonical ids",
    ("index.training", "documents"): "row ids of the judged papers, by canonical id",
    ("index.matching", "documents"): "all row ids, and matches ordered by publication date",
    ("index.opportunity", "documents"): "publication dates of a document's neighbours",
    ("index.reports", "documents"): "matches and tags in a window of publication dates",
    ("index.story", "documents"): "news items that cite a paper (a LIKE on their text)",
    ("index.theme_window", "documents"): "the documents of a time window, with their metadata",
    ("index.trends", "documents"): "documents per day in a window, joined to the matches",
    ("index.reports", "doc_matches"): "trend reports count matches per week",
    ("index.reports", "doc_techniques"): "trend reports count technique tags per week",
    ("index.theme_window", "doc_techniques"): "theme candidates skip tagged documents",
    ("index.trends", "doc_matches"): "weekly counts per use case",
    ("index.trends", "doc_techniques"): "weekly counts per technique",
    ("index.story", "shortlist_entries"): "the entries whose evidence it records",
}
# ...and the one module that writes a table it does not own.
WRITERS: dict[tuple[str, str], str] = {
    ("index.indexer", "embeddings"): "embed_pending stores the vectors it computes",
}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("core", "migrations") or rel == Path("core/schema.py"):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> Iterator[tuple[str, str, str]]:
    """(from module, name, local name) of every ``from X import name``, in functions too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name, alias.asname or alias.name


def test_each_table_is_declared_once_and_used_by_its_owner() -> None:
    from core import schema

    declared = {name: table for name, table in vars(schema).items() if isinstance(table, sa.Table)}
    assert {t.name for t in declared.values()} == set(schema.metadata.tables)
    modules = dict(_modules())
    problems: list[str] = []
    exported: dict[tuple[str, str], str] = {}  # (owner module, local name) -> table
    for module, tree in modules.items():
        for source, name, local in _imports(tree):
            if source == "core.schema" and name in declared:
                table = declared[name]
                if table.info["owner"] != module:
                    problems.append(
                        f"{module} imports table {table.name} (owner {table.info['owner']})"
                    )
                exported[(module, local)] = table.name
        for node in ast.walk(tree):  # a table declared anywhere else
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "Table"
                and not (node.args and getattr(node.args[0], "id", "") == "JOBSTORE_TABLE")
            ):
                problems.append(f"{module}:{node.lineno} declares a table outside core/schema.py")
    seen: set[tuple[str, str]] = set()
    for module, tree in modules.items():
        for source, name, local in _imports(tree):
            table = exported.get((source, name))
            if table is None or source == module:
                continue
            seen.add((module, table))
            if (module, table) not in READERS | WRITERS:
                problems.append(f"{module} uses table {table} of {source}: call {source} instead")
            elif (module, table) not in WRITERS:
                problems += [
                    f"{module}:{node.lineno} writes {table}, which it may only read"
                    for node in ast.walk(tree)
                    if isinstance(node, ast.Attribute)
                    and node.attr in ("insert", "update", "delete")
                    and getattr(node.value, "id", None) == local
                ]
    stale = (READERS | WRITERS).keys() - seen
    problems += [f"stale exception: {module} no longer uses {table}" for module, table in stale]
    assert problems == [], "\n".join(problems)
    owners = set(schema.owners().values())
    assert owners <= set(modules), owners - set(modules)
