"""Two API processes' worth of servers over one PostgreSQL store: the same answers, FAISS
built from the shared embeddings (nothing embedded twice), and catching up after a write."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.api_keys import create_key
from core.loader import load_jsonl
from core.settings import load_settings
from core.store import Store
from index.pipeline import index_and_match
from index.search import Searcher
from tests.apiserver import ServedApi
from tests.pg import find_pg_bin, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server binaries not installed"),
]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts = 0

    def encode(self, texts, **kwargs):
        self.texts += len(texts)
        return self.inner.encode(texts, **kwargs)


def test_two_replicas_answer_alike_and_catch_up(tmp_path: Path, real_embedder) -> None:
    with postgres_server() as url:
        first = load_settings(data_dir=tmp_path / "replica-a", database_url=url)
        second = load_settings(data_dir=tmp_path / "replica-b", database_url=url)
        writer_store = Store.from_settings(first)
        load_jsonl(FIXTURES / "corpus_small.jsonl", writer_store)
        index_and_match(writer_store, first, embedder=real_embedder)  # embeds, once
        key = create_key(writer_store, "analyst").secret

        store_a, store_b = Store.from_settings(first), Store.from_settings(second)
        counting = CountingEmbedder(real_embedder)
        searcher_a = Searcher.open(first, store=store_a, embedder=real_embedder)
        searcher_b = Searcher.open(second, store=store_b, embedder=counting)
        assert counting.texts == 0, "replica B embedded documents instead of reusing them"
        assert searcher_b.indexes.manifest.count == 12

        with (
            ServedApi(first, store_a, searcher_a) as a,
            ServedApi(second, store_b, searcher_b) as b,
        ):
            with a.client(key) as client_a, b.client(key) as client_b:
                for query in ("card fraud", "robot assembly", "contracts review"):
                    params = {"q": query, "k": 5}
                    hits_a = client_a.get("/v1/search", params=params).json()["hits"]
                    hits_b = client_b.get("/v1/search", params=params).json()["hits"]
                    assert hits_a and hits_a == hits_b

                extra = tmp_path / "extra.jsonl"
                extra.write_text(
                    '{"id": "2601.00099", "title": "Speech recognition for call centres", '
                    '"text": "A streaming speech recognition model transcribes customer calls '
                    'so that banks can search and audit them.", "published": "2026-03-20"}\n'
                )
                load_jsonl(extra, writer_store)
                index_and_match(writer_store, first, embedder=real_embedder)  # replica A's data dir

                before = counting.texts
                found = client_b.get("/v1/search", params={"q": "speech recognition calls"})
                assert found.json()["hits"][0]["id"] == "2601.00099"
                assert counting.texts == before + 1, "B embedded more than the query"
                doc = client_b.get("/v1/documents/2601.00099")
                assert doc.status_code == 200
        for s in (store_a, store_b, writer_store):
            s.close()
