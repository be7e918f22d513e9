"""API hybrid search under load, against the raw model + raw FAISS in the same run.

Usage: .venv/bin/python benchmarks/api_load.py [--sizes 10000,100000] [--clients 1,8,32]
                                               [--requests 240]

For each size a real SQLite store is filled with real texts: titles and abstracts of
../shared/data/arxiv_sample.jsonl, repeated with a variant suffix where more are needed. The
keyword (BM25) index is built from those texts. Document vectors are synthetic (384-d points
around 2,000 centres on the unit sphere), because the model embeds about 16 abstracts a second
here; query vectors are real (the model embeds each query at request time).

The API is `create_app` served by a real uvicorn on 127.0.0.1 (rate limit off). A separate
client process opens N connections (httpx, one thread each) and sends `GET /v1/search`
(hybrid, k=10) with real queries until ``--requests`` answers have come back. The raw baseline
is, in N threads of this process, `SentenceTransformer.encode` of the same query plus an
exact `faiss.IndexFlatIP` search of the same vectors. Printed per size and N: p50 and p95
latency, requests per second, errors, and the p95 ratio API / raw.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np
from _common import ROOT, peak_rss_mb, percentile
from search_latency import fill_store, real_texts

from core.api_keys import create_key
from core.settings import load_settings
from core.store import Store
from index.embedder import get_embedder
from index.indexer import LoadedIndexes, Manifest
from index.keyword import KeywordIndex
from index.search import Searcher
from index.vector_index import VectorIndex

DIM = 384
QUERIES = [
    "graph neural networks for transaction fraud",
    "LSTM remaining useful life prediction",
    "diffusion models for medical image synthesis",
    "contract clause extraction with language models",
    "demand forecasting for retail stores",
    "reinforcement learning for robot grasping",
    "vision transformers for defect detection",
    "federated learning on hospital records",
]


def client_main(base: str, key: str, clients: int, total: int) -> None:
    """Run in a separate process: N threads, one connection each, until ``total`` answers."""
    import httpx

    lock = threading.Lock()
    done = {"sent": 0}
    latencies: list[float] = []
    errors: list[str] = []

    def worker(seed: int) -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as c:
            i = seed
            while True:
                with lock:
                    if done["sent"] >= total:
                        return
                    done["sent"] += 1
                started = time.perf_counter()
                try:
                    answer = c.get("/v1/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10})
                    ok = answer.status_code == 200 and len(answer.json()["hits"]) == 10
                    if not ok:
                        errors.append(f"{answer.status_code} {answer.text[:120]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                i += clients

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,)) for s in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "errors": errors, "wall": wall}))


def raw_run(
    model, flat, queries: np.ndarray, clients: int, total: int
) -> tuple[list[float], float]:
    def one(i: int) -> float:
        started = time.perf_counter()
        model.encode([QUERIES[i % len(QUERIES)]], normalize_embeddings=True, convert_to_numpy=True)
        flat.search(queries[i % len(queries) : i % len(queries) + 1], 10)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(total)))
    return latencies, time.perf_counter() - started


def run_size(n: int, clients_list: list[int], total: int, embedder, rng) -> None:
    import uvicorn

    from api.app import create_app
    from api.service import Service

    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, 2000, size=n)] + rng.normal(scale=0.045, size=(n, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = centres[rng.integers(0, 2000, size=64)]
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    pairs = real_texts(n)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp, api_rate_per_minute=0)
        store = Store.from_settings(settings)
        ids = fill_store(store, pairs)
        index = VectorIndex.build(
            vectors, ids, ann_threshold=settings.ann_threshold, nprobe=settings.ivf_nprobe
        )
        keywords = KeywordIndex.build((int(i), t, a) for i, (t, a) in zip(ids, pairs, strict=True))
        manifest = Manifest(embedder.name, DIM, store.generation(), n, index.kind, "", "")
        searcher = Searcher(store, settings, embedder, LoadedIndexes(manifest, index, keywords))
        app = create_app(settings, store=store, service=Service(settings, store, searcher))
        key = create_key(store, "bench").secret
        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors)
        model = embedder.model
        for q in QUERIES:
            model.encode([q], normalize_embeddings=True)

        sock = socket.socket()
        # as uvicorn does for the sockets it opens itself (`veille api`): without TCP_NODELAY,
        # every answer after the first on a kept-alive connection waits ~40 ms for an ACK
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        pause = threading.Event()
        while not server.started:
            pause.wait(0.05)
        try:
            for clients in clients_list:
                raw, raw_wall = raw_run(model, flat, queries, clients, total)
                out = subprocess.run(
                    [sys.executable, __file__, "--client", base, key, str(clients), str(total)],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
                result = json.loads(out.stdout)
                lat = result["latencies"]
                p50, p95 = percentile(lat, 50) * 1000, percentile(lat, 95) * 1000
                r50, r95 = percentile(raw, 50) * 1000, percentile(raw, 95) * 1000
                print(
                    f"{n:>8,} docs | {clients:>2} client(s) | API hybrid p50 {p50:7.1f} ms "
                    f"p95 {p95:7.1f} ms {len(lat) / result['wall']:6.1f} req/s "
                    f"errors {len(result['errors'])} | raw encode+flat p50 {r50:6.1f} ms "
                    f"p95 {r95:6.1f} ms {total / raw_wall:6.1f} req/s | p95 ratio {p95 / r95:5.2f}",
                    flush=True,
                )
                for error in result["errors"][:3]:
                    print(f"    error: {error}")
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
            store.close()
    print(f"    peak RSS {peak_rss_mb():,.0f} MB (index {index.kind})", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=240)
    args = parser.parse_args()
    embedder = get_embedder()
    rng = np.random.default_rng(11)
    print(f"faiss {faiss.__version__}; {args.requests} requests per row; hybrid mode, k=10")
    for size in [int(s) for s in args.sizes.split(",")]:
        run_size(size, [int(c) for c in args.clients.split(",")], args.requests, embedder, rng)


if __name__ == "__main__":
    main()
