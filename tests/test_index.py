"""Index mechanics with the deterministic hashing embedder; semantics with the real model."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from core.models import Document
from core.settings import load_settings
from core.store import Store
from index.embedder import HashEmbedder
from index.indexer import embedded_count, index_folder, read_manifest, update_index
from index.search import Searcher, fuse, make_snippet
from tests.conftest import sample_records


def docs_from_sample(n: int, start: int = 0) -> list[Document]:
    return [
        Document(
            canonical_id=r["id"],
            title=r["title"],
            text=r["abstract"],
            published=r["published"],
            categories=r["categories"],
            source="arxiv",
            url=f"https://arxiv.org/abs/{r['id']}",
        )
        for r in sample_records(n, start=start)
    ]


@pytest.fixture
def hash_settings(isolated_settings):
    return load_settings(model="hash:64")


def test_index_builds_then_catches_up_incrementally(hash_settings) -> None:
    store = Store.from_settings(hash_settings)
    emb = HashEmbedder(64)
    store.upsert(docs_from_sample(60))
    first = update_index(store, hash_settings, embedder=emb)
    assert (first.embedded, first.indexed, first.rebuilt) == (60, 60, True)
    again = update_index(store, hash_settings, embedder=emb)
    assert again.up_to_date and again.embedded == 0

    changed = docs_from_sample(1)[0]
    changed.text += " A new version adds a paragraph."
    changed.content_hash = ""
    changed.__post_init__()
    store.upsert([changed, *docs_from_sample(5, start=60)])
    third = update_index(store, hash_settings, embedder=emb)
    assert (third.embedded, third.changed, third.rebuilt, third.indexed) == (6, 6, False, 65)
    searcher = Searcher.open(hash_settings, store=store, embedder=emb)
    assert (
        searcher.search("a new version adds a paragraph", k=1, mode="keyword")[0].canonical_id
        == changed.canonical_id
    )


def test_missing_or_corrupt_index_is_rebuilt(hash_settings) -> None:
    store = Store.from_settings(hash_settings)
    emb = HashEmbedder(64)
    store.upsert(docs_from_sample(30))
    update_index(store, hash_settings, embedder=emb)
    folder = index_folder(hash_settings, emb.name)
    manifest = read_manifest(folder)
    (folder / manifest.vectors_file).write_bytes(b"garbage")
    store.upsert(docs_from_sample(2, start=30))  # out of step + unreadable file
    report = update_index(store, hash_settings, embedder=emb)
    assert report.rebuilt and report.indexed == 32 and report.embedded == 2
    (folder / "manifest.json").unlink()
    searcher = Searcher.open(hash_settings, store=store, embedder=emb)  # rebuilt on open
    assert len(searcher.indexes.vectors) == 32
    assert len(list(folder.glob("*.faiss"))) == 1  # stale files cleaned up


def test_ivf_above_threshold_and_filters_before_ranking(isolated_settings) -> None:
    settings = load_settings(model="hash:64", ann_threshold=50, ivf_nprobe=256)
    store = Store.from_settings(settings)
    emb = HashEmbedder(64)
    docs = docs_from_sample(120)
    store.upsert(docs)
    report = update_index(store, settings, embedder=emb)
    assert report.kind == "ivf"
    searcher = Searcher.open(settings, store=store, embedder=emb)
    target = docs[100]
    # The filter keeps a single month: the best hit must come from it, even though the
    # unfiltered top-k is dominated by other months.
    month = target.published.replace(day=1)
    hits = searcher.search(target.title, k=5, since=month, mode="dense")
    assert hits and all(h.published >= month.date().isoformat() for h in hits)
    only = searcher.search(target.title, k=3, mode="hybrid", ids=np.array([target.id]))
    assert [h.canonical_id for h in only] == [target.canonical_id]


def test_fusion_and_snippet() -> None:
    dense = (np.array([0.9, 0.8]), np.array([1, 2]))
    keyword = (np.array([12.0, 3.0]), np.array([2, 3]))
    ranked = [doc for doc, _ in fuse(dense, keyword)]
    assert ranked[0] == 2  # in both lists
    text = "Intro sentence here. LSTM models predict remaining useful life of engines. Outro."
    assert make_snippet(text, "remaining useful life").startswith("LSTM models")


@pytest.mark.slow
def test_semantic_search_with_the_real_model(settings, store, real_embedder) -> None:
    store.upsert(docs_from_sample(80))
    store.upsert(
        [
            Document(
                canonical_id="fraud-gnn",
                title="Catching card fraud with graph learning",
                text="Payments form a graph of cards, merchants and devices; message passing over "
                "it flags stolen cards better than per-transaction classifiers.",
                published=datetime(2025, 5, 1, tzinfo=UTC),
                source="starter",
            )
        ]
    )
    update_index(store, settings, embedder=real_embedder)
    searcher = Searcher.open(settings, store=store, embedder=real_embedder)
    for mode in ("dense", "hybrid"):
        hits = searcher.search("graph neural networks for transaction fraud", k=3, mode=mode)
        assert hits[0].canonical_id == "fraud-gnn", (mode, [h.title for h in hits])
    assert searcher.search("fraud", k=3, mode="keyword")[0].canonical_id == "fraud-gnn"
    assert (
        searcher.search("fraud", k=3, source="arxiv", mode="dense")[0].canonical_id != "fraud-gnn"
    )
    similar = searcher.similar("fraud-gnn", k=3)
    assert len(similar) == 3 and all(h.canonical_id != "fraud-gnn" for h in similar)
    assert embedded_count(store, real_embedder.name) == 81


def test_keyword_index_update_matches_a_full_rebuild() -> None:
    """Updating with the changed documents gives exactly the scores of a fresh build."""
    from index.keyword import KeywordIndex

    docs = {
        1: ("Graph neural networks for fraud", "Transactions form a graph; fraud rings."),
        2: ("LSTM for turbines", "Remaining useful life of turbofan engines from sensors."),
        3: ("Contract review", "Language models extract clauses from supply contracts."),
    }
    old = KeywordIndex.build((i, t, x) for i, (t, x) in docs.items())
    docs[2] = ("Transformers for turbines", "Attention over vibration sensors predicts failures.")
    docs[4] = ("Fraud in retail returns", "Graph features catch fraudulent product returns.")
    changed = np.array([2, 4])
    updated = old.updated(changed, ((i, *docs[i]) for i in (2, 4)))
    fresh = KeywordIndex.build((i, t, x) for i, (t, x) in sorted(docs.items()))
    for query in ("fraud graph", "turbines sensors", "lstm", "contracts clauses", "vibration"):
        got_scores, got_ids = updated.search(query, 10)
        want_scores, want_ids = fresh.search(query, 10)
        got = dict(zip(got_ids.tolist(), got_scores.tolist(), strict=True))
        want = dict(zip(want_ids.tolist(), want_scores.tolist(), strict=True))
        assert got.keys() == want.keys(), query
        for doc in want:
            assert got[doc] == pytest.approx(want[doc], rel=1e-5), (query, doc)
    assert updated.search("lstm", 5)[1].tolist() == []  # the old text of doc 2 is gone


def test_old_keyword_index_file_is_rebuilt(store: Store) -> None:
    """A keyword index written in an older format is rebuilt when the searcher opens it."""
    hashed = load_settings(model="hash:64")
    store.upsert([Document("a", "Graph fraud", "Fraud rings in a transaction graph.")])
    update_index(store, hashed)
    folder = index_folder(hashed, "hash:64")
    manifest = read_manifest(folder)
    np.savez(folder / manifest.keywords_file, ids=np.array([1]))  # an unreadable old layout
    searcher = Searcher.open(hashed, store=store)
    assert searcher.search("fraud", k=1, mode="keyword")[0].canonical_id == "a"
