"""Dashboard page render times on a 100k-document store, model warm.

    .venv/bin/python benchmarks/dashboard_render.py --docs 100000 [--runs 3]

The store holds real text (titles and abstracts of ../shared/data/arxiv_sample.jsonl, cycled
under distinct ids, dates spread over 52 weeks) so the keyword index and snippets are real.
Embedding 100k abstracts would take ~1.7 h on this CPU, so document vectors are synthetic
(clustered points on the 384-d sphere, written into the embedding cache under the bundled
model's name) and matches / technique tags are drawn at random with the real tables' shape;
the query is embedded by the real model. Each page is run through Streamlit's AppTest (the
page script, the cached resources, the report functions, SQL and FAISS, element building),
once cold and then ``--runs`` times warm; the warm figure is what a visitor waits for after
the process has loaded the model. "Data recomputed" is a run after the cached views were
dropped (what follows a crawl): model, index and store stay loaded, the reports are rebuilt.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from _common import ROOT, peak_rss_mb, percentile, sample_records, scratch_folder

from core.settings import load_settings
from core.store import Store, documents
from index.embedder import get_embedder
from index.learner import shipped_matcher
from index.matching import doc_matches, doc_techniques, week_number
from index.pipeline import index_and_match
from index.taxonomy import load_taxonomy
from index.vectors import embeddings

NOW = datetime(2026, 11, 20, tzinfo=UTC)
PAGES = [
    ("this_week", {}),
    ("sectors", {"sector": "finance"}),
    ("search", {"q": "graph neural networks for transaction fraud detection"}),
    ("document", {"id": "syn:42"}),
    ("trends", {}),
    ("sources", {}),
]


def build(folder: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    settings = load_settings(data_dir=str(folder))
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings)
    techs = [t.key for t in taxonomy.techniques]
    ucs = [(u.key, u.sector, u.name) for u in taxonomy.use_cases]
    records = sample_records(3000)
    model = get_embedder(settings.model).name
    centres = nrng.normal(size=(500, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    start = NOW - timedelta(weeks=52)
    span = (NOW - start).total_seconds()
    stamp = datetime(2026, 1, 1)
    batch = 20_000
    for lo in range(0, n, batch):
        docs, tags, matches, vecs = [], [], [], []
        hi = min(n, lo + batch)
        vectors = centres[nrng.integers(0, len(centres), hi - lo)] + nrng.normal(
            scale=0.05, size=(hi - lo, 384)
        ).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for i in range(lo, hi):
            rec = records[i % len(records)]
            published = (start + timedelta(seconds=rng.random() * span)).replace(tzinfo=None)
            chash = f"{i:064x}"
            docs.append(
                {
                    "id": i + 1,
                    "canonical_id": f"syn:{i}",
                    "kind": "paper",
                    "source": "arxiv",
                    "title": rec["title"],
                    "text": rec["abstract"],
                    "url": f"https://arxiv.org/abs/{rec['id']}",
                    "published": published,
                    "authors": rec.get("authors", [])[:5],
                    "categories": rec.get("categories", []),
                    "language": "en",
                    "content_hash": chash,
                    "extra": {},
                    "rev": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            vecs.append(
                {"model": model, "content_hash": chash, "vector": vectors[i - lo].tobytes()}
            )
            week = week_number(published.replace(tzinfo=UTC))
            for t in rng.sample(techs, 2):
                tags.append(
                    {
                        "doc_id": i + 1,
                        "technique": t,
                        "score": 0.7,
                        "why": "mentions it",
                        "week": week,
                    }
                )
            uc, sector, name = rng.choice(ucs)
            matches.append(
                {
                    "doc_id": i + 1,
                    "use_case": uc,
                    "sector": sector,
                    "score": round(rng.uniform(0.45, 0.95), 3),
                    "similarity": 0.5,
                    "why": f"Close in meaning to '{name}' (similarity 0.50)",
                    "passage": rec["abstract"][:200],
                    "terms": [],
                    "week": week,
                }
            )
        with store.engine.begin() as conn:
            conn.execute(documents.insert(), docs)
            conn.execute(embeddings.insert(), vecs)
            conn.execute(doc_techniques.insert(), tags)
            conn.execute(doc_matches.insert(), matches)
    # The random matches stand for the matcher's output: mark them current so the indexer
    # does not re-match 100k documents against synthetic vectors.
    # (The matcher shipped with the labels is the one the indexer starts from.)
    matcher = shipped_matcher(model, taxonomy)
    store.set_meta("matching:taxonomy", f"{model}|{taxonomy.fingerprint}|{matcher.version}")
    store.set_meta("matching:generation", "1")
    t0 = time.perf_counter()
    report = index_and_match(store, settings, show_progress=True)
    print(f"indexed {n:,} documents in {time.perf_counter() - t0:.1f} s ({report})")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    folder = scratch_folder(f"veille-dashboard-bench-{args.docs}", fresh=args.fresh)
    if not (folder / "veille.db").exists():
        t0 = time.perf_counter()
        build(folder, args.docs)
        print(f"built the store in {time.perf_counter() - t0:.1f} s")
    os.environ["VEILLE_DATA_DIR"] = str(folder)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "dashboard" / "app.py")

    def timed_run(page: str, params: dict[str, str]) -> float:
        at = AppTest.from_file(app, default_timeout=600)
        at.switch_page(f"views/{page}.py")
        for key, value in params.items():
            at.query_params[key] = value
        t0 = time.perf_counter()
        at.run()
        took = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].message}")
        return took

    for page, params in PAGES:
        cold = timed_run(page, params)
        times = [timed_run(page, params) for _ in range(args.runs)]
        # New data arrived (the store generation moved on): cached views are recomputed,
        # the model and the store stay loaded.
        st.cache_data.clear()
        fresh = timed_run(page, params)
        print(
            f"{page:<10} {args.docs:,} docs | first run {cold:6.2f} s | data recomputed "
            f"{fresh:5.2f} s | warm median {percentile(times, 50):5.2f} s, max {max(times):5.2f} s",
            flush=True,
        )
    print(f"peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
