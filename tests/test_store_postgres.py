"""The same store and index code on a real PostgreSQL server (VEILLE_DATABASE_URL)."""

from __future__ import annotations

import pytest

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.embedder import HashEmbedder
from index.pipeline import index_and_match
from index.search import Searcher
from tests.pg import find_pg_bin, postgres_server

pytestmark = pytest.mark.skipif(
    find_pg_bin() is None, reason="PostgreSQL server not installed (apt-get install postgresql)"
)


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_store_and_search_on_postgres(pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("VEILLE_DATABASE_URL", pg_url)
    settings = load_settings(model="hash:64")
    store = Store.from_settings(settings)
    assert store.engine.dialect.name == "postgresql"
    docs = [
        Document(
            "2501.00001",
            "Fraud detection with graph networks",
            "Cards and merchants.",
            published="2025-01-03",
        ),
        Document(
            "2501.00002",
            "Demand forecasting for retail",
            "Sales series and promotions.",
            published="2025-02-10",
        ),
        Document(
            "https://n.example/a", "A news story", "Body text.", kind="news", published="2025-02-11"
        ),
    ]
    assert store.upsert(docs).new == 3
    dup = store.upsert(
        [Document("https://n.example/b", "A news story", "Body  text.", kind="news")]
    )
    assert dup.duplicates == 1
    assert (
        store.upsert(
            [
                Document(
                    "2501.00001",
                    "Fraud detection with graph networks",
                    "Cards, merchants, devices.",
                )
            ]
        ).updated
        == 1
    )
    stats = store.stats()
    assert stats["documents"] == 3 and stats["by_month"] == {"2025-01": 1, "2025-02": 2}
    run = store.start_run("arxiv")
    store.finish_run(run, new=3)
    assert store.recent_runs()[0].new == 3

    emb = HashEmbedder(64)
    report = index_and_match(store, settings, embedder=emb)
    assert report.indexed == 3
    hits = Searcher.open(settings, store=store, embedder=emb).search(
        "retail demand forecasting", k=1
    )
    assert hits[0].canonical_id == "2501.00002"
    store.close()
